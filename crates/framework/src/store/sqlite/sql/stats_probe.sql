-- Probes of the queues $3 (a JSON array of [event type, routing key]) of namespace $1 at $2
-- (ms), in the shape of stats.sql's kind 5 rows: `pending` = the scheduled rows (pending,
-- unblocked, due later; a covering range of conveyor_events_due_idx, O(scheduled)), `extra`
-- = the next scheduled and `extra2` the oldest due instant (one seek of the same index
-- each). Run after stats.sql in the same read transaction, for the queues whose kept probe
-- no longer holds (store/stats_cache.rs).
select 5 as kind, q.value ->> 0 as event_type, q.value ->> 1 as routing_key,
       (select count(*) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at > $2) as pending,
       0 as waiting, 0 as in_flight, 0 as retrying, 0 as dead, 0 as delivered, 0 as cancelled,
       0 as enqueued_total, 0 as completed_total, 0 as failed_total, 0 as dead_total,
       0 as changes, 0 as parked_keys,
       (select min(e.available_at) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at > $2) as extra,
       (select min(e.available_at) from conveyor_events e
         where e.namespace = $1 and e.event_type = q.value ->> 0
           and e.routing_key = q.value ->> 1 and e.status = 'pending' and not e.blocked
           and e.available_at >= 0 -- the due index's predicate
           and e.available_at <= $2) as extra2
  from json_each($3) q
