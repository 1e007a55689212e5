-- Rebuild, step 2: forget the daily actors of days $1..=$2.
delete from analytics_daily_actors where day between $1 and $2
