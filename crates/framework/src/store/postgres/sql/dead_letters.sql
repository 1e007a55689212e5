-- Dead letters of namespace $1, oldest id first, after cursor $4, optionally of one queue.
-- $2/$3 event type and routing key (null for every queue), $4 cursor (id), $5 limit
select id, event_type, routing_key, payload, attempts, last_error, errors::text as errors, created_at,
       updated_at as died_at
  from conveyor_events
 where status = 'dead'
   and namespace = $1
   and ($2::text is null or (event_type = $2 and routing_key = $3))
   and id > $4
 order by id
 limit $5
