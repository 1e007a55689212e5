-- Every embedding of namespace $1 that is $2 bytes long (4 a dimension: vectors of another
-- embedder are skipped), for an exact brute-force similarity scan in Rust.
select event_id, ts, event_type, source, embedding
  from search_embeddings
 where namespace = $1
   and length(embedding) = $2
