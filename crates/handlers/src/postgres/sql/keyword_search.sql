-- Full-text search in one namespace: websearch syntax ("quoted phrases", or, -negation) with
-- the 'simple' configuration, so identifiers and codes match as written (no stemming or stop
-- words). The GIN index on tsv finds the matches; best rank first, then the newest event.
select d.event_id, d.ts, d.event_type, d.source, ts_rank(d.tsv, q.query)::float8 as score
from search_documents d, websearch_to_tsquery('simple', $2) as q(query)
where d.namespace = $1
  and d.tsv @@ q.query
order by score desc, d.ts desc, d.event_id
limit $3
