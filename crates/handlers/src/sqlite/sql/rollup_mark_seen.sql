-- Mark a batch's event keys counted: $1 is a JSON array of {namespace, event_id, ts}. Returns
-- only the keys this statement newly inserted; the handler counts those events and nothing
-- else, so a duplicate, a retried or a reprocessed batch adds nothing. The batch's
-- transaction holds the database's write lock, so no other batch decides meanwhile.
insert into analytics_rollup_seen (namespace, event_id, ts)
select e.value ->> 'namespace', unhex(e.value ->> 'event_id', '-'), e.value ->> 'ts'
  from json_each($1) e
 where true
    on conflict do nothing
returning namespace, event_id, ts
