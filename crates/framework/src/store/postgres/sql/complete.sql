-- Apply per-item outcomes of a batch held by worker $2 (the arrays are parallel).
--
-- Only rows still claimed by this worker are touched; the statement returns how many, and
-- the caller compares that with the batch size and rolls back the whole transaction (the
-- handler's writes and the emitted events too) if the lease was lost to the reaper.
-- With $7, delivered rows are deleted here rather than kept for the pruner.
--
-- A 'snoozed' outcome is stored as pending with its attempt taken back (snoozing uses none).
-- A 'cancelled' outcome's message is its reason, not an error.
--
-- Cancel requested while running (cancel_reason set on the claimed row): delivered stays
-- delivered, any other outcome becomes 'cancelled' (River's rule for a running job).
--
-- Retry and dead outcomes append {attempt, at, worker, error} to the error history, which
-- keeps the last 5; the delivered path only reads the CASE conditions.
--
-- $1 namespace, $2 worker, $3 ids, $4 statuses ('delivered' | 'pending' | 'dead' | 'snoozed'
-- | 'cancelled'), $5 retry delays (ms), $6 messages (errors, or cancel reasons), $7 delete
-- delivered rows
with outcome as (
    select *
      from unnest($3::bigint[], $4::text[], $5::float8[], $6::text[]) as u(id, status, delay_ms, error)
),
deleted as (
    delete from conveyor_events e
     using outcome u
     where $7 and u.status = 'delivered'
       and e.id = u.id
       and e.namespace = $1
       and e.status = 'claimed'
       and e.claimed_by = $2
    returning 1
),
updated as (
    update conveyor_events e
       set status = (case when u.status <> 'delivered' and e.cancel_reason is not null then 'cancelled'
                          when u.status = 'snoozed' then 'pending'
                          else u.status end)::conveyor_event_status,
           available_at = case when u.status in ('pending', 'snoozed')
                               then now() + make_interval(secs => u.delay_ms / 1000)
                               else e.available_at end,
           attempts = case when u.status = 'snoozed' then greatest(e.attempts - 1, 0)
                           else e.attempts end,
           last_error = case when u.status = 'cancelled' then e.last_error
                             else coalesce(u.error, e.last_error) end,
           cancel_reason = case when u.status = 'cancelled' then u.error else e.cancel_reason end,
           errors = case when u.status in ('pending', 'dead')
                         then jsonb_path_query_array(
                                  coalesce(e.errors, '[]'::jsonb)
                                  || jsonb_build_object('attempt', e.attempts, 'at', now(),
                                                        'worker', $2::text, 'error', u.error),
                                  '$[last-4 to last]')
                         else e.errors end,
           claimed_at = null,
           claimed_by = null,
           lease_expires_at = null,
           updated_at = now()
      from outcome u
     where not ($7 and u.status = 'delivered')
       and e.id = u.id
       and e.namespace = $1
       and e.status = 'claimed'
       and e.claimed_by = $2
    returning e.event_type, e.routing_key, e.status, e.blocked, e.attempts, u.status as asked
),
-- what `updated` moved out of claimed, counted here rather than by the update trigger
-- (migration 20261208000001_self_counted; its trigger's rules with every old row claimed:
-- a failure is a retry or a death that appended to the error history, so not a snooze
-- or a cancel); deleted rows are still counted by the delete trigger
counted as (
    insert into conveyor_queue_count_deltas
        (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
         delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
         changes, parked_keys)
    select $1, event_type, routing_key,
           count(*) filter (where status = 'pending'),
           count(*) filter (where status = 'pending' and blocked),
           -count(*),
           count(*) filter (where status = 'pending' and attempts > 0),
           count(*) filter (where status = 'dead'),
           count(*) filter (where status = 'delivered'),
           count(*) filter (where status = 'cancelled'),
           0,
           count(*) filter (where status = 'delivered'),
           count(*) filter (where status in ('pending', 'dead') and asked in ('pending', 'dead')),
           count(*) filter (where status = 'dead'),
           count(*), 0
      from updated
     group by event_type, routing_key
    having set_config('conveyor.self_counted', 'on', true) = 'on'
)
select (select count(*) from deleted) + (select count(*) from updated) as held
