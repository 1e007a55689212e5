-- Queue counters (issue 15 item 1): `Store::stats()` reads per-queue counters instead of
-- counting the outbox, so a stats read costs O(queues), not O(rows).
--
-- No hot row, no deadlock: the hot path never updates a shared row. Statement-level AFTER
-- triggers on conveyor_events (transition tables; one call per statement) append ONE row
-- per queue the statement touched to conveyor_queue_count_deltas, with the signed change
-- of each state count and of the monotonic totals. The compaction
-- (`conveyor_compact_counts`, run by the pool's maintenance task and by a stats read that
-- finds many deltas) folds the deltas into one base row per queue in
-- conveyor_queue_counts, under a try-advisory lock so one compactor runs at a time. A delta
-- not yet committed is invisible to the compaction's delete and is folded the next time:
-- nothing is lost or counted twice. A stats read sums the base row and the few deltas.
--
-- Counted per row state: pending (status 'pending', blocked included), waiting (pending and
-- blocked), in_flight ('claimed'), retrying (pending with attempts > 0), dead, delivered,
-- cancelled. Totals: enqueued (inserts), completed (to 'delivered', or a claimed row deleted
-- at completion when retention is zero), failed (an attempt that ended in retry or dead:
-- a claimed row that became pending or dead with an entry appended to its error history;
-- snoozes and releases append none; lease expiries do, so they count), dead (to 'dead').
-- Deleting rows (prune, purge, unsubscribe) lowers the state counts, never a total.
--
-- `due` and `scheduled` depend on the clock, not on writes: the stats read counts the
-- scheduled rows (pending, unblocked, available_at > now) with an index-only range probe on
-- conveyor_events_due_idx, and due = pending - waiting - scheduled; the same index gives
-- the oldest due row in one probe.

create table conveyor_queue_counts (
    namespace       text not null,
    event_type      text not null,
    routing_key     text not null,
    pending         bigint not null default 0,
    waiting         bigint not null default 0,
    in_flight       bigint not null default 0,
    retrying        bigint not null default 0,
    dead            bigint not null default 0,
    delivered       bigint not null default 0,
    cancelled       bigint not null default 0,
    enqueued_total  bigint not null default 0,
    completed_total bigint not null default 0,
    failed_total    bigint not null default 0,
    dead_total      bigint not null default 0,
    primary key (namespace, event_type, routing_key)
);

-- Append-only between compactions: no key, no index but the queue's (read per stats call).
create table conveyor_queue_count_deltas (
    namespace       text not null,
    event_type      text not null,
    routing_key     text not null,
    pending         bigint not null,
    waiting         bigint not null,
    in_flight       bigint not null,
    retrying        bigint not null,
    dead            bigint not null,
    delivered       bigint not null,
    cancelled       bigint not null,
    enqueued_total  bigint not null,
    completed_total bigint not null,
    failed_total    bigint not null,
    dead_total      bigint not null
);

alter table conveyor_queue_count_deltas set (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);

-- Scheduled and due rows per queue by due time (the claim's index orders by fairness key
-- and priority first, so it cannot answer a due-time range per queue).
-- Only the stats read may use it: its predicate has a term no claim states
-- (`available_at > '-infinity'`, true of every row), so the claim cannot pick this index.
-- Without it, with statistics older than the backlog (autovacuum off), the claim's generic
-- plan took this index for its walk and read the whole backlog of the queue per probe: the
-- drain fell to a fifth.
create index conveyor_events_due_idx
    on conveyor_events (namespace, event_type, routing_key, available_at)
    where status = 'pending' and not blocked and available_at > '-infinity';

-- After insert: +1 per new row in its state, and to enqueued_total.
create function conveyor_counts_inserted() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
    select namespace, event_type, routing_key,
           count(*) filter (where status = 'pending'),
           count(*) filter (where status = 'pending' and blocked),
           count(*) filter (where status = 'claimed'),
           count(*) filter (where status = 'pending' and attempts > 0),
           count(*) filter (where status = 'dead'),
           count(*) filter (where status = 'delivered'),
           count(*) filter (where status = 'cancelled'),
           count(*), 0, 0,
           count(*) filter (where status = 'dead')
      from new_rows
     group by namespace, event_type, routing_key;
    return null;
end
$$;

