-- Priorities (Message::priority, -10..=10, higher claimed first; see the claim's rule
-- against starvation in store/sqlite/claim.rs), as in migrations/postgres.
alter table conveyor_events add column priority integer not null default 0;

-- The claim walks each fairness group's priority levels (highest first) and takes each
-- level's due rows in due order, so the pending index orders by priority before due time.
drop index conveyor_events_pending_idx;
create index conveyor_events_pending_idx
    on conveyor_events (namespace, event_type, routing_key, fairness_key, priority, available_at, id)
    where status = 'pending';
