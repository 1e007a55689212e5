-- The clock-dependent values of the queues $2 (event types) and $3 (routing keys) of
-- namespace $1: the scheduled rows (pending, unblocked, due later; an index-only range of
-- conveyor_events_due_idx, O(scheduled)), the next scheduled and the oldest due instant
-- (one probe of the same index each), as epoch milliseconds. Run after stats.sql in the
-- same snapshot, for the queues the stats cache cannot answer.
select q.event_type, q.routing_key,
       (select count(*) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.event_type
           and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
           and e.available_at > '-infinity' -- the due index's predicate
           and e.available_at > now()) as scheduled,
       (select (extract(epoch from min(e.available_at)) * 1000)::int8
          from conveyor_events e
         where e.namespace = $1 and e.event_type = q.event_type
           and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
           and e.available_at > '-infinity' -- the due index's predicate
           and e.available_at > now()) as next_scheduled_ms,
       (select (extract(epoch from min(e.available_at)) * 1000)::int8
          from conveyor_events e
         where e.namespace = $1 and e.event_type = q.event_type
           and e.routing_key = q.routing_key and e.status = 'pending' and not e.blocked
           and e.available_at > '-infinity' -- the due index's predicate
           and e.available_at <= now()) as oldest_due_ms
  from unnest($2::text[], $3::text[]) as q(event_type, routing_key)
