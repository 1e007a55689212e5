-- Idempotency keys outlive their events: a key is refused for its window (a store setting,
-- 24 hours by default), however soon its event is delivered and pruned. Until now a key was
-- enforced only while its row existed in conveyor_events (10 minutes after delivery by
-- default), so a client retry after that ran the whole workflow again.
create table conveyor_idempotency_keys (
    namespace       text not null,
    idempotency_key text not null,
    -- the event the key was first published with: what a duplicate reports
    event_id        integer not null,
    -- ms since the epoch; after this the key may be used again
    expires_at      integer not null,
    primary key (namespace, idempotency_key)
) without rowid;

-- The pruner: expired keys.
create index conveyor_idempotency_keys_expiry_idx on conveyor_idempotency_keys (expires_at);

-- Keys already in the outbox stay enforced for the default window from now.
insert into conveyor_idempotency_keys (namespace, idempotency_key, event_id, expires_at)
select namespace, idempotency_key, id, cast((julianday('now') - 2440587.5) * 86400000 as integer) + 86400000
  from conveyor_events
 where idempotency_key is not null;

-- The key table enforces uniqueness now (a key may return once its window has passed, while
-- its old event is still kept); the column stays on the row for operators.
drop index conveyor_events_idempotency_idx;
