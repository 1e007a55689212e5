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
-- Statement triggers (with transition tables, so one call per statement, set-based, never
-- one per row) advance the keys of a statement's rows: ordered events published; active
-- ones that finished (delivered, dead, cancelled) or were deleted; finished ones replayed.
-- So every path (completion, cancel, release, reaper, replay, retention) moves keys on.
-- `conveyor_advance_keys` unblocks each key's next blocked events in id order, up to the
-- limit. The trigger first takes a transaction-level advisory lock per key, all in one
-- sorted pass (so two statements over the same keys cannot deadlock), and since each
-- statement inside a PL/pgSQL function takes a fresh snapshot, the advance after the locks
-- sees whatever a concurrent publish or completion of the key committed while it waited.
-- Only the keys' rows are read: a partial index on (queue, ordering_key, blocked, id) over
-- unfinished ordered rows.
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

-- Serialize everything that advances key `k` of a queue until the transaction ends.
create function conveyor_lock_key(ns text, et text, rk text, k text) returns void
language sql as $$
    select pg_advisory_xact_lock(
        1668247156, -- 'conv': this lock space is Conveyor's ordering keys
        hashtext(ns || chr(31) || et || chr(31) || rk || chr(31) || k))
$$;

-- Lock the given keys (parallel arrays) in one sorted pass; the caller then advances them
-- in a later statement, which sees what others committed meanwhile.
create function conveyor_lock_keys(ns text[], et text[], rk text[], k text[]) returns void
language plpgsql as $$
begin
    perform count(conveyor_lock_key(u.ns, u.et, u.rk, u.k))
       from (select distinct u.ns, u.et, u.rk, u.k,
                    hashtext(u.ns || chr(31) || u.et || chr(31) || u.rk || chr(31) || u.k) as h
               from unnest(ns, et, rk, k) as u(ns, et, rk, k)
              order by h) u;
end
$$;

-- Unblock each given key's next events in id order, up to its queue's key concurrency N,
-- unless the key is parked; wake the queues that got a due event. The caller holds the keys.
-- One index range per key: the ordering index lists a key's unblocked unfinished events
-- first, then its blocked ones by id, so of its first N entries the blocked ones are exactly
-- those that may run now.
create function conveyor_advance_keys(ns text[], et text[], rk text[], k text[]) returns void
language plpgsql as $$
declare
    woken bigint;
begin
    with keys as (
        select distinct u.ns, u.et, u.rk, u.k from unnest(ns, et, rk, k) as u(ns, et, rk, k)
    ),
    queues as (
        select q.ns, q.et, q.rk, coalesce(s.key_concurrency, 1) as n
          from (select distinct keys.ns, keys.et, keys.rk from keys) q
          left join conveyor_queue_settings s
            on s.namespace = q.ns and s.event_type = q.et and s.routing_key = q.rk
    ),
    unblocked as (
        update conveyor_events e
           set blocked = false
         where e.id = any(array(
                 select f.id
                   from keys
                   join queues q on q.ns = keys.ns and q.et = keys.et and q.rk = keys.rk
                  cross join lateral (
                      select b.id, b.blocked from conveyor_events b
                       where b.namespace = keys.ns and b.event_type = keys.et
                         and b.routing_key = keys.rk and b.ordering_key = keys.k
                         and b.status in ('pending', 'claimed')
                       order by b.blocked, b.id
                       limit q.n) f
                  where f.blocked
                    and not exists (
                        select 1 from conveyor_parked_keys p
                         where p.namespace = keys.ns and p.event_type = keys.et
                           and p.routing_key = keys.rk and p.ordering_key = keys.k)))
        returning e.namespace, e.event_type, e.routing_key, e.available_at
    )
    select count(pg_notify('conveyor_wake', q.namespace || chr(31) || q.event_type || chr(31)
                                            || q.routing_key))
      into woken
      from (select distinct namespace, event_type, routing_key
              from unblocked where available_at <= now()) q;
end
$$;

-- Free the slots the events `ids` hold (they stopped being claimed, or were deleted). The
-- slots table holds only limited queues' slots (at most their limits), so it is read whole.
-- PL/pgSQL, so its plan is cached for the session.
create function conveyor_free_slots(ids bigint[]) returns void
language plpgsql as $$
begin
    update conveyor_slots set event_id = null where event_id = any(ids);
end
$$;

-- After insert: advance the keys of the ordered events just published (stored blocked).
create function conveyor_ordering_inserted() returns trigger
language plpgsql as $$
declare
    ns text[]; et text[]; rk text[]; k text[];
