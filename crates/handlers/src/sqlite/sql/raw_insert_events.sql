-- Store a batch of raw events in one statement. $1 is a JSON array with one object per
-- event (deduplicated by the caller), $2 the instant received (µs). The primary key
-- (namespace, event_id, ts) drops every event already stored, so a retried request or a
-- batch reprocessed after a crash writes nothing twice. Returns the keys newly stored: the
-- API's accept publishes the index records of exactly those events in the same transaction
-- (RawStoreHandler ignores them). (`where true` keeps SQLite from reading `on conflict` as a
-- join constraint.)
insert into events_raw
    (namespace, event_id, ts, event_type, actor_id, source, attributes, received_at)
select e.value ->> 'namespace', unhex(e.value ->> 'event_id', '-'), e.value ->> 'ts',
       e.value ->> 'event_type', e.value ->> 'actor_id', e.value ->> 'source',
       e.value -> 'attributes', $2
  from json_each($1) e
 where true
    on conflict do nothing
returning namespace, event_id, ts
