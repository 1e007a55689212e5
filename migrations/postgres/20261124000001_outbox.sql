-- The outbox: every event Conveyor carries, from publish to delivered or dead.
--
-- One table, because claiming, completing and emitting must commit together.
-- Rows move pending -> claimed -> delivered | pending (retry) | dead.
-- Delivered rows are kept for a retention window (idempotency keys stay enforced,
-- causation chains stay traceable), then pruned in chunks by the pool's maintenance task.

create type conveyor_event_status as enum ('pending', 'claimed', 'delivered', 'dead');

create table conveyor_events (
    id               bigint generated always as identity primary key,
    -- tenants: nothing of one namespace is claimed, read or counted through another
    namespace        text not null,
    -- the payload type's stable name (`Event::NAME`)
    event_type       text not null,
    -- '' when the event has no routing key; a handler claims (event_type, routing_key)
    routing_key      text not null default '',
    payload          jsonb not null,
    status           conveyor_event_status not null default 'pending',
    -- how many times the event has been claimed (a lease lost to a crash counts)
    attempts         integer not null default 0,
    -- not claimable before this instant: delays and retry backoff
    available_at     timestamptz not null default now(),
    -- round-robin claiming across groups (tenant, source, ...); '' is one group
    fairness_key     text not null default '',
    claimed_at       timestamptz,
    claimed_by       text,
    lease_expires_at timestamptz,
    last_error       text,
    -- optional; unique per namespace, so a retried publish is reported, not inserted twice
    idempotency_key  text,
    -- the event whose handler emitted this one, and the id shared by the whole chain
    causation_id     bigint,
    correlation_id   uuid,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint conveyor_events_claim_consistent check (
        (status = 'claimed') = (claimed_by is not null and lease_expires_at is not null)
    )
);

-- The claim: per (namespace, type, routing key), groups by fairness key, due rows first.
-- Partial, so the index holds only pending rows and stays small however large the table grows.
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

-- Every row is updated twice and deleted once: vacuum early and often so dead tuples
-- never pile up in front of the claim index.
alter table conveyor_events set (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- Handlers an operator paused, per namespace. Claims check it in the same statement,
-- so a pause is honoured by every process on its next claim.
create table conveyor_paused_handlers (
    namespace   text not null,
    event_type  text not null,
    routing_key text not null,
    paused_at   timestamptz not null default now(),
    primary key (namespace, event_type, routing_key)
);
