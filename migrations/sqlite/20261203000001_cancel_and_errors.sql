-- Cancellation and error history (issue 13, items 3 and 8), as in migrations/postgres.
--
-- `cancelled` is a state of its own; `cancel_reason` is set with it (on a claimed row it is
-- the request, applied when the batch completes); `errors` is a JSON array of the last 5
-- failed attempts, newest last, null until one fails.
--
-- The status check cannot be altered in place on SQLite, so the table is rebuilt (copied,
-- dropped, renamed) with its indexes, inside this migration's transaction. Nothing
-- references the table. The autoincrement counter is carried over, so ids stay never reused.
create table conveyor_events_new (
    id               integer primary key autoincrement,
    namespace        text not null,
    event_type       text not null,
    routing_key      text not null default '',
    payload          text not null,
    status           text not null default 'pending'
                     check (status in ('pending', 'claimed', 'delivered', 'dead', 'cancelled')),
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
    cancel_reason    text,
    errors           text,
    check ((status = 'claimed') = (claimed_by is not null and lease_expires_at is not null))
);

insert into conveyor_events_new
    (id, namespace, event_type, routing_key, payload, status, attempts, available_at,
     fairness_key, claimed_at, claimed_by, lease_expires_at, last_error, idempotency_key,
     causation_id, correlation_id, created_at, updated_at)
select id, namespace, event_type, routing_key, payload, status, attempts, available_at,
       fairness_key, claimed_at, claimed_by, lease_expires_at, last_error, idempotency_key,
       causation_id, correlation_id, created_at, updated_at
  from conveyor_events;

delete from sqlite_sequence where name = 'conveyor_events_new';
insert into sqlite_sequence (name, seq)
select 'conveyor_events_new', seq from sqlite_sequence where name = 'conveyor_events';

drop table conveyor_events;
alter table conveyor_events_new rename to conveyor_events;

-- The indexes of 20261124000001_outbox.sql (the idempotency index was dropped since); the
-- pruner's index on cancelled rows is in 20261203000002_cancel_index.sql, as on Postgres.
create index conveyor_events_pending_idx
    on conveyor_events (namespace, event_type, routing_key, fairness_key, available_at, id)
    where status = 'pending';

create index conveyor_events_claimed_idx
    on conveyor_events (lease_expires_at)
    where status = 'claimed';

create index conveyor_events_delivered_idx
    on conveyor_events (updated_at)
    where status = 'delivered';

create index conveyor_events_dead_idx
    on conveyor_events (namespace, event_type, routing_key, id)
    where status = 'dead';
