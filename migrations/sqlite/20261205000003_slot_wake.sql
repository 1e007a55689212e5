-- Freeing a global-limit slot wakes the queue (see the Postgres migration of this version).
-- SQLite has no slots and no notifications: its completion wakes a limited queue in
-- process after the commit (store/sqlite/complete.rs). This version keeps both backends'
-- migration histories the same.
select 1;
