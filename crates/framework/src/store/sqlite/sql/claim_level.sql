-- The highest priority below $5 among one fairness group's pending events: one index seek.
-- $1 namespace, $2 event_type, $3 routing_key, $4 fairness key, $5 bound (exclusive)
select priority
  from conveyor_events
 where status = 'pending' and namespace = $1 and event_type = $2 and routing_key = $3
   and fairness_key = $4 and priority < $5
 order by priority desc
 limit 1
