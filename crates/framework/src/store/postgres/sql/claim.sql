-- Claim up to $5 due events of one queue for worker $4, in one statement.
--
-- Round-robin fairness: walk the distinct fairness groups with a skip scan over the
-- partial pending index (groups after the cursor $7 first, then wrapping around), give
-- each group an equal share of the batch, lock each share with `skip locked`, and
-- lease what was locked. A backlog in one group never starves another.
-- Paused queues claim nothing. Expired leases are left to the reaper (reap.sql), so
-- this statement only ever touches pending rows.
--
-- $1 namespace, $2 event_type, $3 routing_key, $4 worker, $5 limit,
-- $6 lease in milliseconds, $7 fairness cursor
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
    select fairness_key from (
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
picked as (
    select c.id
      from groups g
      cross join lateral (
          select e.id
            from conveyor_events e
           where e.status = 'pending' and e.namespace = $1 and e.event_type = $2
             and e.routing_key = $3 and e.fairness_key = g.fairness_key
             and e.available_at <= now()
           order by e.available_at, e.id
           limit (select per_group from share)
           for update of e skip locked) c
     limit $5
)
update conveyor_events e
   set status = 'claimed',
       attempts = e.attempts + 1,
       claimed_at = now(),
       claimed_by = $4,
       lease_expires_at = now() + make_interval(secs => $6::float8 / 1000),
       updated_at = now()
 where e.id = any(array(select id from picked))
returning e.id, e.payload::text as payload, e.attempts, e.fairness_key, e.causation_id, e.correlation_id,
          e.created_at, e.last_error
