-- One stats read of namespace $1, in one statement (one snapshot): raw counter rows and
-- due-index probes, merged per queue in store/stats_cache.rs, which keeps what it read
-- (joining in SQL cost three times as much per row, and 1,000 queues' rows took 3 ms on the
-- wire alone on a 2-core box). `kind` tags each row:
-- 0 a queue's base counters (migrations/postgres/20261205000001_counters.sql,
--   20261206000001_stats_changes.sql) that a compaction stamped after $2, the newest stamp
--   the reader has (`extra` = the stamp);
-- 1 the sum of a queue's uncompacted deltas (`extra` = how many);
-- 2 a paused queue; 3 a queue's global limit (`extra`);
-- 4 the read's instant (`pending`, epoch ms) and snapshot (`event_type`);
-- 5 a probe of conveyor_events_due_idx: `pending` = scheduled rows (pending, unblocked, due
--   later; O(scheduled)), `extra` = the next scheduled and `extra2` the oldest due instant.
-- Probed are the queues that may have changed since the reader's last read: those with
-- deltas its snapshot $6 did not see (all deltas when null) or a base row stamped after $2
-- (every change appends a delta in its own transaction, and a compaction stamps what it
-- folds), and those of the reader's probes $3..$5 (event type, routing key, next scheduled
-- instant) whose next scheduled event has come due by the clock alone.
-- Planned once per connection (a test pins it): `seq < 9223372036854775807` (true of every
-- stamp) pairs with `seq > $2`, so the generic plan estimates a narrow range of stamped rows
-- instead of a third of all queues; with that estimate it costs what the custom plans do and
-- Postgres keeps it, where before it planned every read again. The snapshot $6 is parsed once
-- (`snap`), not for every delta.
-- Names are grouped under "C" so a sort, if the planner picks one, compares bytes (under
-- the database's libc collation 1,000 names took 4-6 ms to sort), and compared with the
-- outbox under its own collation, which the due index has.
with snap as materialized (
    select $6::pg_snapshot as s
),
deltas as (
    select event_type collate "C" as event_type, routing_key collate "C" as routing_key,
           sum(pending)::int8 as pending, sum(waiting)::int8 as waiting,
           sum(in_flight)::int8 as in_flight, sum(retrying)::int8 as retrying,
           sum(dead)::int8 as dead, sum(delivered)::int8 as delivered,
           sum(cancelled)::int8 as cancelled, sum(enqueued_total)::int8 as enqueued_total,
           sum(completed_total)::int8 as completed_total,
           sum(failed_total)::int8 as failed_total, sum(dead_total)::int8 as dead_total,
           sum(changes)::int8 as changes, sum(parked_keys)::int8 as parked_keys, count(*) as n,
           bool_or(snap.s is null or not pg_visible_in_snapshot(txid, snap.s))
               as fresh
      from conveyor_queue_count_deltas, snap
     where namespace = $1
     group by 1, 2
),
stamped as (
    select event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered,
           cancelled, enqueued_total, completed_total, failed_total, dead_total, changes,
           parked_keys, seq
      from conveyor_queue_counts
     where namespace = $1 and seq > $2 and seq < 9223372036854775807
),
clock as (
    select (extract(epoch from now()) * 1000)::int8 as now_ms
),
changed as (
    select event_type, routing_key
      from (select event_type, routing_key from deltas where fresh
            union all
            select event_type collate "C", routing_key collate "C" from stamped
            union all
            select k.event_type collate "C", k.routing_key collate "C"
              from unnest($3::text[], $4::text[], $5::int8[]) as k(event_type, routing_key, next_ms),
                   clock
             where k.next_ms <= clock.now_ms) c
     group by 1, 2
)
select 0::int2 as kind, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
       delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
       changes, parked_keys, seq as extra, null::int8 as extra2
  from stamped
union all
select 1::int2, event_type collate "default", routing_key collate "default", pending, waiting, in_flight, retrying, dead,
       delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
       changes, parked_keys, n, null
  from deltas
union all
select 2::int2, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null, null
  from conveyor_paused_handlers
 where namespace = $1
union all
select 3::int2, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, max_in_flight,
       null
  from conveyor_queue_settings
 where namespace = $1 and max_in_flight is not null
union all
select 4::int2, pg_current_snapshot()::text, '', now_ms, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       null, null
  from clock
union all
select 5::int2, c.event_type collate "default", c.routing_key collate "default", s.scheduled, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       s.next_ms, o.oldest_ms
  from changed c
 cross join lateral (
       select count(*) as scheduled,
              (extract(epoch from min(e.available_at)) * 1000)::int8 as next_ms
         from conveyor_events e
        where e.namespace = $1 and e.event_type = c.event_type collate "default"
          and e.routing_key = c.routing_key collate "default" and e.status = 'pending' and not e.blocked
          and e.available_at > '-infinity' -- the due index's predicate
          and e.available_at > now()) s
 cross join lateral (
       select (extract(epoch from min(e.available_at)) * 1000)::int8 as oldest_ms
         from conveyor_events e
        where e.namespace = $1 and e.event_type = c.event_type collate "default"
          and e.routing_key = c.routing_key collate "default" and e.status = 'pending' and not e.blocked
          and e.available_at > '-infinity' -- the due index's predicate
          and e.available_at <= now()) o