begin
    select array_agg(namespace), array_agg(event_type), array_agg(routing_key),
           array_agg(ordering_key)
      into ns, et, rk, k
      from new_rows where ordering_key is not null and blocked;
    if k is null then
        return null;
    end if;
    perform conveyor_lock_keys(ns, et, rk, k);
    perform conveyor_advance_keys(ns, et, rk, k);
    return null;
end
$$;

-- After update: free the slots of limited events that stopped being claimed; park the keys
-- of dead heads (under the queue's park policy, the default) and advance the keys of the
-- other active events that finished; unpark and advance the keys of replayed dead heads.
create function conveyor_ordering_updated() returns trigger
language plpgsql as $$
declare
    ids bigint[]; ns text[]; et text[]; rk text[]; k text[]; st text[]; replayed boolean[];
begin
    if pg_trigger_depth() > 1 then
        -- the advance's own unblocking (or another ordering trigger's statement): nothing
        -- in it finishes an event or frees a slot
        return null;
    end if;
    if exists (select 1 from old_rows where limited and status = 'claimed') then
        perform conveyor_free_slots(array(
            select o.id from old_rows o join new_rows n on n.id = o.id
             where o.limited and o.status = 'claimed' and n.status <> 'claimed'));
    end if;
    if not exists (select 1 from new_rows where ordering_key is not null) then
        return null;
    end if;
    select array_agg(n.id), array_agg(n.namespace), array_agg(n.event_type),
           array_agg(n.routing_key), array_agg(n.ordering_key), array_agg(n.status::text),
           array_agg(o.status in ('dead', 'cancelled'))
      into ids, ns, et, rk, k, st, replayed
      from old_rows o
      join new_rows n on n.id = o.id
     where n.ordering_key is not null
       and ((o.status in ('pending', 'claimed') and not o.blocked
             and n.status in ('delivered', 'dead', 'cancelled'))
            or (o.status in ('dead', 'cancelled') and n.status = 'pending'));
    if k is null then
        return null;
    end if;
    perform conveyor_lock_keys(ns, et, rk, k);
    insert into conveyor_parked_keys (namespace, event_type, routing_key, ordering_key, event_id)
    select m.ns, m.et, m.rk, m.k, m.id
      from unnest(ids, ns, et, rk, k, st) as m(id, ns, et, rk, k, st)
     where m.st = 'dead'
       and coalesce((select s.park_dead_heads from conveyor_queue_settings s
                      where s.namespace = m.ns and s.event_type = m.et
                        and s.routing_key = m.rk), true)
    on conflict do nothing;
    delete from conveyor_parked_keys p
     using unnest(ids, ns, et, rk, k, replayed) as m(id, ns, et, rk, k, replayed)
     where m.replayed and p.namespace = m.ns and p.event_type = m.et
       and p.routing_key = m.rk and p.ordering_key = m.k and p.event_id = m.id;
    perform conveyor_advance_keys(ns, et, rk, k);
    return null;
end
$$;

-- After delete (delivered rows deleted at completion): free slots and advance keys as above.
create function conveyor_ordering_deleted() returns trigger
language plpgsql as $$
declare
    ns text[]; et text[]; rk text[]; k text[];
begin
    if exists (select 1 from old_rows where limited and status = 'claimed') then
        perform conveyor_free_slots(array(
            select id from old_rows where limited and status = 'claimed'));
    end if;
    select array_agg(namespace), array_agg(event_type), array_agg(routing_key),
           array_agg(ordering_key)
      into ns, et, rk, k
      from old_rows
     where ordering_key is not null and not blocked and status in ('pending', 'claimed');
    if k is null then
        return null;
    end if;
    perform conveyor_lock_keys(ns, et, rk, k);
    perform conveyor_advance_keys(ns, et, rk, k);
    return null;
end
$$;

create trigger conveyor_ordering_inserted
    after insert on conveyor_events
    referencing new table as new_rows
    for each statement execute function conveyor_ordering_inserted();

create trigger conveyor_ordering_updated
    after update on conveyor_events
    referencing old table as old_rows new table as new_rows
    for each statement execute function conveyor_ordering_updated();

create trigger conveyor_ordering_deleted
    after delete on conveyor_events
    referencing old table as old_rows
    for each statement execute function conveyor_ordering_deleted();

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
        perform conveyor_advance_keys(array[ns], array[et], array[rk], array[k]);
    end if;
    return head;
end
$$;
