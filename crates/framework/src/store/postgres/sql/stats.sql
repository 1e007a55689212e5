-- The raw counter rows of namespace $1, merged per queue in store/stats_cache.rs (the
-- joined form's per-row projection costs three times as much). `kind` tags each row: 0 a
-- queue's base counters (migrations/postgres/20261205000001_counters.sql,
-- 20261206000001_stats_changes.sql) stamped after $2 by the compaction (`extra` = the
-- stamp; the reader keeps those it read before), 1 the sum of a queue's uncompacted deltas
-- (`extra` = how many), 2 a paused queue, 3 a queue's global limit (`extra`), 4 the read's
-- instant (`pending`, epoch ms). So a read sends the rows of the queues compacted since
-- the last one: on this box 1,000 queues' rows took 3 ms on the wire alone. The values
-- that depend on the clock come from stats_probe.sql, in the same snapshot, for the queues
-- whose last probe no longer holds.
select 0::int2 as kind, event_type, routing_key, pending, waiting, in_flight, retrying,
       dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
       changes, parked_keys, seq as extra
  from conveyor_queue_counts
 where namespace = $1 and seq > $2
union all
select 1::int2, event_type, routing_key, sum(pending)::int8, sum(waiting)::int8,
       sum(in_flight)::int8, sum(retrying)::int8, sum(dead)::int8, sum(delivered)::int8,
       sum(cancelled)::int8, sum(enqueued_total)::int8, sum(completed_total)::int8,
       sum(failed_total)::int8, sum(dead_total)::int8, sum(changes)::int8,
       sum(parked_keys)::int8, count(*)
  from conveyor_queue_count_deltas
 where namespace = $1
 group by event_type, routing_key
union all
select 2::int2, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null
  from conveyor_paused_handlers
 where namespace = $1
union all
select 3::int2, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, max_in_flight
  from conveyor_queue_settings
 where namespace = $1 and max_in_flight is not null
union all
select 4::int2, '', '', (extract(epoch from now()) * 1000)::int8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       0, 0, 0, null
