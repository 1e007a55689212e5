-- Claim up to $5 due events of one queue for worker $4, in one statement.
--
-- Round-robin fairness: walk the queue's (fairness group, priority level) pairs with a skip
-- scan over the partial pending index: groups after the cursor $7 first, then wrapping
-- around, and within a group its levels highest first (at most 21), one index seek per
-- pair. Each of the first $5 groups gets an equal share of the batch. A backlog in one
-- group never starves another.
--
-- Priorities, within each group's share (the rule stated on `Message::priority`): events
-- due for longer than the aging $8 come first, oldest first, whatever their priority; then
-- the rest by priority (highest first), due time, id. Each level offers the due times of
-- its first `share` due rows, in index order, without locking them. That is enough: the
-- rule orders one level's rows by due time (a level's aged rows are its oldest), so
-- whatever it takes from a level is a prefix of that level. The rule picks each group's
-- share among the offers, which says how many rows each (group, level) gives (`quota`);
-- then each (group, level) locks that many of its first due rows with `skip locked` (so a
-- concurrent claim walks on past rows another holds instead of coming back short, and rows
-- that were only offered are never locked), and the update leases them. Cost
-- O(groups x levels x share), never O(backlog). With every event at one priority this is
-- the plain due-time claim.
--
-- A group whose pending events share one level (the common case: one priority) needs no
-- offers or ranking: the rule is due-time order there, so it locks its share directly, as
-- the claim did before priorities existed. Single-level groups can then take up to one
-- share each, so the lease keeps at most $5 of what was picked (a row picked beyond that
-- stays pending; its lock ends with the statement).
--
-- Kept cheap in the planner's estimate, not only in fact (a test pins it): a generic plan
-- costed above `jit_above_cost` is JIT-compiled at every execution (over a second here).
-- So the walk yields pairs (one recursion, estimated like the group walk alone), the offers
-- are one array per level, and `quota` is materialized and read by each level's lock.
--
-- Ordering keys: events waiting behind an earlier one of their key are `blocked` and outside
-- the pending index (every probe here says `not e.blocked`), so waiting and parked keys cost
-- nothing; see the ordering migration for how a key advances.
--
-- Global limits: a queue with `max_in_flight` (conveyor_queue_settings) first locks free
-- slots (conveyor_slots, `skip locked`) and leases at most as many events as it got, each
-- slot marked with its event in `assigned`; a trigger frees the slot when the event stops
-- being claimed. Two claims never hold the same slot, so at most max_in_flight events of the
-- queue are claimed at once across every process. No free slot: the walk does not run.
-- The walk's first probes test `active` as an uncorrelated `exists`, which Postgres runs
-- once, before the scan (a one-time filter): joined as a table instead, the planner put it
-- on the inner side of the first probe's nested loop, so a claim that found no free slot
-- (or a paused queue) walked every pending row of the queue to come back empty.
-- Unlimited queues read one settings row and skip the rest.
--
-- The batch comes back in the rule's order across groups. Paused queues claim nothing.
-- Expired leases are left to the reaper (reap.sql), so this statement only ever touches
-- pending rows.
--
-- $1 namespace, $2 event_type, $3 routing_key, $4 worker, $5 limit,
-- $6 lease in milliseconds, $7 fairness cursor, $8 priority aging in milliseconds
with recursive
limits as (
    select s.max_in_flight
      from conveyor_queue_settings s
     where s.namespace = $1 and s.event_type = $2 and s.routing_key = $3
       and s.max_in_flight is not null
),
slots as materialized (
    select sl.slot
      from conveyor_slots sl
     where exists (select 1 from limits)
       and sl.namespace = $1 and sl.event_type = $2 and sl.routing_key = $3
       and sl.event_id is null
     order by sl.slot
     limit $5
       for update skip locked
),
cap as (
    select case when exists (select 1 from limits) then (select count(*) from slots)
                else $5 end as n
),
active as (
    select 1
     where not exists (
         select 1 from conveyor_paused_handlers p
          where p.namespace = $1 and p.event_type = $2 and p.routing_key = $3)
       and (select n from cap) > 0
),
after_cursor (fairness_key, priority, n) as (
    (select f.fairness_key, top.priority, 1
       from (select e.fairness_key
               from conveyor_events e
              where exists (select 1 from active)
                and e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                and e.routing_key = $3 and e.fairness_key > $7
              order by e.fairness_key
              limit 1) f
      cross join lateral (
          select e.priority
            from conveyor_events e
           where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = f.fairness_key
           order by e.priority desc
           limit 1) top)
    union all
    select coalesce(below.fairness_key, nxt.fairness_key),
           coalesce(below.priority, nxt.priority),
           case when below.priority is null then w.n + 1 else w.n end
      from after_cursor w
      left join lateral (
          select e.fairness_key, e.priority
            from conveyor_events e
           where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = w.fairness_key
             and e.priority < w.priority
           order by e.priority desc
           limit 1) below on true
      left join lateral (
          select f.fairness_key, top.priority
            from (select e.fairness_key
                    from conveyor_events e
                   where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                     and e.routing_key = $3 and e.fairness_key > w.fairness_key
                   order by e.fairness_key
                   limit 1) f
           cross join lateral (
               select e.priority
                 from conveyor_events e
                where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                  and e.routing_key = $3 and e.fairness_key = f.fairness_key
                order by e.priority desc
                limit 1) top) nxt on below.priority is null and w.n < $5
     where below.priority is not null or nxt.priority is not null
),
up_to_cursor (fairness_key, priority, n) as (
    (select f.fairness_key, top.priority, 1
       from (select e.fairness_key
               from conveyor_events e
              where exists (select 1 from active)
                and e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                and e.routing_key = $3 and e.fairness_key <= $7
              order by e.fairness_key
              limit 1) f
      cross join lateral (
          select e.priority
            from conveyor_events e
           where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = f.fairness_key
           order by e.priority desc
           limit 1) top)
    union all
    select coalesce(below.fairness_key, nxt.fairness_key),
           coalesce(below.priority, nxt.priority),
           case when below.priority is null then w.n + 1 else w.n end
      from up_to_cursor w
      left join lateral (
          select e.fairness_key, e.priority
            from conveyor_events e
           where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = w.fairness_key
             and e.priority < w.priority
           order by e.priority desc
           limit 1) below on true
      left join lateral (
          select f.fairness_key, top.priority
            from (select e.fairness_key
                    from conveyor_events e
                   where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                     and e.routing_key = $3 and e.fairness_key > w.fairness_key
                     and e.fairness_key <= $7
                   order by e.fairness_key
                   limit 1) f
           cross join lateral (
               select e.priority
                 from conveyor_events e
                where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                  and e.routing_key = $3 and e.fairness_key = f.fairness_key
                order by e.priority desc
                limit 1) top) nxt on below.priority is null and w.n < $5
     where below.priority is not null or nxt.priority is not null
),
walk as (
    select fairness_key, priority, n from after_cursor
    union all
    select fairness_key, priority, n + $5 from up_to_cursor
),
groups as (
    select fairness_key, n
      from (select distinct fairness_key, n from walk) g
     order by n
     limit $5
),
share as (
    select greatest(1, ceil($5::float8 / greatest(count(*), 1)))::bigint as per_group
      from groups
),
levels as (
    select w.fairness_key, w.priority,
           count(*) over (partition by w.fairness_key) = 1 as alone
      from walk w
      join groups g on g.fairness_key = w.fairness_key
),
offers as (
    select l.fairness_key, l.priority,
           array(select e.available_at
                   from conveyor_events e
                  where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
                    and e.routing_key = $3 and e.fairness_key = l.fairness_key
                    and e.priority = l.priority and e.available_at <= now()
                  order by e.available_at, e.id
                  limit (select per_group from share)) as due
      from levels l
     where not l.alone
),
ranked as (
    select o.fairness_key, o.priority, g.n,
           row_number() over (
               partition by o.fairness_key
               order by d.aged desc, case when d.aged then d.at end, o.priority desc, d.at,
                        d.ord) as rank
      from offers o
      join groups g on g.fairness_key = o.fairness_key
      cross join lateral (
          select u.at, u.ord, u.at <= now() - make_interval(secs => $8::float8 / 1000) as aged
            from unnest(o.due) with ordinality u (at, ord)) d
),
quota as materialized (
    select fairness_key, priority, count(*) as k
      from (select fairness_key, priority
              from ranked
             where rank <= (select per_group from share)
             order by n, rank
             limit $5) w
     group by fairness_key, priority
),
picked as (
    select c.id, c.priority, c.available_at,
           c.available_at <= now() - make_interval(secs => $8::float8 / 1000) as aged
      from levels l
      cross join lateral (
          select e.id, e.priority, e.available_at
            from conveyor_events e
           where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = l.fairness_key
             and e.priority = l.priority and e.available_at <= now()
           order by e.available_at, e.id
           limit case when l.alone then (select per_group from share)
                      else coalesce((select q.k from quota q
                                      where q.fairness_key = l.fairness_key
                                        and q.priority = l.priority), 0) end
           for update of e skip locked) c
),
leased as (
    update conveyor_events e
       set status = 'claimed',
           attempts = e.attempts + 1,
           claimed_at = now(),
           claimed_by = $4,
           lease_expires_at = now() + make_interval(secs => $6::float8 / 1000),
           limited = exists (select 1 from limits),
           updated_at = now()
     where e.id = any(array(
             select id from picked
              order by aged desc, case when aged then available_at end, priority desc,
                       available_at, id
              limit (select n from cap)))
    returning e.id, e.payload::text as payload, e.attempts, e.fairness_key, e.causation_id,
              e.correlation_id, e.created_at,
              greatest(e.available_at, e.created_at) as due_at, e.last_error, e.ordering_key,
              e.traceparent
),
-- pending -> claimed, counted here rather than by the update trigger (migration
-- 20261208000001_self_counted: setting the flag makes the trigger return at once)
counted as (
    insert into conveyor_queue_count_deltas
        (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
         delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
         changes, parked_keys)
    select $1, $2, $3, -count(*), 0, count(*), -count(*) filter (where attempts > 1), 0, 0, 0,
           0, 0, 0, 0, count(*), 0
      from leased
    having count(*) > 0 and set_config('conveyor.self_counted', 'on', true) = 'on'
),
-- the n-th leased event takes the n-th locked slot: the two sorted arrays zipped by one
-- unnest (a join on row numbers was planned as a nested loop, O(slots x events))
assigned as (
    update conveyor_slots sl
       set event_id = a.id
      from unnest(array(select id from leased order by id),
                  array(select slot from slots order by slot)) as a (id, slot)
     where a.id is not null
       and sl.namespace = $1 and sl.event_type = $2 and sl.routing_key = $3
       and sl.slot = a.slot
)
select l.*
  from leased l
  join picked p on p.id = l.id
 order by p.aged desc, case when p.aged then p.available_at end, p.priority desc,
          p.available_at, p.id
