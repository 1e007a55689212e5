-- Two more counters per queue, so a stats read needs no per-queue probe of the outbox for a
-- queue that has not changed since the reader last probed it (issue 15: a stats read of
-- 1,000 queues must take under 5 ms; 1,000 index probes alone take 5-7 ms on this box).
--
-- `changes`: how many row changes the queue has seen that can move its due or scheduled
-- rows or its oldest due event: inserts, deletes, and updates of a row's status, `blocked`,
-- attempts or (pending rows) `available_at`. Monotonic. A reader that probed the queue's
-- scheduled count, next scheduled instant and oldest due instant when `changes` was N may
-- keep those while `changes` is still N and the clock has not reached the next scheduled
-- instant (only then can a row become due without a write). See store/stats_cache.rs.
--
-- `parked_keys`: the queue's rows in conveyor_parked_keys, kept by statement triggers on
-- that table (a key is parked or unparked rarely), so the read counts no parked rows either.
-- Parking and unparking add to `changes` too, so `changes` moves whenever any counter of
-- the queue does: a reader may keep a queue's counters while its `changes` is the same.
--
-- Both go through the same insert-only deltas and compaction as the other counters
-- (20261205000001_counters.sql); the functions below replace that migration's with the two
-- columns added and otherwise the same counts.

alter table conveyor_queue_counts
    add column changes     bigint not null default 0,
    add column parked_keys bigint not null default 0,
    add column seq         bigint not null default 0;

-- Each compaction stamps the base rows it writes with a fresh `seq`, so a reader that
-- keeps the base rows it read asks only for those stamped since (compactions run one at a
-- time under their advisory lock, so a reader never sees a later stamp before an earlier
-- one commits).
create sequence conveyor_queue_counts_seq;

-- The read's "stamped after" range: without it the read scans every base row of the
-- namespace (0.8 ms for 1,000 queues) to send none.
create index conveyor_queue_counts_seq_idx on conveyor_queue_counts (namespace, seq);

alter table conveyor_queue_count_deltas
    add column changes     bigint not null default 0,
    add column parked_keys bigint not null default 0,
    -- the writing transaction: a reader probes only the queues with deltas its previous
    -- read's snapshot did not see (pg_visible_in_snapshot)
    add column txid        xid8 not null default pg_current_xact_id();

create or replace function conveyor_counts_inserted() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
        (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
         delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
         changes, parked_keys)
    select namespace, event_type, routing_key,
           count(*) filter (where status = 'pending'),
           count(*) filter (where status = 'pending' and blocked),
           count(*) filter (where status = 'claimed'),
           count(*) filter (where status = 'pending' and attempts > 0),
           count(*) filter (where status = 'dead'),
           count(*) filter (where status = 'delivered'),
           count(*) filter (where status = 'cancelled'),
           count(*), 0, 0,
           count(*) filter (where status = 'dead'),
           count(*), 0
      from new_rows
     group by namespace, event_type, routing_key;
    return null;
end
$$;

-- As before, plus `changes` for every row whose status, blocked, attempts or (pending)
-- available_at moved; lease renewals still append nothing.
create or replace function conveyor_counts_updated() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
        (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
         delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
         changes, parked_keys)
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
           count(*) filter (where n.status = 'dead' and o.status <> 'dead'),
           count(*), 0
      from old_rows o
      join new_rows n on n.id = o.id
     where n.status <> o.status or n.blocked <> o.blocked
        or (n.attempts > 0) <> (o.attempts > 0)
        or (n.status = 'pending' and n.available_at <> o.available_at)
     group by n.namespace, n.event_type, n.routing_key;
    return null;
end
$$;

create or replace function conveyor_counts_deleted() returns trigger
language plpgsql as $$
begin
    insert into conveyor_queue_count_deltas
        (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
         delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
         changes, parked_keys)
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
           0, 0,
           count(*), 0
      from old_rows
     group by namespace, event_type, routing_key;
    return null;
end
$$;

-- Parking and unparking: +1 / -1 per key in `parked_keys`, +1 in `changes`.
create function conveyor_counts_parked() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into conveyor_queue_count_deltas
            (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
             delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
             changes, parked_keys)
        select namespace, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
               count(*)
          from new_keys
         group by namespace, event_type, routing_key;
    else
        insert into conveyor_queue_count_deltas
            (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
             delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
             changes, parked_keys)
        select namespace, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
               -count(*)
          from old_keys
         group by namespace, event_type, routing_key;
    end if;
    return null;
end
$$;

create trigger conveyor_counts_parked
    after insert on conveyor_parked_keys
    referencing new table as new_keys
    for each statement execute function conveyor_counts_parked();

create trigger conveyor_counts_unparked
    after delete on conveyor_parked_keys
    referencing old table as old_keys
    for each statement execute function conveyor_counts_parked();

-- The compaction of 20261205000001_counters.sql with the two columns, stamping `seq`.
create or replace function conveyor_compact_counts() returns bigint
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
               sum(dead_total) as dead_total, sum(changes) as changes,
               sum(parked_keys) as parked_keys, count(*) as n
          from d
         group by namespace, event_type, routing_key
    ),
    folded as (
        insert into conveyor_queue_counts as c
            (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
             delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
             changes, parked_keys, seq)
        select namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
               delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
               changes, parked_keys, nextval('conveyor_queue_counts_seq')
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
               dead_total = c.dead_total + excluded.dead_total,
               changes = c.changes + excluded.changes,
               parked_keys = c.parked_keys + excluded.parked_keys,
               seq = excluded.seq
        returning 1
    )
    select coalesce(sum(g.n), 0) into folded from g, (select count(*) from folded) f;
    return folded;
end
$$;

-- Backfill the parked keys already there (`changes` starts at 0 everywhere: only equality
-- with a later read matters; `seq` 0: no reader has seen a stamp yet).
insert into conveyor_queue_count_deltas
    (namespace, event_type, routing_key, pending, waiting, in_flight, retrying, dead,
     delivered, cancelled, enqueued_total, completed_total, failed_total, dead_total,
     changes, parked_keys)
select namespace, event_type, routing_key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), count(*)
  from conveyor_parked_keys
 group by namespace, event_type, routing_key;
