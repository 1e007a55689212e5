-- Keep the rollup handler out while a rebuild deletes and recomputes days: share row
-- exclusive conflicts with the handler's inserts (row exclusive) but not with reads. The
-- tables are locked in the order the handler's statement touches them.
lock table analytics_rollup_seen, analytics_daily_event_counts, analytics_daily_actors
    in share row exclusive mode
