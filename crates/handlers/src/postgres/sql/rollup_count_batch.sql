-- Count a batch of events in the daily rollups, each event exactly once, in one statement
-- inside the transaction that completes the batch.
--
-- analytics_rollup_seen holds every event key counted so far: only keys this statement newly
-- inserts there (`returning`) are counted, so a duplicate, a retried or a reprocessed batch
-- adds nothing, and a concurrent batch holding the same key waits for this one to commit or
-- roll back before deciding. Every insert runs in key order, so two batches touching the same
-- rows lock them in the same order and cannot deadlock. The day is the UTC date of the event.
--
-- $1 namespaces, $2 event ids, $3 timestamps, $4 event types, $5 actors, $6 sources
-- (parallel arrays, deduplicated by the caller). Returns the number of newly counted events.
with input as (
    select *
      from unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
        as i(namespace, event_id, ts, event_type, actor_id, source)
),
seen as (
    insert into analytics_rollup_seen (namespace, event_id, ts)
    select namespace, event_id, ts
      from input
     order by namespace, event_id, ts
        on conflict do nothing
    returning namespace, event_id, ts
),
fresh as (
    select i.namespace, (i.ts at time zone 'UTC')::date as day, i.event_type, i.source, i.actor_id
      from input i
      join seen s using (namespace, event_id, ts)
),
counted as (
    insert into analytics_daily_event_counts as c (namespace, day, event_type, source, count)
    select namespace, day, event_type, source, count(*)
      from fresh
     group by namespace, day, event_type, source
     order by namespace, day, event_type, source
        on conflict (namespace, day, event_type, source)
        do update set count = c.count + excluded.count
),
actors as (
    insert into analytics_daily_actors (namespace, day, actor_id)
    select distinct namespace, day, actor_id
      from fresh
     order by namespace, day, actor_id
        on conflict do nothing
)
select count(*) from seen
