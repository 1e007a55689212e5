-- Up to $6 due events of one fairness group, oldest due first.
-- $1 namespace, $2 event_type, $3 routing_key, $4 fairness key, $5 now (ms), $6 limit
select id
  from conveyor_events
 where status = 'pending' and namespace = $1 and event_type = $2 and routing_key = $3
   and fairness_key = $4 and available_at <= $5
 order by available_at, id
 limit $6
