-- The event types of namespace $1 over days $2..=$3 with their event counts, most frequent
-- first, ties by name so the order is stable.
select event_type, sum(count)::bigint as count
  from analytics_daily_event_counts
 where namespace = $1
   and day between $2 and $3
 group by event_type
 order by count desc, event_type
