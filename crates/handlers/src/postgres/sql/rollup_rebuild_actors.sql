-- Rebuild, step 6: the daily actors of [$1, $2), recomputed from events_raw.
insert into analytics_daily_actors (namespace, day, actor_id)
select distinct namespace, (ts at time zone 'UTC')::date, actor_id
  from events_raw
 where ts >= $1 and ts < $2
