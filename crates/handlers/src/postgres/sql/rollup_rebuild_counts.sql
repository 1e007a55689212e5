-- Rebuild, step 5: the daily counts of [$1, $2), recomputed from events_raw.
insert into analytics_daily_event_counts (namespace, day, event_type, source, count)
select namespace, (ts at time zone 'UTC')::date, event_type, source, count(*)
  from events_raw
 where ts >= $1 and ts < $2
 group by 1, 2, 3, 4
