-- Delete the delivered events of a batch held by worker $2 (delivered retention zero);
-- $3 is the same JSON array of outcomes that complete.sql reads.
-- $1 namespace, $2 worker, $3 outcomes
delete from conveyor_events
 where id in (select o.value ->> 'id' from json_each($3) o
               where o.value ->> 'status' = 'delivered')
   and +namespace = $1
   and +status = 'claimed'
   and claimed_by = $2
