-- The next fairness group with pending events of one queue after $4 (and up to $5 when
-- given): one seek on the pending index. The claim walks the groups with it.
-- $1 namespace, $2 event_type, $3 routing_key, $4 after (exclusive), $5 up to (inclusive, or null)
select min(fairness_key)
  from conveyor_events
 where status = 'pending' and namespace = $1 and event_type = $2 and routing_key = $3
   and fairness_key > $4 and ($5 is null or fairness_key <= $5)
