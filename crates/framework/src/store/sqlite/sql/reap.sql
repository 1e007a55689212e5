-- Crash recovery: return up to $3 events whose lease expired to the queue, due now.
-- The attempt counted at claim stays counted, so a payload that kills its worker every
-- time still runs out of retries.
-- $1 namespace, $2 now (ms), $3 limit
update conveyor_events
   set status = 'pending',
       available_at = $2,
       last_error = 'lease expired: worker ' || claimed_by
                    || ' did not complete the event before its lease ran out',
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = $2
 where id in (select id
                from conveyor_events
               where status = 'claimed' and lease_expires_at < $2 and namespace = $1
               order by lease_expires_at
               limit $3)
returning event_type, routing_key
