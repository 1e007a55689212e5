-- Delete the delivered events of a batch held by worker $2 (delivered retention zero);
-- the delete trigger counts them.
-- $1 namespace, $2 worker, $3 ids (a JSON array)
delete from conveyor_events
 where id in (select value from json_each($3))
   and +namespace = $1
   and +status = 'claimed'
   and claimed_by = $2
