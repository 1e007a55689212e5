-- One fairness group's priority levels and the due events of its highest: rows with an id
-- are the first $6 due events of the highest level (one range of the pending index, in its
-- order); rows without one name each level present, highest first (one index seek each).
-- So a group whose events share one priority (the common case) needs this one statement.
-- $1 namespace, $2 event_type, $3 routing_key, $4 fairness key, $5 now (ms), $6 limit
with recursive levels (priority) as (
    select (select priority
              from conveyor_events
             where status = 'pending' and not blocked and namespace = $1 and event_type = $2
               and routing_key = $3 and fairness_key = $4
             order by priority desc
             limit 1)
    union all
    select (select e.priority
              from conveyor_events e
             where e.status = 'pending' and not e.blocked and e.namespace = $1 and e.event_type = $2
               and e.routing_key = $3 and e.fairness_key = $4 and e.priority < l.priority
             order by e.priority desc
             limit 1)
      from levels l
     where l.priority is not null
)
select id, priority, available_at
  from (select id, priority, available_at
          from conveyor_events
         where status = 'pending' and not blocked and namespace = $1 and event_type = $2 and routing_key = $3
           and fairness_key = $4 and priority = (select max(priority) from levels)
           and available_at <= $5
         order by available_at, id
         limit $6)
union all
select null, priority, null
  from levels
 where priority is not null
