-- Rebuild, step 1: forget the daily counts of days $1..=$2.
delete from analytics_daily_event_counts where day between $1 and $2
