-- Return events worker $2 holds to the queue, due now (graceful shutdown, aborted batches).
-- $4 is 1 when the handler never started, taking back the attempt the claim counted.
-- An event whose cancel was requested while it was held becomes cancelled instead.
-- $1 namespace, $2 worker, $3 ids (JSON array), $4 attempts to take back (0 or 1), $5 now (ms)
update conveyor_events
   set status = case when cancel_reason is not null then 'cancelled' else 'pending' end,
       attempts = max(attempts - $4, 0),
       available_at = $5,
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = $5
 where id in (select value from json_each($3))
   and namespace = $1
   and status = 'claimed'
   and claimed_by = $2
returning event_type, routing_key, status
