-- Record that handler $5 consumes subscription $4 of event type $2 with routing key $3 in
-- namespace $1; answers the handler recorded before, if any (the caller warns when another
-- one was: two handler types on one subscription split its events).
with before as (
    select handler
      from conveyor_subscriptions
     where namespace = $1 and event_type = $2 and routing_key = $3 and subscription = $4
),
recorded as (
    insert into conveyor_subscriptions (namespace, event_type, routing_key, subscription, handler)
    values ($1, $2, $3, $4, $5)
    on conflict (namespace, event_type, routing_key, subscription)
    do update set handler = excluded.handler, recorded_at = now()
)
select handler from before
