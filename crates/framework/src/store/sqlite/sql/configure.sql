-- Record a queue's ordering and limit settings (see the ordering migration).
-- $1 namespace, $2 event type, $3 stored routing key, $4 key concurrency,
-- $5 park dead heads, $6 max in flight (null: no limit), $7 now (ms)
insert into conveyor_queue_settings
    (namespace, event_type, routing_key, key_concurrency, park_dead_heads, max_in_flight,
     recorded_at)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (namespace, event_type, routing_key) do update
   set key_concurrency = excluded.key_concurrency,
       park_dead_heads = excluded.park_dead_heads,
       max_in_flight = excluded.max_in_flight,
       recorded_at = excluded.recorded_at
