-- Insert a batch of events none of which has an idempotency key, in one statement (the
-- arrays are parallel, one element per event): the hot path, kept free of insert.sql's key
-- handling (which costs about a fifth of bulk publish throughput). Identity values are
-- assigned in `order by ord`, so the returned `first` rows' ids, sorted, follow the input
-- order. Wakes idle workers with one NOTIFY per distinct queue that got a due event: never
-- one per row, so bulk inserts do not queue up behind the notify lock at commit. When called
-- inside the caller's transaction the notification is delivered at its commit.
--
-- One copy per subscription recorded for the event's queue (see the subscriptions
-- migration), the default copy when none is. `targets` joins the batch's distinct queues (a
-- handful) with conveyor_subscriptions, never each row. Each message's first copy (its
-- queue's first subscription by name, '' first) is inserted by `inserted`, which reads the
-- message's row as is unless some queue's first copy is a named subscription (checked once);
-- the other copies by `copies`, skipped outright when there are none. So a batch without
-- subscriptions pays for two tiny lookups, not a join of every row. `first` marks the rows
-- that stand for the messages in the publish report.
--
-- With $9 false nothing is notified: the caller wakes the returned due queues after its
-- commit (see `PgStore::publish_batch_in_deferred`).
--
-- $1 namespace, $2 event types, $3 routing keys, $4 payloads (json text), $5 delays (ms),
-- $6 fairness keys, $7 causation ids, $8 correlation ids, $9 notify, $10 priorities,
-- $11 ordering keys (an ordered event is stored `blocked`: see insert.sql),
-- $12 traceparents
with input as (
    select *
      from unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[],
                  $7::bigint[], $8::uuid[], $10::smallint[], $11::text[], $12::text[])
           with ordinality
           as u(event_type, routing_key, payload, delay_ms, fairness_key,
                causation_id, correlation_id, priority, ordering_key, traceparent, ord)
),
targets as materialized (
    select q.event_type, q.routing_key,
           case when coalesce(s.subscription, '') = '' then q.routing_key
                else q.routing_key || chr(31) || s.subscription end as queue_key,
           row_number() over (partition by q.event_type, q.routing_key
                              order by s.subscription) = 1 as first
      from (select distinct t, k from unnest($2::text[], $3::text[]) as u(t, k)) q (event_type, routing_key)
      left join conveyor_subscriptions s
        on s.namespace = $1 and s.event_type = q.event_type and s.routing_key = q.routing_key
),
inserted as (
    insert into conveyor_events
        (namespace, event_type, routing_key, payload, available_at, fairness_key,
         causation_id, correlation_id, priority, ordering_key, blocked,
         traceparent)
    select $1, i.event_type,
           case when exists (select 1 from targets t where t.first and t.queue_key <> t.routing_key)
                then (select t.queue_key from targets t
                       where t.first and t.event_type = i.event_type
                         and t.routing_key = i.routing_key)
                else i.routing_key end,
           i.payload::jsonb, now() + make_interval(secs => i.delay_ms / 1000), i.fairness_key,
           i.causation_id, i.correlation_id, i.priority, i.ordering_key,
           i.ordering_key is not null, i.traceparent
      from input i
     order by i.ord
    returning id, event_type, routing_key, available_at
),
copies as (
    insert into conveyor_events
        (namespace, event_type, routing_key, payload, available_at, fairness_key,
         causation_id, correlation_id, priority, ordering_key, blocked,
         traceparent)
    select $1, i.event_type, t.queue_key, i.payload::jsonb,
           now() + make_interval(secs => i.delay_ms / 1000), i.fairness_key,
           i.causation_id, i.correlation_id, i.priority, i.ordering_key,
           i.ordering_key is not null, i.traceparent
      from input i
      join targets t on t.event_type = i.event_type and t.routing_key = i.routing_key
     where not t.first
       and exists (select 1 from targets c where not c.first)
     order by i.ord, t.queue_key
    returning id, event_type, routing_key, available_at
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || q.event_type || chr(31) || q.routing_key)) as n
      from (select distinct event_type, routing_key
              from (select event_type, routing_key, available_at from inserted
                    union all
                    select event_type, routing_key, available_at from copies) r
             where $9 and available_at <= now()) q
)
select i.id, true as inserted, i.event_type, i.routing_key, i.available_at <= now() as due,
       true as first
  from inserted i cross join woken
union all
select c.id, true, c.event_type, c.routing_key, c.available_at <= now(), false
  from copies c cross join woken
