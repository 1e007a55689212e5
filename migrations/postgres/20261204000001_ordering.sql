-- Per-key FIFO ordering and global concurrency limits (issue 14).
--
-- Ordering keys (`Message::ordering_key`). Events of one queue that share an ordering key
-- are handled in publish (id) order, at most `key_concurrency` at a time (1 by default).
-- An ordered event that may not run yet is `blocked`: still 'pending' for every count and
-- control (cancel, lookup), but outside the claim's partial index, so blocked and parked
-- keys cost the claim nothing. The key's first `key_concurrency` unfinished events
-- (pending or claimed) are unblocked ("active"). A retry stays pending and active, so it
-- keeps its place at the head and blocks only its own key, however far ahead it is due.
--
-- The triggers below advance a key whenever one of its active events finishes (delivered,
-- dead, cancelled or deleted), when an ordered event is published, and when a finished one is
-- replayed: `conveyor_advance_key` unblocks the key's next blocked events in id order, up to
-- the limit. It takes a transaction-level advisory lock per key first, so a publish and a
-- completion of the same key, or two publishes, advance it one after the other; and since
-- each statement inside a PL/pgSQL function takes a fresh snapshot, the advance after the
-- lock sees whatever the other committed. Only the key's rows are read: a partial index on
-- (queue, ordering_key, blocked, id) over unfinished ordered rows.
--
-- A dead head: under the queue's `park` policy (the default, recorded by the handler's pool
-- in conveyor_queue_settings) the key is parked (conveyor_parked_keys) and waits until an
-- operator replays the dead event (which puts it back at the head) or skips it (`conveyor
-- keys skip`, which advances the key past it). Under `skip` the key advances at once. A
-- cancelled head never parks its key.
--
-- Global limits: a queue with `max_in_flight` N has N rows in conveyor_slots. The claim
-- locks free slots with `skip locked` and takes at most as many events as it got, marking
-- each taken slot with its event and the event as `limited`; whenever a limited event stops
-- being claimed (completed, released, reaped, deleted), a trigger frees its slot. Slots are
-- only ever taken under their row lock and are free only when `event_id is null`, so two
-- claims never take the same slot: at most N events of the queue are claimed at once,
-- across processes, with no coordination between them. A crashed worker's slots are freed
-- when the reaper returns its events.

alter table conveyor_events
    add column ordering_key text,
    add column blocked boolean not null default false,
    add column limited boolean not null default false;

-- The claim reads unblocked pending rows only.
drop index conveyor_events_pending_idx;
create index conveyor_events_pending_idx
    on conveyor_events (namespace, event_type, routing_key, fairness_key, priority, available_at, id)
    where status = 'pending' and not blocked;

-- A key's unfinished events: its active ones (not blocked) and its waiting ones, in order.
create index conveyor_events_ordering_idx
    on conveyor_events (namespace, event_type, routing_key, ordering_key, blocked, id)
    where ordering_key is not null and status in ('pending', 'claimed');

-- Recorded by each handler's pool when it starts (`HandlerOptions::key_concurrency`,
-- `on_dead_head`, `max_in_flight`). A queue without a row has the defaults.
create table conveyor_queue_settings (
    namespace       text not null,
    event_type      text not null,
    -- the stored routing key (with the subscription, as in conveyor_events)
    routing_key     text not null,
    key_concurrency integer not null default 1 check (key_concurrency > 0),
    park_dead_heads boolean not null default true,
    max_in_flight   integer check (max_in_flight > 0),
    recorded_at     timestamptz not null default now(),
    primary key (namespace, event_type, routing_key)
);

-- Keys waiting for an operator: their head died under the `park` policy.
create table conveyor_parked_keys (
    namespace    text not null,
    event_type   text not null,
    routing_key  text not null,
    ordering_key text not null,
    -- the dead head
    event_id     bigint not null,
    parked_at    timestamptz not null default now(),
    primary key (namespace, event_type, routing_key, ordering_key)
);

-- One row per unit of a queue's global limit; `event_id` is the claimed event holding it.
create table conveyor_slots (
    namespace   text not null,
    event_type  text not null,
    routing_key text not null,
    slot        integer not null,
    event_id    bigint,
    primary key (namespace, event_type, routing_key, slot)
);

-- Unblock key `k`'s next events in id order, up to the queue's key concurrency, unless the
-- key is parked; wake the queue's workers when one became due. The caller holds the key.
create function conveyor_advance_key(ns text, et text, rk text, k text) returns void
language plpgsql as $$
declare
    n integer;
    due boolean;
