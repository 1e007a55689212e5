-- Store a batch of embeddings: $1 is a JSON array with one object per (namespace, event_id,
-- ts), the deduplication key, its vector as the hex of little-endian f32s. Rows already
-- stored (a duplicate, a retried or reprocessed batch) are skipped.
insert into search_embeddings (namespace, event_id, ts, event_type, source, embedding)
select e.value ->> 'namespace', unhex(e.value ->> 'event_id', '-'), e.value ->> 'ts',
       e.value ->> 'event_type', e.value ->> 'source', unhex(e.value ->> 'embedding')
  from json_each($1) e
 where true
    on conflict (namespace, event_id, ts) do nothing
