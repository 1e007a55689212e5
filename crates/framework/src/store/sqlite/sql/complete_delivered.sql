-- Mark the delivered events $3 (a JSON array of ids) held by worker $2 as delivered: the
-- outcome of nearly every event, so it has its own statement over a flat id array (reading
-- complete.sql's per-outcome JSON objects cost a tenth of the drain). A cancel requested
-- while running leaves delivered as delivered (complete.sql's rule); the row's last error
-- and history stay as they are.
-- The update trigger does not count claimed -> delivered (migration
-- 20261207000001_counted_transitions): complete.rs counts the rows in the same
-- transaction, through count_transitions.sql. With queue $5, $6 (the batch's, from
-- batch_queue.sql) only that queue's rows move and the count is the rows changed, so no
-- row comes back (each returned row is a hand-off between the connection's thread and the
-- caller); with $5 null the rest move, and complete.rs appends `returning` to count them
-- per queue.
-- $1 namespace, $2 worker, $3 ids, $4 now (ms), $5 event_type, $6 routing_key
update conveyor_events
   set status = 'delivered',
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = $4
 where id in (select value from json_each($3))
   and +namespace = $1
   and +status = 'claimed'
   and claimed_by = $2
   and ($5 is null or (+event_type = $5 and +routing_key = $6))
