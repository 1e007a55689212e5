-- The outbox on SQLite: the same rows and states as migrations/postgres, in SQLite's types.
--
-- Instants are integer milliseconds since the Unix epoch (UTC), set by the store from one
-- clock reading per statement, so comparisons and ordering are exact. Payloads are JSON text.
-- Rows move pending -> claimed -> delivered | pending (retry) | dead.

create table conveyor_events (
    -- autoincrement: ids are never reused, even after the newest rows are pruned
    id               integer primary key autoincrement,
    namespace        text not null,
    event_type       text not null,
    routing_key      text not null default '',
    payload          text not null,
    status           text not null default 'pending'
                     check (status in ('pending', 'claimed', 'delivered', 'dead')),
    attempts         integer not null default 0,
    available_at     integer not null,
    fairness_key     text not null default '',
    claimed_at       integer,
    claimed_by       text,
    lease_expires_at integer,
    last_error       text,
    idempotency_key  text,
    causation_id     integer,
    correlation_id   text,
    created_at       integer not null,
    updated_at       integer not null,
    check ((status = 'claimed') = (claimed_by is not null and lease_expires_at is not null))
);

-- The claim: per queue, groups by fairness key, due rows first; pending rows only.
create index conveyor_events_pending_idx
    on conveyor_events (namespace, event_type, routing_key, fairness_key, available_at, id)
    where status = 'pending';

-- The reaper: expired leases.
create index conveyor_events_claimed_idx
    on conveyor_events (lease_expires_at)
    where status = 'claimed';

-- The pruner: delivered rows past retention.
create index conveyor_events_delivered_idx
    on conveyor_events (updated_at)
    where status = 'delivered';

-- Dead letters: listed, replayed and purged by operators.
create index conveyor_events_dead_idx
    on conveyor_events (namespace, event_type, routing_key, id)
    where status = 'dead';

create unique index conveyor_events_idempotency_idx
    on conveyor_events (namespace, idempotency_key)
    where idempotency_key is not null;

-- Handlers an operator paused, per namespace; every claim checks it.
create table conveyor_paused_handlers (
    namespace   text not null,
    event_type  text not null,
    routing_key text not null,
    paused_at   integer not null,
    primary key (namespace, event_type, routing_key)
);
