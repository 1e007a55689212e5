-- Index a batch of events for full-text search: one row per (namespace, event_id, ts), the
-- deduplication key. A document already indexed (a duplicate event, a retried or reprocessed
-- batch) is skipped, so re-running never stores it twice. The tsv column is generated.
insert into search_documents (namespace, event_id, ts, event_type, source, body)
select *
from unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
on conflict (namespace, event_id, ts) do nothing
