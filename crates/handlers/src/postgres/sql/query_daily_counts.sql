-- One page of daily counts of namespace $1 over days $2..=$3, in (day, event type, source)
-- order, optionally only event type $4 and/or source $5. Keyset pagination: rows after
-- ($6, $7, $8), the last row of the previous page; the first page passes the day before $2
-- and empty strings, so the row comparison is always a bound the primary key index seeks to
-- (no `$6 is null or …`, which would keep a generic plan from using it).
select day, event_type, source, count
  from analytics_daily_event_counts
 where namespace = $1
   and day between $2 and $3
   and (day, event_type, source) > ($6::date, $7::text, $8::text)
   and ($4::text is null or event_type = $4)
   and ($5::text is null or source = $5)
 order by day, event_type, source
 limit $9
