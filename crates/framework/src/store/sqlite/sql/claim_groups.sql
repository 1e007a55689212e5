-- A claim's gate and the fairness groups it walks, in one statement (one round trip to the
-- connection's thread instead of one per group).
-- Row `part` 0 is the gate: whether the queue is paused, and with a global limit
-- (conveyor_queue_settings.max_in_flight) how many more of its events may be claimed now:
-- the limit minus its claimed rows, counted under the claim's write lock.
-- Rows `part` 1 are the groups with pending events after the cursor $4, in order, then
-- rows `part` 2 those from the smallest up to the cursor: one index seek each, at most $5
-- (the batch, or the free room if smaller) in all, none when the gate is shut.
-- $1 namespace, $2 event_type, $3 routing_key, $4 fairness cursor, $5 batch size
with recursive
gate (paused, free) as (
    select exists (select 1 from conveyor_paused_handlers
                    where namespace = $1 and event_type = $2 and routing_key = $3),
           (select max(s.max_in_flight
                       - (select count(*) from conveyor_events e
                           where e.status = 'claimed' and e.namespace = $1
                             and e.event_type = $2 and e.routing_key = $3), 0)
              from conveyor_queue_settings s
             where s.namespace = $1 and s.event_type = $2 and s.routing_key = $3
               and s.max_in_flight is not null)
),
room (n) as (
    select case when paused then 0 else min($5, coalesce(free, $5)) end from gate
),
after (fairness_key) as (
    select (select fairness_key
              from conveyor_events
             where status = 'pending' and not blocked and namespace = $1 and event_type = $2
               and routing_key = $3 and fairness_key > $4
             order by fairness_key
             limit 1)
      from room
     where n > 0
    union all
    select (select e.fairness_key
              from conveyor_events e
             where e.status = 'pending' and not e.blocked and e.namespace = $1
               and e.event_type = $2 and e.routing_key = $3 and e.fairness_key > a.fairness_key
             order by e.fairness_key
             limit 1)
      from after a
     where a.fairness_key is not null
     limit (select n from room)
),
found (n) as (
    select count(*) from after where fairness_key is not null
),
upto (fairness_key) as (
    select (select fairness_key
              from conveyor_events
             where status = 'pending' and not blocked and namespace = $1 and event_type = $2
               and routing_key = $3 and fairness_key <= $4
             order by fairness_key
             limit 1)
      from room, found
     where room.n > found.n
    union all
    select (select e.fairness_key
              from conveyor_events e
             where e.status = 'pending' and not e.blocked and e.namespace = $1
               and e.event_type = $2 and e.routing_key = $3 and e.fairness_key > u.fairness_key
               and e.fairness_key <= $4
             order by e.fairness_key
             limit 1)
      from upto u
     where u.fairness_key is not null
     limit (select room.n - found.n from room, found)
)
select 0 as part, paused, free, null as fairness_key from gate
union all
select 1, null, null, fairness_key from after where fairness_key is not null
union all
select 2, null, null, fairness_key from upto where fairness_key is not null
