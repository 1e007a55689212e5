-- Search documents older than the retention window ($1) expire with the raw events.
delete from search_documents where ts < $1
