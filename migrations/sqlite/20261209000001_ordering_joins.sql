-- Postgres's ordering trigger joins its transition tables by hash from this version (see the
-- Postgres migration of this version); SQLite advances keys in row triggers, with no
-- transition tables. This version keeps both backends' migration histories the same.
select 1;
