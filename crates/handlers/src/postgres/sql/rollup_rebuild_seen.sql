-- Rebuild, step 4: every event events_raw holds in [$1, $2) is counted now, so the handler
-- will skip it if it arrives again. Returns how many events that is.
insert into analytics_rollup_seen (namespace, event_id, ts)
select namespace, event_id, ts
  from events_raw
 where ts >= $1 and ts < $2
