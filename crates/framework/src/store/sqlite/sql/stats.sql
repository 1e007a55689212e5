-- Per-queue counts for namespace $1 at $2 (ms), paused queues included even when empty.
-- One pass over the namespace's rows: fine for operators, not for a hot path.
with counts as (
    select event_type, routing_key,
           sum(status = 'pending') as pending,
           sum(status = 'pending' and not blocked and available_at <= $2) as due,
           sum(status = 'pending' and blocked) as waiting,
           sum(status = 'claimed') as in_flight,
           sum(status = 'pending' and attempts > 0) as retrying,
           sum(status = 'dead') as dead,
           sum(status = 'delivered') as delivered,
           sum(status = 'cancelled') as cancelled,
           min(case when status = 'pending' and not blocked and available_at <= $2
                    then available_at end)
               as oldest_due
      from conveyor_events
     where namespace = $1
     group by event_type, routing_key
),
queues as (
    select event_type, routing_key from counts
    union
    select event_type, routing_key from conveyor_paused_handlers where namespace = $1
)
select q.event_type, q.routing_key,
       coalesce(c.pending, 0) as pending,
       coalesce(c.due, 0) as due,
       coalesce(c.waiting, 0) as waiting,
       (select count(*) from conveyor_parked_keys k
         where k.namespace = $1 and k.event_type = q.event_type
           and k.routing_key = q.routing_key) as parked_keys,
       coalesce(c.in_flight, 0) as in_flight,
       coalesce(c.retrying, 0) as retrying,
       coalesce(c.dead, 0) as dead,
       coalesce(c.delivered, 0) as delivered,
       coalesce(c.cancelled, 0) as cancelled,
       coalesce(($2 - c.oldest_due) / 1000.0, 0.0) as oldest_due_age_secs,
       exists (select 1 from conveyor_paused_handlers p
                where p.namespace = $1 and p.event_type = q.event_type
                  and p.routing_key = q.routing_key) as paused,
       (select s.max_in_flight from conveyor_queue_settings s
         where s.namespace = $1 and s.event_type = q.event_type
           and s.routing_key = q.routing_key) as max_in_flight
  from queues q
  left join counts c on c.event_type = q.event_type and c.routing_key = q.routing_key
 order by 1, 2
