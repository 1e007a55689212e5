-- Store a batch of raw events in one statement: the parallel column arrays are unnested
-- into rows and the primary key (namespace, event_id, ts) drops every event already stored,
-- so a retried request or a batch reprocessed after a crash writes nothing twice. Rows route
-- to their day partition (or events_raw_default when none covers the timestamp). Returns the
-- keys newly stored: the API's accept publishes the index records of exactly those events
-- in the same transaction (RawStoreHandler ignores them).
--
-- $1 namespaces, $2 event ids, $3 timestamps, $4 event types, $5 actors, $6 sources,
-- $7 attributes (parallel arrays, already deduplicated by the caller)
insert into events_raw (namespace, event_id, ts, event_type, actor_id, source, attributes)
select *
  from unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
              $7::jsonb[])
    on conflict do nothing
returning namespace, event_id, ts
