-- The status of each of the ids $2 (a JSON array) in namespace $1, before a cancel.
select id, status
  from conveyor_events
 where id in (select value from json_each($2))
   and +namespace = $1
