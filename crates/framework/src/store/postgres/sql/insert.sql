-- Insert a batch of events in one statement (the arrays are parallel, one element per event)
-- and answer one `first` row per input, in input order: its id (the new one, or for a duplicate
-- the id of the event that holds the key), whether it was inserted, and whether it is due.
--
-- Idempotency keys live in conveyor_idempotency_keys, for the store's window ($11 ms): the
-- first input of a key claims it when nobody holds it or its window has passed; every later
-- input of a held key is a duplicate. The upsert always touches a conflicting key row, so it
-- returns the holder's id even when another transaction committed it after this statement
-- began (ON CONFLICT sees the latest version). Ids are taken from the identity sequence up
-- front so the key row can name its event in the same statement.
--
-- One copy per subscription recorded for the event's queue, the default copy when none is
-- (see insert_keyless.sql, whose `targets` CTE this one repeats: keep the two the same, and
-- the queue key as `event::queue_key` builds it): a message's first copy takes its pre-assigned id (the one its
-- key names), later copies take theirs from the sequence too. One row is answered per
-- message (`first`), then one per later copy stored (for the queues to wake).
--
-- Wakes idle workers with one NOTIFY per distinct queue that got a due event: never one per
-- row, so bulk inserts do not queue up behind the notify lock at commit. When called inside
-- the caller's transaction the notification is delivered at its commit. With $10 false
-- nothing is notified: the caller wakes the returned due queues after its commit (see
-- `PgStore::publish_batch_in_deferred`).
--
-- $1 namespace, $2 event types, $3 routing keys, $4 payloads (json text), $5 delays (ms),
-- $6 fairness keys, $7 idempotency keys, $8 causation ids, $9 correlation ids, $10 notify,
-- $11 idempotency window (ms), $12 priorities, $13 ordering keys, $14 traceparents
--
-- An event with an ordering key is stored `blocked`; the insert trigger of the ordering
-- migration unblocks it at once when its key has room (see 20261204000001_ordering.sql).
with input as (
    select u.*, nextval(pg_get_serial_sequence('conveyor_events', 'id')) as new_id
      from unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[],
                  $8::bigint[], $9::uuid[], $12::smallint[], $13::text[], $14::text[])
           with ordinality
           as u(event_type, routing_key, payload, delay_ms, fairness_key, idempotency_key,
                causation_id, correlation_id, priority, ordering_key, traceparent, ord)
),
targets as (
    select q.event_type, q.routing_key,
           case when coalesce(s.subscription, '') = '' then q.routing_key
                else q.routing_key || chr(31) || s.subscription end as queue_key,
           row_number() over (partition by q.event_type, q.routing_key
                              order by s.subscription) = 1 as first
      from (select distinct event_type, routing_key from input) q
      left join conveyor_subscriptions s
        on s.namespace = $1 and s.event_type = q.event_type and s.routing_key = q.routing_key
),
copies as materialized (
    select i.*, t.queue_key, t.first,
           case when t.first then i.new_id
                else nextval(pg_get_serial_sequence('conveyor_events', 'id')) end as copy_id
      from input i
      join targets t on t.event_type = i.event_type and t.routing_key = i.routing_key
),
first_of_key as (
    select distinct on (idempotency_key) idempotency_key, new_id
      from input
     where idempotency_key is not null
     order by idempotency_key, ord
),
keys as (
    insert into conveyor_idempotency_keys as k (namespace, idempotency_key, event_id, expires_at)
    select $1, f.idempotency_key, f.new_id, now() + make_interval(secs => $11::float8 / 1000)
      from first_of_key f
     order by f.idempotency_key
    on conflict (namespace, idempotency_key) do update
       set event_id = case when k.expires_at <= now() then excluded.event_id else k.event_id end,
           expires_at = case when k.expires_at <= now() then excluded.expires_at else k.expires_at end
    returning k.idempotency_key, k.event_id
),
inserted as (
    insert into conveyor_events
        (id, namespace, event_type, routing_key, payload, available_at, fairness_key,
         idempotency_key, causation_id, correlation_id, priority, ordering_key, blocked,
         traceparent)
    overriding system value
    select c.copy_id, $1, c.event_type, c.queue_key, c.payload::jsonb,
           now() + make_interval(secs => c.delay_ms / 1000), c.fairness_key,
           c.idempotency_key, c.causation_id, c.correlation_id, c.priority,
           c.ordering_key, c.ordering_key is not null, c.traceparent
      from copies c
     where c.idempotency_key is null
        or c.new_id in (select event_id from keys)
     order by c.ord, c.first desc, c.queue_key
    returning id, event_type, routing_key, available_at
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || q.event_type || chr(31) || q.routing_key)) as n
      from (select distinct event_type, routing_key
              from inserted
             where $10 and available_at <= now()) q
)
select case when c.first then coalesce(k.event_id, c.copy_id) else c.copy_id end as id,
       ins.id is not null as inserted,
       c.event_type,
       c.queue_key as routing_key,
       coalesce(ins.available_at <= now(), false) as due,
       c.first
  from copies c
  left join keys k on k.idempotency_key = c.idempotency_key
  left join inserted ins on ins.id = c.copy_id
 cross join woken
 where c.first or ins.id is not null
 order by c.ord, c.first desc, c.queue_key
