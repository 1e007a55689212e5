-- Insert a batch of events in one statement (the arrays are parallel, one element per event).
--
-- A duplicate idempotency key in the namespace is skipped (the caller reports it).
-- Wakes idle workers with one NOTIFY per distinct queue that got a due event: never one per
-- row, so bulk inserts do not queue up behind the notify lock at commit. When called inside
-- the caller's transaction the notification is delivered at its commit.
--
-- With $10 false nothing is notified: the caller wakes the returned due queues after its
-- commit (see `PgStore::publish_batch_in_deferred`).
--
-- $1 namespace, $2 event types, $3 routing keys, $4 payloads (json text), $5 delays (ms),
-- $6 fairness keys, $7 idempotency keys, $8 causation ids, $9 correlation ids, $10 notify
with input as (
    select *
      from unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[],
                  $8::bigint[], $9::uuid[])
           with ordinality
           as u(event_type, routing_key, payload, delay_ms, fairness_key, idempotency_key,
                causation_id, correlation_id, ord)
),
inserted as (
    insert into conveyor_events
        (namespace, event_type, routing_key, payload, available_at, fairness_key,
         idempotency_key, causation_id, correlation_id)
    select $1, i.event_type, i.routing_key, i.payload::jsonb,
           now() + make_interval(secs => i.delay_ms / 1000), i.fairness_key,
           i.idempotency_key, i.causation_id, i.correlation_id
      from input i
     order by i.ord
    on conflict (namespace, idempotency_key) where idempotency_key is not null do nothing
    returning id, idempotency_key, event_type, routing_key, available_at
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || q.event_type || chr(31) || q.routing_key)) as n
      from (select distinct event_type, routing_key
              from inserted
             where $10 and available_at <= now()) q
)
select i.id, i.idempotency_key, i.event_type, i.routing_key, i.available_at <= now() as due
  from inserted i, woken
