-- The pruner: cancelled rows past the delivered retention (the enum value `cancelled` was
-- added, and committed, by 20261203000001_cancel_and_errors.sql).
create index conveyor_events_cancelled_idx
    on conveyor_events (updated_at)
    where status = 'cancelled';
