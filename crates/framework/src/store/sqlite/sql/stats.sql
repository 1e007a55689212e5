-- Per-queue counts for namespace $1 at $2 (ms), paused queues included even when empty.
-- O(queues): the counter rows (migrations/sqlite/20261205000001_counters.sql); only
-- `scheduled` (pending, unblocked, due later) is counted from rows, by a covering range of
-- conveyor_events_due_idx (O(scheduled)); due = pending - waiting - scheduled. The oldest
-- due row is the first entry of the same index.
with queues as (
    select event_type, routing_key from conveyor_queue_counts where namespace = $1
    union
    select event_type, routing_key from conveyor_paused_handlers where namespace = $1
),
probed as (
    select q.event_type, q.routing_key, c.pending, c.waiting, c.in_flight, c.retrying, c.dead,
           c.delivered, c.cancelled, c.enqueued_total, c.completed_total, c.failed_total,
           c.dead_total,
           (select count(*) from conveyor_events e
             where e.namespace = $1 and e.event_type = q.event_type
               and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
               and e.available_at >= 0 -- the due index's predicate
               and e.available_at > $2) as scheduled,
           (select min(e.available_at) from conveyor_events e
             where e.namespace = $1 and e.event_type = q.event_type
               and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
               and e.available_at >= 0 -- the due index's predicate
               and e.available_at <= $2) as oldest_due
      from queues q
      left join conveyor_queue_counts c
        on c.namespace = $1 and c.event_type = q.event_type and c.routing_key = q.routing_key
)
select q.event_type, q.routing_key,
       coalesce(q.pending, 0) as pending,
       coalesce(q.pending - q.waiting - q.scheduled, 0) as due,
       q.scheduled,
       coalesce(q.waiting, 0) as waiting,
       (select count(*) from conveyor_parked_keys k
         where k.namespace = $1 and k.event_type = q.event_type
           and k.routing_key = q.routing_key) as parked_keys,
       coalesce(q.in_flight, 0) as in_flight,
       coalesce(q.retrying, 0) as retrying,
       coalesce(q.dead, 0) as dead,
       coalesce(q.delivered, 0) as delivered,
       coalesce(q.cancelled, 0) as cancelled,
       coalesce(q.enqueued_total, 0) as enqueued_total,
       coalesce(q.completed_total, 0) as completed_total,
       coalesce(q.failed_total, 0) as failed_total,
       coalesce(q.dead_total, 0) as dead_total,
       coalesce(($2 - q.oldest_due) / 1000.0, 0.0) as oldest_due_age_secs,
       exists (select 1 from conveyor_paused_handlers p
                where p.namespace = $1 and p.event_type = q.event_type
                  and p.routing_key = q.routing_key) as paused,
       (select s.max_in_flight from conveyor_queue_settings s
         where s.namespace = $1 and s.event_type = q.event_type
           and s.routing_key = q.routing_key) as max_in_flight
  from probed q
 order by 1, 2
