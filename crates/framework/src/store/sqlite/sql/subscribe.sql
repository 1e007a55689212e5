-- Record that handler $5 consumes subscription $4 of event type $2 with routing key $3 in
-- namespace $1 at $6 (ms). Runs in a write transaction after reading the handler recorded
-- before (the caller warns when another one was).
insert into conveyor_subscriptions
    (namespace, event_type, routing_key, subscription, handler, recorded_at)
values ($1, $2, $3, $4, $5, $6)
on conflict (namespace, event_type, routing_key, subscription)
do update set handler = excluded.handler, recorded_at = excluded.recorded_at
