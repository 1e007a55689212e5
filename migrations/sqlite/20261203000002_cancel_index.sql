-- The pruner: cancelled rows past the delivered retention (a migration of its own, as on
-- Postgres, where the new status must be committed before an index can name it).
create index conveyor_events_cancelled_idx
    on conveyor_events (updated_at)
    where status = 'cancelled';
