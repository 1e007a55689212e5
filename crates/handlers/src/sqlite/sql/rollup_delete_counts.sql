-- Rebuild, step 1: forget the daily counts of days $1..=$2 ('YYYY-MM-DD').
delete from analytics_daily_event_counts where day between $1 and $2
