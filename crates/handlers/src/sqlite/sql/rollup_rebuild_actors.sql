-- Rebuild, step 6: the daily actors of [$1, $2), recomputed from events_raw (days as in
-- rollup_rebuild_counts.sql).
insert into analytics_daily_actors (namespace, day, actor_id)
select distinct namespace,
       date((ts - ((ts % 86400000000) + 86400000000) % 86400000000) / 1000000, 'unixepoch'),
       actor_id
  from events_raw
 where ts >= $1 and ts < $2
