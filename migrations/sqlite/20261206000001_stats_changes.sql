-- `changes` and `parked_keys` per queue on SQLite: see the Postgres migration of this
-- version for what they are and why. The three counter triggers of
-- 20261205000001_counters.sql are replaced by the same ones that also add 1 to `changes`
-- per row change, the update trigger also firing when a pending row's `available_at`
-- moves; two triggers on conveyor_parked_keys keep `parked_keys` (and add to `changes`).
-- No `seq`: there are no deltas and no compaction, and a read returns every counter row.

alter table conveyor_queue_counts add column changes integer not null default 0;
alter table conveyor_queue_counts add column parked_keys integer not null default 0;

drop trigger conveyor_counts_inserted;
drop trigger conveyor_counts_updated;
drop trigger conveyor_counts_deleted;

create trigger conveyor_counts_inserted
    after insert on conveyor_events
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total, changes)
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
            (new.status = 'dead'),
            1)
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
        dead_total = dead_total + excluded.dead_total,
        changes = changes + excluded.changes;
end;

-- only updates that change a counted state or a pending row's due time (not lease renewals)
create trigger conveyor_counts_updated
    after update on conveyor_events
    when new.status <> old.status or new.blocked <> old.blocked
         or (new.attempts > 0) <> (old.attempts > 0)
         or (new.status = 'pending' and new.available_at <> old.available_at)
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total, changes)
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
            (new.status = 'dead' and old.status <> 'dead'),
            1)
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
        dead_total = dead_total + excluded.dead_total,
        changes = changes + excluded.changes;
end;

-- a claimed row deleted is a completion (delivered rows deleted when the retention is zero)
create trigger conveyor_counts_deleted
    after delete on conveyor_events
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total, changes)
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
            0,
            1)
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
        dead_total = dead_total + excluded.dead_total,
        changes = changes + excluded.changes;
end;

create trigger conveyor_counts_parked
    after insert on conveyor_parked_keys
begin
    insert into conveyor_queue_counts (namespace, event_type, routing_key, parked_keys, changes)
    values (new.namespace, new.event_type, new.routing_key, 1, 1)
    on conflict (namespace, event_type, routing_key) do update set
        parked_keys = parked_keys + 1, changes = changes + 1;
end;

create trigger conveyor_counts_unparked
    after delete on conveyor_parked_keys
begin
    update conveyor_queue_counts set parked_keys = parked_keys - 1, changes = changes + 1
     where namespace = old.namespace and event_type = old.event_type
       and routing_key = old.routing_key;
end;

-- Backfill the parked keys already there.
update conveyor_queue_counts
   set parked_keys = (select count(*) from conveyor_parked_keys k
                       where k.namespace = conveyor_queue_counts.namespace
                         and k.event_type = conveyor_queue_counts.event_type
                         and k.routing_key = conveyor_queue_counts.routing_key);
