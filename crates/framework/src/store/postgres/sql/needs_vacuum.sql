-- Whether `conveyor_events` needs a vacuum that autovacuum will not run: autovacuum is off
-- (on the server or for the table) and dead rows pass 10,000 and 10 % of the live ones.
select coalesce((
    select (current_setting('autovacuum') = 'off'
            or coalesce(c.reloptions @> array['autovacuum_enabled=false'], false))
           and s.n_dead_tup > 10000
           and s.n_dead_tup > s.n_live_tup / 10
      from pg_stat_user_tables s
      join pg_class c on c.oid = s.relid
     where s.relid = 'conveyor_events'::regclass
), false)
