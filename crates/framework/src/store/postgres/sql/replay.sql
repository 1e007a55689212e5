-- Return dead letters and cancelled events to the queue with a fresh retry budget (River's
-- JobRetry takes both); the last error and the error history stay for the record, the
-- cancel reason goes. Wakes their queues in every process.
-- $1 namespace, $2 ids
with replayed as (
    update conveyor_events
       set status = 'pending', attempts = 0, available_at = now(), updated_at = now(),
           cancel_reason = null,
           -- an ordered event queues up again; the ordering trigger unblocks it in turn
           -- (first, as the key's oldest unfinished event) and unparks its key
           blocked = ordering_key is not null
     where id = any($2) and namespace = $1 and status in ('dead', 'cancelled')
    returning event_type, routing_key
),
woken as (
    select count(pg_notify('conveyor_wake', $1 || chr(31) || q.event_type || chr(31) || q.routing_key)) as n
      from (select distinct event_type, routing_key from replayed) q
)
select (select count(*) from replayed) as replayed
  from woken
