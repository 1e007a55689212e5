-- Crash recovery: return up to $2 events whose lease expired to the queue, due now.
--
-- The attempt counted at claim stays counted, so a payload that kills its worker every
-- time still runs out of retries. `skip locked` lets several pools reap side by side.
-- An event whose cancel was requested while it ran becomes cancelled instead. The expiry is
-- recorded in the error history ("lease expired", the old holder as worker), last 5 kept.
-- Wakes the queues that got work back, in every process.
-- $1 namespace, $2 limit
with reaped as (
    update conveyor_events e
       set status = (case when e.cancel_reason is not null then 'cancelled'
                          else 'pending' end)::conveyor_event_status,
           available_at = now(),
           last_error = 'lease expired: worker ' || e.claimed_by
                        || ' did not complete the event before its lease ran out',
           errors = jsonb_path_query_array(
                        coalesce(e.errors, '[]'::jsonb)
                        || jsonb_build_object('attempt', e.attempts, 'at', now(),
                                              'worker', e.claimed_by, 'error', 'lease expired'),
                        '$[last-4 to last]'),
           claimed_at = null,
           claimed_by = null,
           lease_expires_at = null,
           updated_at = now()
     where e.id = any(array(
             select id
               from conveyor_events
              where status = 'claimed' and lease_expires_at < now() and namespace = $1
              order by lease_expires_at
              limit $2
                for update skip locked))
    returning e.event_type, e.routing_key, e.status
),
queues as (
    select distinct event_type, routing_key from reaped where status = 'pending'
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || event_type || chr(31) || routing_key)) as n
      from queues
)
select q.event_type, q.routing_key
  from queues q, woken
