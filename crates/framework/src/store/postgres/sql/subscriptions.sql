-- The subscriptions of namespace $1, by event type, routing key and name.
select event_type, routing_key, subscription, handler, recorded_at
  from conveyor_subscriptions
 where namespace = $1
 order by event_type, routing_key, subscription
