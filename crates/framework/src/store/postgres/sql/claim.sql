-- Claim up to $5 due events of one queue for worker $4, in one statement.
--
-- Round-robin fairness: walk the distinct fairness groups with a skip scan over the
-- partial pending index (groups after the cursor $7 first, then wrapping around), give
-- each group an equal share of the batch, and lease what each share picked. A backlog in
-- one group never starves another.
--
-- Priorities, within each group's share (the rule stated on `Message::priority`): events
-- due for longer than the aging $8 come first, oldest first, whatever their priority; then
-- the rest by priority (highest first), due time, id. Per group, a second skip scan walks
-- the distinct priority levels present (highest first; at most 21), and each level offers
-- its first `share` due rows in due order from the index, without locking them. That is
-- enough: the rule orders one level's rows by due time (a level's aged rows are its
-- oldest), so whatever it takes from a level is a prefix of that level. The rule picks each
-- group's share among the offers, which says how many rows each (group, level) gives; then
-- each (group, level) locks that many of its first due rows with `skip locked` (so a
-- concurrent claim walks on past rows another holds instead of coming back short, and rows
-- that were only offered are never locked), and the update leases them. Cost
-- O(groups x levels x share), never O(backlog). With every event at one priority this is
-- the plain due-time claim.
--
-- The batch comes back in the rule's order across groups. Paused queues claim nothing.
-- Expired leases are left to the reaper (reap.sql), so this statement only ever touches
-- pending rows.
--
-- $1 namespace, $2 event_type, $3 routing_key, $4 worker, $5 limit,
-- $6 lease in milliseconds, $7 fairness cursor, $8 priority aging in milliseconds
with recursive
active as (
    select 1
     where not exists (
         select 1 from conveyor_paused_handlers p
          where p.namespace = $1 and p.event_type = $2 and p.routing_key = $3)
),
after_cursor (fairness_key, n) as (
    (select e.fairness_key, 1
       from conveyor_events e, active
      where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
        and e.routing_key = $3 and e.fairness_key > $7
      order by e.fairness_key
      limit 1)
    union all
    select nxt.fairness_key, g.n + 1
      from after_cursor g
      cross join lateral (
          select e.fairness_key
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key > g.fairness_key
           order by e.fairness_key
           limit 1) nxt
     where g.n < $5
),
up_to_cursor (fairness_key, n) as (
    (select e.fairness_key, 1
       from conveyor_events e, active
      where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
        and e.routing_key = $3 and e.fairness_key <= $7
      order by e.fairness_key
      limit 1)
    union all
    select nxt.fairness_key, g.n + 1
      from up_to_cursor g
      cross join lateral (
          select e.fairness_key
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key > g.fairness_key
             and e.fairness_key <= $7
           order by e.fairness_key
           limit 1) nxt
     where g.n < $5
),
groups as (
    select fairness_key, n from (
        select fairness_key, n from after_cursor
        union all
        select fairness_key, n + $5 from up_to_cursor
    ) g
    order by n
    limit $5
),
share as (
    select greatest(1, ceil($5::float8 / greatest(count(*), 1)))::bigint as per_group
      from groups
),
levels (fairness_key, priority) as (
    select g.fairness_key, top.priority
      from groups g
      cross join lateral (
          select e.priority
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = g.fairness_key
           order by e.priority desc
           limit 1) top
    union all
    select l.fairness_key, nxt.priority
      from levels l
      cross join lateral (
          select e.priority
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = l.fairness_key
             and e.priority < l.priority
           order by e.priority desc
           limit 1) nxt
),
offers as (
    select l.fairness_key, l.priority, o.id, o.available_at,
           o.available_at <= now() - make_interval(secs => $8::float8 / 1000) as aged
      from levels l
      cross join lateral (
          select e.id, e.available_at
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = l.fairness_key
             and e.priority = l.priority and e.available_at <= now()
           order by e.available_at, e.id
           limit (select per_group from share)) o
),
ranked as (
    select o.fairness_key, o.priority, g.n,
           row_number() over (
               partition by o.fairness_key
               order by o.aged desc, case when o.aged then o.available_at end,
                        o.priority desc, o.available_at, o.id) as rank
      from offers o
      join groups g on g.fairness_key = o.fairness_key
),
quota as (
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
      from quota q
      cross join lateral (
          select e.id, e.priority, e.available_at
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = q.fairness_key
             and e.priority = q.priority and e.available_at <= now()
           order by e.available_at, e.id
           limit q.k
           for update of e skip locked) c
),
leased as (
    update conveyor_events e
       set status = 'claimed',
           attempts = e.attempts + 1,
           claimed_at = now(),
           claimed_by = $4,
           lease_expires_at = now() + make_interval(secs => $6::float8 / 1000),
           updated_at = now()
     where e.id = any(array(select id from picked))
    returning e.id, e.payload::text as payload, e.attempts, e.fairness_key, e.causation_id,
              e.correlation_id, e.created_at, e.last_error
)
select l.*
  from leased l
  join picked p on p.id = l.id
 order by p.aged desc, case when p.aged then p.available_at end, p.priority desc,
          p.available_at, p.id
