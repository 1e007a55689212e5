-- Heartbeat: extend the lease on the events worker $2 still holds.
-- $1 namespace, $2 worker, $3 ids, $4 lease in milliseconds
update conveyor_events
   set lease_expires_at = now() + make_interval(secs => $4::float8 / 1000)
 where id = any($3)
   and namespace = $1
   and status = 'claimed'
   and claimed_by = $2
