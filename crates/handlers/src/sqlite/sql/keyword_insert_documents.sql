-- Index a batch of events for full-text search: $1 is a JSON array with one document per
-- (namespace, event_id, ts), the deduplication key. A document already indexed (a duplicate
-- event, a retried or reprocessed batch) is skipped, so re-running never stores it twice;
-- the search_documents_index trigger adds each inserted document to search_fts.
insert into search_documents (namespace, event_id, ts, event_type, source, body)
select e.value ->> 'namespace', unhex(e.value ->> 'event_id', '-'), e.value ->> 'ts',
       e.value ->> 'event_type', e.value ->> 'source', e.value ->> 'body'
  from json_each($1) e
 where true
    on conflict (namespace, event_id, ts) do nothing
