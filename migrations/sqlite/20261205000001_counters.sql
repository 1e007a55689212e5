-- Queue counters on SQLite: the same counts and totals as
-- migrations/postgres/20261205000001_counters.sql (read it first). SQLite has one writer at
-- a time, so there is no hot-row contention to avoid: row triggers update the queue's one
-- counter row directly, and there are no deltas and no compaction.
--
-- An update never moves a row to another queue (namespace, event type and routing key are
-- set at insert), so the update trigger writes the row's own queue only.

create table conveyor_queue_counts (
    namespace       text not null,
    event_type      text not null,
    routing_key     text not null,
    pending         integer not null default 0,
    waiting         integer not null default 0,
    in_flight       integer not null default 0,
    retrying        integer not null default 0,
    dead            integer not null default 0,
    delivered       integer not null default 0,
    cancelled       integer not null default 0,
    enqueued_total  integer not null default 0,
    completed_total integer not null default 0,
    failed_total    integer not null default 0,
    dead_total      integer not null default 0,
    primary key (namespace, event_type, routing_key)
);

-- Scheduled and due rows per queue by due time (see the Postgres migration). The term
-- `available_at >= 0` (true of every row: instants are milliseconds since 1970) is one no
-- claim states, so only the stats read can use this index, never the claim.
create index conveyor_events_due_idx
    on conveyor_events (namespace, event_type, routing_key, available_at, blocked)
    where status = 'pending' and not blocked and available_at >= 0;

create trigger conveyor_counts_inserted
    after insert on conveyor_events
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total)
    values (new.namespace, new.event_type, new.routing_key,
            (new.status = 'pending'),
            (new.status = 'pending' and new.blocked),
            (new.status = 'claimed'),
            (new.status = 'pending' and new.attempts > 0),
            (new.status = 'dead'),
            (new.status = 'delivered'),
            (new.status = 'cancelled'),
            1,
            0,
            0,
            (new.status = 'dead'))
    on conflict (namespace, event_type, routing_key) do update set
        pending = pending + excluded.pending,
        waiting = waiting + excluded.waiting,
        in_flight = in_flight + excluded.in_flight,
        retrying = retrying + excluded.retrying,
        dead = dead + excluded.dead,
        delivered = delivered + excluded.delivered,
        cancelled = cancelled + excluded.cancelled,
        enqueued_total = enqueued_total + excluded.enqueued_total,
        completed_total = completed_total + excluded.completed_total,
        failed_total = failed_total + excluded.failed_total,
        dead_total = dead_total + excluded.dead_total;
end;

-- only updates that change a counted state (not lease renewals)
create trigger conveyor_counts_updated
    after update on conveyor_events
    when new.status <> old.status or new.blocked <> old.blocked
         or (new.attempts > 0) <> (old.attempts > 0)
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total)
    values (new.namespace, new.event_type, new.routing_key,
            (new.status = 'pending') - (old.status = 'pending'),
            (new.status = 'pending' and new.blocked) - (old.status = 'pending' and old.blocked),
            (new.status = 'claimed') - (old.status = 'claimed'),
            (new.status = 'pending' and new.attempts > 0) - (old.status = 'pending' and old.attempts > 0),
            (new.status = 'dead') - (old.status = 'dead'),
            (new.status = 'delivered') - (old.status = 'delivered'),
            (new.status = 'cancelled') - (old.status = 'cancelled'),
            0,
            (new.status = 'delivered' and old.status <> 'delivered'),
            (old.status = 'claimed' and new.status in ('pending', 'dead') and new.errors is not old.errors),
            (new.status = 'dead' and old.status <> 'dead'))
    on conflict (namespace, event_type, routing_key) do update set
        pending = pending + excluded.pending,
        waiting = waiting + excluded.waiting,
        in_flight = in_flight + excluded.in_flight,
        retrying = retrying + excluded.retrying,
        dead = dead + excluded.dead,
        delivered = delivered + excluded.delivered,
        cancelled = cancelled + excluded.cancelled,
        enqueued_total = enqueued_total + excluded.enqueued_total,
        completed_total = completed_total + excluded.completed_total,
        failed_total = failed_total + excluded.failed_total,
        dead_total = dead_total + excluded.dead_total;
end;

-- a claimed row deleted is a completion (delivered rows deleted when the retention is zero)
create trigger conveyor_counts_deleted
    after delete on conveyor_events
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total)
    values (old.namespace, old.event_type, old.routing_key,
            -(old.status = 'pending'),
            -(old.status = 'pending' and old.blocked),
            -(old.status = 'claimed'),
            -(old.status = 'pending' and old.attempts > 0),
            -(old.status = 'dead'),
            -(old.status = 'delivered'),
            -(old.status = 'cancelled'),
            0,
            (old.status = 'claimed'),
            0,
            0)
    on conflict (namespace, event_type, routing_key) do update set
        pending = pending + excluded.pending,
        waiting = waiting + excluded.waiting,
        in_flight = in_flight + excluded.in_flight,
        retrying = retrying + excluded.retrying,
        dead = dead + excluded.dead,
        delivered = delivered + excluded.delivered,
        cancelled = cancelled + excluded.cancelled,
        enqueued_total = enqueued_total + excluded.enqueued_total,
        completed_total = completed_total + excluded.completed_total,
        failed_total = failed_total + excluded.failed_total,
        dead_total = dead_total + excluded.dead_total;
end;

-- Backfill from the rows already there (totals from what the rows still show).
insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total)
select namespace, event_type, routing_key,
       sum(status = 'pending'),
       sum(status = 'pending' and blocked),
       sum(status = 'claimed'),
       sum(status = 'pending' and attempts > 0),
       sum(status = 'dead'),
       sum(status = 'delivered'),
       sum(status = 'cancelled'),
       count(*),
       sum(status = 'delivered'),
       0,
       sum(status = 'dead')
  from conveyor_events
 group by namespace, event_type, routing_key;