-- After update: new state minus old state per queue, and the totals of the transitions.
-- Statements that change no counted state (lease renewals) append nothing.
create function conveyor_counts_updated() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
    select n.namespace, n.event_type, n.routing_key,
           sum((n.status = 'pending')::int - (o.status = 'pending')::int),
           sum((n.status = 'pending' and n.blocked)::int - (o.status = 'pending' and o.blocked)::int),
           sum((n.status = 'claimed')::int - (o.status = 'claimed')::int),
           sum((n.status = 'pending' and n.attempts > 0)::int
               - (o.status = 'pending' and o.attempts > 0)::int),
           sum((n.status = 'dead')::int - (o.status = 'dead')::int),
           sum((n.status = 'delivered')::int - (o.status = 'delivered')::int),
           sum((n.status = 'cancelled')::int - (o.status = 'cancelled')::int),
           0,
           count(*) filter (where n.status = 'delivered' and o.status <> 'delivered'),
           count(*) filter (where o.status = 'claimed' and n.status in ('pending', 'dead')
                              and n.errors is distinct from o.errors),
           count(*) filter (where n.status = 'dead' and o.status <> 'dead')
      from old_rows o
      join new_rows n on n.id = o.id
     where n.status <> o.status or n.blocked <> o.blocked
        or (n.attempts > 0) <> (o.attempts > 0)
     group by n.namespace, n.event_type, n.routing_key;
    return null;
end
$$;

-- After delete: -1 per deleted row in its state; a claimed row deleted is a completion
-- (delivered rows are deleted at completion when the retention is zero).
create function conveyor_counts_deleted() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
    select namespace, event_type, routing_key,
           -count(*) filter (where status = 'pending'),
           -count(*) filter (where status = 'pending' and blocked),
           -count(*) filter (where status = 'claimed'),
           -count(*) filter (where status = 'pending' and attempts > 0),
           -count(*) filter (where status = 'dead'),
           -count(*) filter (where status = 'delivered'),
           -count(*) filter (where status = 'cancelled'),
           0,
           count(*) filter (where status = 'claimed'),
           0, 0
      from old_rows
     group by namespace, event_type, routing_key;
    return null;
end
$$;

-- Named so they fire before the ordering triggers (statement triggers fire by name); they
-- also fire for the ordering triggers' own unblocking updates, which move `waiting`.
create trigger conveyor_counts_inserted
    after insert on conveyor_events
    referencing new table as new_rows
    for each statement execute function conveyor_counts_inserted();

create trigger conveyor_counts_updated
    after update on conveyor_events
    referencing old table as old_rows new table as new_rows
    for each statement execute function conveyor_counts_updated();

create trigger conveyor_counts_deleted
    after delete on conveyor_events
    referencing old table as old_rows
    for each statement execute function conveyor_counts_deleted();

-- Fold the committed deltas into the base rows; returns how many deltas went, 0 when
-- another compaction holds the lock. Only this function writes conveyor_queue_counts.
create function conveyor_compact_counts() returns bigint
language plpgsql as $$
declare
    folded bigint;
begin
    if not pg_try_advisory_xact_lock(1668247157) then -- 'conv' + 1: the counters' compactor
        return 0;
    end if;
    with d as (
        delete from conveyor_queue_count_deltas returning *
    ),
    g as (
        select namespace, event_type, routing_key,
               sum(pending) as pending, sum(waiting) as waiting, sum(in_flight) as in_flight,
               sum(retrying) as retrying, sum(dead) as dead, sum(delivered) as delivered,
               sum(cancelled) as cancelled, sum(enqueued_total) as enqueued_total,
               sum(completed_total) as completed_total, sum(failed_total) as failed_total,
               sum(dead_total) as dead_total, count(*) as n
          from d
         group by namespace, event_type, routing_key
    ),
    folded as (
        insert into conveyor_queue_counts as c
        select namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
               delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total
          from g
        on conflict (namespace, event_type, routing_key) do update
           set pending = c.pending + excluded.pending,
               waiting = c.waiting + excluded.waiting,
               in_flight = c.in_flight + excluded.in_flight,
               retrying = c.retrying + excluded.retrying,
               dead = c.dead + excluded.dead,
               delivered = c.delivered + excluded.delivered,
               cancelled = c.cancelled + excluded.cancelled,
               enqueued_total = c.enqueued_total + excluded.enqueued_total,
               completed_total = c.completed_total + excluded.completed_total,
               failed_total = c.failed_total + excluded.failed_total,
               dead_total = c.dead_total + excluded.dead_total
        returning 1
    )
    select coalesce(sum(g.n), 0) into folded from g, (select count(*) from folded) f;
    return folded;
end
$$;

-- Backfill from the rows already there. The totals start from what the rows still show
-- (enqueued = rows present, completed = delivered present, dead = dead present).
insert into conveyor_queue_counts
select namespace, event_type, routing_key,
       count(*) filter (where status = 'pending'),
       count(*) filter (where status = 'pending' and blocked),
       count(*) filter (where status = 'claimed'),
       count(*) filter (where status = 'pending' and attempts > 0),
       count(*) filter (where status = 'dead'),
       count(*) filter (where status = 'delivered'),
       count(*) filter (where status = 'cancelled'),
       count(*),
       count(*) filter (where status = 'delivered'),
       0,
       count(*) filter (where status = 'dead')
  from conveyor_events
 group by namespace, event_type, routing_key;
