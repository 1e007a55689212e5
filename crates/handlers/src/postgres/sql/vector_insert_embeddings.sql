-- Store a batch of embeddings, one row per (namespace, event_id, ts), the deduplication key;
-- rows already stored (a duplicate, a retried or reprocessed batch) are skipped. sqlx cannot
-- bind a 2-d array, so the vectors come as one flat real[] ($6) of $7 floats per row, and
-- row n takes the slice [(n - 1) * $7 + 1 : n * $7] (O(dimensions) per row: no nulls, fixed width).
insert into search_embeddings (namespace, event_id, ts, event_type, source, embedding)
select r.namespace, r.event_id, r.ts, r.event_type, r.source,
       ($6::real[])[((r.n - 1) * $7 + 1)::int : (r.n * $7)::int]
from unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[])
     with ordinality as r(namespace, event_id, ts, event_type, source, n)
on conflict (namespace, event_id, ts) do nothing
