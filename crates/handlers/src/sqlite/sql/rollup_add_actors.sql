-- Record the actors of newly seen events ($1, as for rollup_add_counts.sql) once per
-- (namespace, day).
insert into analytics_daily_actors (namespace, day, actor_id)
select distinct e.value ->> 'namespace', e.value ->> 'day', e.value ->> 'actor_id'
  from json_each($1) e
 where true
    on conflict do nothing
