-- Rebuild, step 3: forget which events of [$1, $2) (UTC midnights of the first day and the
-- day after the last) were counted.
delete from analytics_rollup_seen where ts >= $1 and ts < $2
