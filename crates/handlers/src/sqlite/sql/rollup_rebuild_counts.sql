-- Rebuild, step 5: the daily counts of [$1, $2), recomputed from events_raw. The day is the
-- UTC date of `ts` (µs), floored to midnight first so instants before 1970 date correctly.
insert into analytics_daily_event_counts (namespace, day, event_type, source, count)
select namespace,
       date((ts - ((ts % 86400000000) + 86400000000) % 86400000000) / 1000000, 'unixepoch'),
       event_type, source, count(*)
  from events_raw
 where ts >= $1 and ts < $2
 group by 1, 2, 3, 4
