-- Delete the dead letters of namespace $1, of one queue ($2, $3) or of all (null $2).
delete from conveyor_events
 where status = 'dead'
   and namespace = $1
   and ($2::text is null or (event_type = $2 and routing_key = $3))