begin
    if exists (select 1 from conveyor_parked_keys p
                where p.namespace = ns and p.event_type = et and p.routing_key = rk
                  and p.ordering_key = k) then
        return;
    end if;
    select coalesce((select s.key_concurrency from conveyor_queue_settings s
                      where s.namespace = ns and s.event_type = et and s.routing_key = rk), 1)
           - (select count(*) from conveyor_events e
               where e.namespace = ns and e.event_type = et and e.routing_key = rk
                 and e.ordering_key = k and e.status in ('pending', 'claimed')
                 and not e.blocked)
      into n;
    if n <= 0 then
        return;
    end if;
    with unblocked as (
        update conveyor_events e
           set blocked = false
         where e.id = any(array(
                 select b.id from conveyor_events b
                  where b.namespace = ns and b.event_type = et and b.routing_key = rk
                    and b.ordering_key = k and b.status in ('pending', 'claimed')
                    and b.blocked
                  order by b.id
                  limit n))
        returning e.available_at
    )
    select coalesce(bool_or(available_at <= now()), false) into due from unblocked;
    if due then
        perform pg_notify('conveyor_wake', ns || chr(31) || et || chr(31) || rk);
    end if;
end
$$;

-- Serialize everything that advances key `k` of a queue until the transaction ends.
create function conveyor_lock_key(ns text, et text, rk text, k text) returns void
language sql as $$
    select pg_advisory_xact_lock(
        1668247156, -- 'conv': this lock space is Conveyor's ordering keys
        hashtext(ns || chr(31) || et || chr(31) || rk || chr(31) || k))
$$;

-- Row triggers: an ordered event was published, finished, deleted or replayed.
create function conveyor_ordering_trigger() returns trigger
language plpgsql as $$
declare
    r conveyor_events;
begin
    if tg_op = 'DELETE' then r := old; else r := new; end if;
    perform conveyor_lock_key(r.namespace, r.event_type, r.routing_key, r.ordering_key);
    if tg_op = 'UPDATE' and new.status = 'dead' and coalesce(
           (select s.park_dead_heads from conveyor_queue_settings s
             where s.namespace = r.namespace and s.event_type = r.event_type
               and s.routing_key = r.routing_key), true) then
        insert into conveyor_parked_keys (namespace, event_type, routing_key, ordering_key, event_id)
        values (r.namespace, r.event_type, r.routing_key, r.ordering_key, r.id)
        on conflict do nothing;
        return null;
    end if;
    if tg_op = 'UPDATE' and new.status = 'pending' then
        -- replayed: the dead head of a parked key unparks it
        delete from conveyor_parked_keys p
         where p.namespace = r.namespace and p.event_type = r.event_type
           and p.routing_key = r.routing_key and p.ordering_key = r.ordering_key
           and p.event_id = r.id;
    end if;
    perform conveyor_advance_key(r.namespace, r.event_type, r.routing_key, r.ordering_key);
    return null;
end
$$;

create trigger conveyor_ordering_published
    after insert on conveyor_events
    for each row when (new.ordering_key is not null and new.blocked)
    execute function conveyor_ordering_trigger();

-- an active event finished, or a finished one was replayed (blocked again, to queue up)
create trigger conveyor_ordering_advanced
    after update of status on conveyor_events
    for each row when (new.ordering_key is not null and (
        (old.status in ('pending', 'claimed') and not old.blocked
         and new.status in ('delivered', 'dead', 'cancelled'))
        or (old.status in ('dead', 'cancelled') and new.status = 'pending')))
    execute function conveyor_ordering_trigger();

create trigger conveyor_ordering_deleted
    after delete on conveyor_events
    for each row when (old.ordering_key is not null and not old.blocked
                       and old.status in ('pending', 'claimed'))
    execute function conveyor_ordering_trigger();

-- A limited event stopped being claimed: free its slot.
create function conveyor_free_slot() returns trigger
language plpgsql as $$
begin
    update conveyor_slots s
       set event_id = null
     where s.namespace = old.namespace and s.event_type = old.event_type
       and s.routing_key = old.routing_key and s.event_id = old.id;
    return null;
end
$$;

create trigger conveyor_slot_freed
    after update of status on conveyor_events
    for each row when (old.limited and old.status = 'claimed' and new.status <> 'claimed')
    execute function conveyor_free_slot();

create trigger conveyor_slot_deleted
    after delete on conveyor_events
    for each row when (old.limited and old.status = 'claimed')
    execute function conveyor_free_slot();

-- `conveyor keys skip`: unpark key `k`, leaving its dead head in the dead letters, and let
-- the events behind it run. Returns the dead head's id, null when the key was not parked.
create function conveyor_skip_key(ns text, et text, rk text, k text) returns bigint
language plpgsql as $$
declare
    head bigint;
begin
    perform conveyor_lock_key(ns, et, rk, k);
    delete from conveyor_parked_keys p
     where p.namespace = ns and p.event_type = et and p.routing_key = rk and p.ordering_key = k
    returning p.event_id into head;
    if head is not null then
        perform conveyor_advance_key(ns, et, rk, k);
    end if;
    return head;
end
$$;
