-- The clock-dependent values of the queues $3 (a JSON array of [event type, routing key])
-- of namespace $1 at $2 (ms): the scheduled rows (pending, unblocked, due later; a covering
-- range of conveyor_events_due_idx, O(scheduled)), the next scheduled and the oldest due
-- instant (one seek of the same index each). Run after stats.sql in the same read
-- transaction, for the queues the stats cache cannot answer (store/stats_cache.rs).
select q.value ->> 0 as event_type, q.value ->> 1 as routing_key,
       (select count(*) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at > $2) as scheduled,
       (select min(e.available_at) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at > $2) as next_scheduled_ms,
       (select min(e.available_at) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at <= $2) as oldest_due_ms
  from json_each($3) q
