-- Postgres's claim and completion count their own transitions from this version (see the
-- Postgres migration of this version); SQLite's already do (20261207000001_counted_transitions).
-- This version keeps both backends' migration histories the same.
select 1;
