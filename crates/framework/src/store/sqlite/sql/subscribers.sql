-- The subscriptions recorded for the queues of a batch: $1 namespace, $2 a JSON array of
-- [event_type, routing_key] pairs. A queue with none gets the default copy only.
select s.event_type, s.routing_key, s.subscription
  from conveyor_subscriptions s
  join (select distinct value ->> 0 as event_type, value ->> 1 as routing_key
          from json_each($2)) q
    on s.namespace = $1 and s.event_type = q.event_type and s.routing_key = q.routing_key
 order by s.subscription
