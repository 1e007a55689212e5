-- The queue of held event $2 (namespace $1) if it has a global limit: completing its events
-- frees capacity, so its workers are woken after the commit (a claim that found the limit
-- reached came back empty and waits for a wake-up).
select e.event_type, e.routing_key
  from conveyor_events e
  join conveyor_queue_settings s
    on s.namespace = e.namespace and s.event_type = e.event_type
   and s.routing_key = e.routing_key
 where e.id = $2 and e.namespace = $1 and s.max_in_flight is not null
