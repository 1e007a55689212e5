-- Heartbeat: extend the lease on the events worker $2 still holds.
-- $1 namespace, $2 worker, $3 ids (JSON array), $4 new expiry (ms)
update conveyor_events
   set lease_expires_at = $4
 where id in (select value from json_each($3))
   and namespace = $1
   and status = 'claimed'
   and claimed_by = $2
