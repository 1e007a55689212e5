-- One page of daily counts of namespace $1 over days $2..=$3, in (day, event type, source)
-- order, optionally only event type $4 and/or source $5. Keyset pagination: rows after
-- ($6, $7, $8), the last row of the previous page (the first page passes the day before $2
-- and empty strings), a bound the primary key seeks to.
select day, event_type, source, count
  from analytics_daily_event_counts
 where namespace = $1
   and day between $2 and $3
   and (day, event_type, source) > ($6, $7, $8)
   and ($4 is null or event_type = $4)
   and ($5 is null or source = $5)
 order by day, event_type, source
 limit $9
