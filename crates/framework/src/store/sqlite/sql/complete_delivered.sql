-- Mark the delivered events $3 (a JSON array of ids) held by worker $2 as delivered: the
-- outcome of nearly every event, so it has its own statement over a flat id array (reading
-- complete.sql's per-outcome JSON objects cost a tenth of the drain). A cancel requested
-- while running leaves delivered as delivered (complete.sql's rule); the row's last error
-- and history stay as they are.
-- The update trigger does not count claimed -> delivered (migration
-- 20261207000001_counted_transitions): complete.rs counts the returned rows per queue
-- through count_transitions.sql in the same transaction.
-- $1 namespace, $2 worker, $3 ids, $4 now (ms)
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
returning event_type, routing_key
