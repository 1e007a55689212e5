-- Per-queue counts for namespace $1, paused queues included even when empty.
-- One pass over the namespace's rows: fine for operators, not for a hot path.
with counts as (
    select event_type, routing_key,
           count(*) filter (where status = 'pending') as pending,
           count(*) filter (where status = 'pending' and not blocked and available_at <= now()) as due,
           count(*) filter (where status = 'pending' and blocked) as waiting,
           count(*) filter (where status = 'claimed') as in_flight,
           count(*) filter (where status = 'pending' and attempts > 0) as retrying,
           count(*) filter (where status = 'dead') as dead,
           count(*) filter (where status = 'delivered') as delivered,
           count(*) filter (where status = 'cancelled') as cancelled,
           coalesce(extract(epoch from now() - min(available_at)
                    filter (where status = 'pending' and not blocked and available_at <= now())), 0)::float8
               as oldest_due_age_secs
      from conveyor_events
     where namespace = $1
     group by event_type, routing_key
)
select coalesce(c.event_type, p.event_type) as event_type,
       coalesce(c.routing_key, p.routing_key) as routing_key,
       coalesce(c.pending, 0) as pending,
       coalesce(c.due, 0) as due,
       coalesce(c.waiting, 0) as waiting,
       (select count(*) from conveyor_parked_keys k
         where k.namespace = $1 and k.event_type = coalesce(c.event_type, p.event_type)
           and k.routing_key = coalesce(c.routing_key, p.routing_key)) as parked_keys,
       coalesce(c.in_flight, 0) as in_flight,
       coalesce(c.retrying, 0) as retrying,
       coalesce(c.dead, 0) as dead,
       coalesce(c.delivered, 0) as delivered,
       coalesce(c.cancelled, 0) as cancelled,
       coalesce(c.oldest_due_age_secs, 0) as oldest_due_age_secs,
       p.namespace is not null as paused,
       (select s.max_in_flight from conveyor_queue_settings s
         where s.namespace = $1 and s.event_type = coalesce(c.event_type, p.event_type)
           and s.routing_key = coalesce(c.routing_key, p.routing_key)) as max_in_flight
  from counts c
  full join (select * from conveyor_paused_handlers where namespace = $1) p
         on p.event_type = c.event_type and p.routing_key = c.routing_key
 order by 1, 2
