-- Up to $7 due events of one fairness group at one priority, oldest due first: one range
-- of the pending index, in its order.
-- $1 namespace, $2 event_type, $3 routing_key, $4 fairness key, $5 priority, $6 now (ms),
-- $7 limit
select id, priority, available_at
  from conveyor_events
 where status = 'pending' and not blocked and namespace = $1 and event_type = $2 and routing_key = $3
   and fairness_key = $4 and priority = $5 and available_at <= $6
 order by available_at, id
 limit $7
