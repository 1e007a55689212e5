-- Embeddings older than the retention window ($1) expire with the raw events.
delete from search_embeddings where ts < $1
