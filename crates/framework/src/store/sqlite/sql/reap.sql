-- Crash recovery: return up to $3 events whose lease expired to the queue, due now.
-- The attempt counted at claim stays counted, so a payload that kills its worker every
-- time still runs out of retries. An event whose cancel was requested while it ran becomes
-- cancelled instead. The expiry is recorded in the error history ("lease expired", the old
-- holder as worker), last 5 kept. Returns the queue of every row that went back to pending.
-- $1 namespace, $2 now (ms), $3 limit
update conveyor_events
   set status = case when cancel_reason is not null then 'cancelled' else 'pending' end,
       available_at = $2,
       last_error = 'lease expired: worker ' || claimed_by
                    || ' did not complete the event before its lease ran out',
       errors = (select json_group_array(json(j.value))
                   from (select json_insert(
                                    coalesce(conveyor_events.errors, '[]'), '$[#]',
                                    json_object('attempt', conveyor_events.attempts,
                                                'at', strftime('%Y-%m-%dT%H:%M:%fZ', $2 / 1000.0, 'unixepoch'),
                                                'worker', conveyor_events.claimed_by,
                                                'error', 'lease expired')) as a) h,
                        json_each(h.a) j
                  where j.key >= json_array_length(h.a) - 5),
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = $2
 where id in (select id
                from conveyor_events
               where status = 'claimed' and lease_expires_at < $2 and namespace = $1
               order by lease_expires_at
               limit $3)
returning event_type, routing_key, status
