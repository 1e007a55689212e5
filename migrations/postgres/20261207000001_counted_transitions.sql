-- SQLite's claim and delivered completion count their own transitions (see the SQLite
-- migration of this version). Postgres keeps its statement-level counter triggers, whose
-- cost per statement the drain does not show (bench throughput within 2% of the build
-- before the counters). This version keeps both backends' migration histories the same.
select 1;
