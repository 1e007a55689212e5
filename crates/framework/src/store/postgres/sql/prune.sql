-- Delete up to $3 delivered and up to $3 cancelled events older than the retention ($2 ms),
-- oldest first, each through its own partial index (Oban prunes cancelled jobs with
-- completed ones). Runs in chunks from the pool's maintenance task so the table stays bounded.
-- $1 namespace, $2 retention in milliseconds, $3 limit
delete from conveyor_events
 where id = any(array(
         select id
           from conveyor_events
          where status = 'delivered'
            and updated_at < now() - make_interval(secs => $2::float8 / 1000)
            and namespace = $1
          order by updated_at
          limit $3
            for update skip locked)
       || array(
         select id
           from conveyor_events
          where status = 'cancelled'
            and updated_at < now() - make_interval(secs => $2::float8 / 1000)
            and namespace = $1
          order by updated_at
          limit $3
            for update skip locked))
