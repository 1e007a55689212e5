-- Return events worker $2 holds to the queue, due now (graceful shutdown, aborted batches).
-- $4 is 1 when the handler never started, taking back the attempt the claim counted.
-- An event whose cancel was requested while it was held becomes cancelled instead.
-- Wakes the queues in every process so another worker picks the events up at once.
-- $1 namespace, $2 worker, $3 ids, $4 attempts to take back (0 or 1)
with released as (
    update conveyor_events
       set status = (case when cancel_reason is not null then 'cancelled'
                          else 'pending' end)::conveyor_event_status,
           attempts = greatest(attempts - $4, 0),
           available_at = now(),
           claimed_at = null,
           claimed_by = null,
           lease_expires_at = null,
           updated_at = now()
     where id = any($3)
       and namespace = $1
       and status = 'claimed'
       and claimed_by = $2
    returning event_type, routing_key, status
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || q.event_type || chr(31) || q.routing_key)) as n
      from (select distinct event_type, routing_key from released where status = 'pending') q
)
select (select count(*) from released) as released
  from woken
