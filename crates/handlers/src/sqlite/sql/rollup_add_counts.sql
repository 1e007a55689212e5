-- Count newly seen events ($1: a JSON array of {namespace, day, event_type, source,
-- actor_id}, each event once) into the daily counts, per (namespace, day, type, source).
insert into analytics_daily_event_counts (namespace, day, event_type, source, count)
select e.value ->> 'namespace', e.value ->> 'day', e.value ->> 'event_type',
       e.value ->> 'source', count(*)
  from json_each($1) e
 where true
 group by 1, 2, 3, 4
    on conflict (namespace, day, event_type, source)
    do update set count = analytics_daily_event_counts.count + excluded.count
