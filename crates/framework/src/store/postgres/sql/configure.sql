-- Record a queue's ordering and limit settings, and give it exactly $6 slots (none without a
-- limit): missing slots are added free, slots above the limit removed (an event holding one
-- finishes normally; its slot is simply gone). See the ordering migration.
-- $1 namespace, $2 event type, $3 stored routing key, $4 key concurrency,
-- $5 park dead heads, $6 max in flight (null: no limit)
with settings as (
    insert into conveyor_queue_settings as s
        (namespace, event_type, routing_key, key_concurrency, park_dead_heads, max_in_flight)
    values ($1, $2, $3, $4, $5, $6)
    on conflict (namespace, event_type, routing_key) do update
       set key_concurrency = excluded.key_concurrency,
           park_dead_heads = excluded.park_dead_heads,
           max_in_flight = excluded.max_in_flight,
           recorded_at = now()
),
added as (
    insert into conveyor_slots (namespace, event_type, routing_key, slot)
    select $1, $2, $3, g from generate_series(1, coalesce($6::integer, 0)) g
    on conflict do nothing
),
removed as (
    delete from conveyor_slots
     where namespace = $1 and event_type = $2 and routing_key = $3
       and slot > coalesce($6::integer, 0)
)
select 1
