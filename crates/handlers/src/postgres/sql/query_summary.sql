-- Total events and distinct actors of namespace $1 over days $2..=$3. Distinct actors come
-- from analytics_daily_actors, so an actor active on several days counts once.
select (select coalesce(sum(count), 0)::bigint
          from analytics_daily_event_counts
         where namespace = $1 and day between $2 and $3) as total,
       (select count(distinct actor_id)
          from analytics_daily_actors
         where namespace = $1 and day between $2 and $3) as unique_actors
