-- Apply per-item outcomes of a batch held by worker $2; $3 is a JSON array of
-- {id, status ('pending' | 'dead' | 'snoozed' | 'cancelled'), delay_ms, error} (delivered
-- outcomes go through complete_delivered.sql; 'delivered' here is still applied as such);
-- a snoozed event is stored as pending with its attempt taken back (snoozing uses none); a
-- cancelled outcome's `error` is its reason, not an error.
--
-- Cancel requested while running (cancel_reason set on the claimed row): delivered stays
-- delivered, any other outcome becomes 'cancelled' (River's rule for a running job).
-- Retry and dead outcomes append {attempt, at, worker, error} to the error history, which
-- keeps the last 5.
--
-- Only rows still claimed by this worker are touched; the caller compares the row count
-- with the batch size and rolls back the whole transaction (the handler's writes and the
-- emitted events too) if the lease was lost to the reaper.
--
-- $1 namespace, $2 worker, $3 outcomes, $4 now (ms)
update conveyor_events
   set status = case when u.status <> 'delivered' and conveyor_events.cancel_reason is not null
                     then 'cancelled'
                     when u.status = 'snoozed' then 'pending'
                     else u.status end,
       available_at = case when u.status in ('pending', 'snoozed') then $4 + u.delay_ms
                           else conveyor_events.available_at end,
       attempts = case when u.status = 'snoozed' then max(conveyor_events.attempts - 1, 0)
                       else conveyor_events.attempts end,
       last_error = case when u.status = 'cancelled' then conveyor_events.last_error
                         else coalesce(u.error, conveyor_events.last_error) end,
       cancel_reason = case when u.status = 'cancelled' then u.error
                            else conveyor_events.cancel_reason end,
       errors = case when u.status in ('pending', 'dead')
                     then (select json_group_array(json(j.value))
                             from (select json_insert(
                                              coalesce(conveyor_events.errors, '[]'), '$[#]',
                                              json_object('attempt', conveyor_events.attempts,
                                                          'at', strftime('%Y-%m-%dT%H:%M:%fZ', $4 / 1000.0, 'unixepoch'),
                                                          'worker', $2, 'error', u.error)) as a) h,
                                  json_each(h.a) j
                            where j.key >= json_array_length(h.a) - 5)
                     else conveyor_events.errors end,
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = $4
  from (select o.value ->> 'id' as id, o.value ->> 'status' as status,
               o.value ->> 'delay_ms' as delay_ms, o.value ->> 'error' as error
          from json_each($3) o) as u
 where conveyor_events.id = u.id
   and conveyor_events.namespace = $1
   and conveyor_events.status = 'claimed'
   and conveyor_events.claimed_by = $2
