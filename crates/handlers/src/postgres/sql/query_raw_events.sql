-- One page of the raw events of namespace $1 in the window [$2, $3), in (ts, event_id) order,
-- optionally only event type $4. Keyset pagination: events after ($5, $6), the last event of
-- the previous page; the first page passes a position just before $2, so the row comparison
-- is always a bound events_raw_window_idx (namespace, ts, event_id) seeks to. Partitions
-- outside the window are pruned.
select event_id, event_type, actor_id, source, ts, attributes
  from events_raw
 where namespace = $1
   and ts >= $2 and ts < $3
   and (ts, event_id) > ($5::timestamptz, $6::uuid)
   and ($4::text is null or event_type = $4)
 order by ts, event_id
 limit $7
