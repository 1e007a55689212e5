-- Full-text search in namespace $1: $2 is an FTS5 expression built by `websearch` (every
-- token quoted, the namespace's token required), $3 the limit. The score is BM25 over the
-- body column (FTS5's bm25() is lower-is-better, so it is negated); best first, then the
-- newest event.
select d.event_id, d.ts, d.event_type, d.source, 0.0 - bm25(search_fts, 1.0, 0.0) as score
  from search_fts
  join search_documents d on d.id = search_fts.rowid
 where search_fts match $2
   and d.namespace = $1
 order by score desc, d.ts desc, d.event_id
 limit $3
