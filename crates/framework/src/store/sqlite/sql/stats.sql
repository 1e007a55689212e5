-- The raw counter rows of namespace $1 at $2 (ms), merged per queue in
-- store/stats_cache.rs, as on Postgres (sql/stats.sql there): O(queues). `kind` 0 a
-- queue's counters (migrations/sqlite/20261205000001_counters.sql,
-- 20261206000001_stats_changes.sql; every queue's, as SQLite has no deltas and no
-- compaction stamps), 2 a paused queue, 3 a queue's global limit (`extra`), 4 the read's
-- instant (`pending`).
select 0 as kind, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
       delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
       changes, parked_keys, null as extra, null as extra2
  from conveyor_queue_counts
 where namespace = $1
union all
select 2, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null, null
  from conveyor_paused_handlers
 where namespace = $1
union all
select 3, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, max_in_flight, null
  from conveyor_queue_settings
 where namespace = $1 and max_in_flight is not null
union all
select 4, '', '', $2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null, null
