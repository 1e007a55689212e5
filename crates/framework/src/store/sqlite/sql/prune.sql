-- Delete up to $3 delivered and up to $3 cancelled events last updated before $2 (ms),
-- oldest first, each through its own partial index (Oban prunes cancelled jobs with
-- completed ones).
-- $1 namespace, $2 cutoff (ms), $3 limit
delete from conveyor_events
 where id in (select id
                from conveyor_events
               where status = 'delivered' and updated_at < $2 and namespace = $1
               order by updated_at
               limit $3)
    or id in (select id
                from conveyor_events
               where status = 'cancelled' and updated_at < $2 and namespace = $1
               order by updated_at
               limit $3)
