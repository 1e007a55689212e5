-- The first fairness group in [$4, $5] with pending events of one queue: one index seek.
-- $1 namespace, $2 event_type, $3 routing_key, $4 lower bound, $5 upper bound (both inclusive)
select fairness_key
  from conveyor_events
 where status = 'pending' and not blocked and namespace = $1 and event_type = $2 and routing_key = $3
   and fairness_key >= $4 and fairness_key <= $5
 order by fairness_key
 limit 1
