-- Per-queue counts for namespace $1, paused queues included even when empty.
-- O(queues): the counters (migrations/postgres/20261205000001_counters.sql) are the base
-- row plus the uncompacted deltas of each queue; only `scheduled` (pending, unblocked, due
-- later) is counted from rows, by an index-only range of conveyor_events_due_idx, so it
-- costs O(scheduled); due = pending - waiting - scheduled. The oldest due row is the first
-- entry of the same index: one probe per queue.
with counters as (
    select event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered,
           cancelled, enqueued_total, completed_total, failed_total, dead_total
      from conveyor_queue_counts
     where namespace = $1
    union all
    select event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered,
           cancelled, enqueued_total, completed_total, failed_total, dead_total
      from conveyor_queue_count_deltas
     where namespace = $1
),
counts as (
    select event_type, routing_key,
           sum(pending)::int8 as pending, sum(waiting)::int8 as waiting,
           sum(in_flight)::int8 as in_flight, sum(retrying)::int8 as retrying,
           sum(dead)::int8 as dead, sum(delivered)::int8 as delivered,
           sum(cancelled)::int8 as cancelled, sum(enqueued_total)::int8 as enqueued_total,
           sum(completed_total)::int8 as completed_total,
           sum(failed_total)::int8 as failed_total, sum(dead_total)::int8 as dead_total
      from counters
     group by event_type, routing_key
),
queues as (
    select coalesce(c.event_type, p.event_type) as event_type,
           coalesce(c.routing_key, p.routing_key) as routing_key,
           c.pending, c.waiting, c.in_flight, c.retrying, c.dead, c.delivered, c.cancelled,
           c.enqueued_total, c.completed_total, c.failed_total, c.dead_total,
           p.namespace is not null as paused
      from counts c
      full join (select * from conveyor_paused_handlers where namespace = $1) p
             on p.event_type = c.event_type and p.routing_key = c.routing_key
),
probed as materialized (
    select q.*,
           (select count(*) from conveyor_events e
             where e.namespace = $1 and e.event_type = q.event_type
               and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
               and e.available_at > '-infinity' -- the due index's predicate
               and e.available_at > now()) as scheduled,
           (select min(e.available_at) from conveyor_events e
             where e.namespace = $1 and e.event_type = q.event_type
               and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
               and e.available_at > '-infinity' -- the due index's predicate
               and e.available_at <= now()) as oldest_due
      from queues q
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
       coalesce(extract(epoch from now() - q.oldest_due), 0)::float8 as oldest_due_age_secs,
       q.paused,
       (select s.max_in_flight from conveyor_queue_settings s
         where s.namespace = $1 and s.event_type = q.event_type
           and s.routing_key = q.routing_key) as max_in_flight
  from probed q
 order by 1, 2
