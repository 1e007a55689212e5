-- Ordering keys parked by a dead head, of one queue ($2 null: every queue), oldest first.
-- $1 namespace, $2 event type, $3 stored routing key, $4 limit
select event_type, routing_key, ordering_key, event_id, parked_at
  from conveyor_parked_keys
 where namespace = $1
   and ($2 is null or (event_type = $2 and routing_key = $3))
 order by parked_at, event_type, routing_key, ordering_key
 limit $4
