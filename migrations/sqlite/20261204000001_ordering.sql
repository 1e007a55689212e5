-- Per-key FIFO ordering and global limits on SQLite: the same columns, tables and rules as
-- migrations/postgres/20261204000001_ordering.sql (read it first). SQLite has one writer at a
-- time, so no lock is needed around a key's advance, and the global limit is a count of the
-- queue's claimed rows taken inside the claim's write transaction (no slots).
--
-- SQLite has no stored functions: the advance is the `instead of insert` trigger of the
-- view conveyor_key_advance, and the other triggers "call" it by inserting a row into the
-- view (nothing is stored).

alter table conveyor_events add column ordering_key text;
alter table conveyor_events add column blocked integer not null default 0;

-- The claim reads unblocked pending rows only (its statements say `not blocked`). SQLite
-- checks that term against the row even though the partial index implies it, so `blocked`
-- is the last column: the claim's reads stay on the index alone (covering).
drop index conveyor_events_pending_idx;
create index conveyor_events_pending_idx
    on conveyor_events (namespace, event_type, routing_key, fairness_key, priority, available_at, id,
                        blocked)
    where status = 'pending' and not blocked;

create index conveyor_events_ordering_idx
    on conveyor_events (namespace, event_type, routing_key, ordering_key, blocked, id)
    where ordering_key is not null and status in ('pending', 'claimed');

create table conveyor_queue_settings (
    namespace       text not null,
    event_type      text not null,
    routing_key     text not null,
    key_concurrency integer not null default 1 check (key_concurrency > 0),
    park_dead_heads integer not null default 1,
    max_in_flight   integer check (max_in_flight > 0),
    recorded_at     integer not null,
    primary key (namespace, event_type, routing_key)
);

create table conveyor_parked_keys (
    namespace    text not null,
    event_type   text not null,
    routing_key  text not null,
    ordering_key text not null,
    event_id     integer not null,
    parked_at    integer not null,
    primary key (namespace, event_type, routing_key, ordering_key)
);

create view conveyor_key_advance (namespace, event_type, routing_key, ordering_key) as
    select null, null, null, null where 0;

-- Unblock the key's next events in id order, up to the queue's key concurrency, unless the
-- key is parked.
create trigger conveyor_key_advance_run
    instead of insert on conveyor_key_advance
begin
    update conveyor_events
       set blocked = 0
     where id in (
             select b.id
               from conveyor_events b
              where b.namespace = new.namespace and b.event_type = new.event_type
                and b.routing_key = new.routing_key and b.ordering_key = new.ordering_key
                and b.status in ('pending', 'claimed') and b.blocked
              order by b.id
              limit max(0,
                        coalesce((select s.key_concurrency from conveyor_queue_settings s
                                   where s.namespace = new.namespace
                                     and s.event_type = new.event_type
                                     and s.routing_key = new.routing_key), 1)
                        - (select count(*) from conveyor_events a
                            where a.namespace = new.namespace and a.event_type = new.event_type
                              and a.routing_key = new.routing_key
                              and a.ordering_key = new.ordering_key
                              and a.status in ('pending', 'claimed') and not a.blocked)))
       and not exists (
             select 1 from conveyor_parked_keys p
              where p.namespace = new.namespace and p.event_type = new.event_type
                and p.routing_key = new.routing_key and p.ordering_key = new.ordering_key);
end;

create trigger conveyor_ordering_published
    after insert on conveyor_events
    when new.ordering_key is not null and new.blocked
begin
    insert into conveyor_key_advance
    values (new.namespace, new.event_type, new.routing_key, new.ordering_key);
end;

-- an active event finished: dead under `park` parks the key, anything else advances it
create trigger conveyor_ordering_finished
    after update of status on conveyor_events
    when new.ordering_key is not null and old.status in ('pending', 'claimed') and not old.blocked
         and new.status in ('delivered', 'dead', 'cancelled')
begin
    insert or ignore into conveyor_parked_keys
        (namespace, event_type, routing_key, ordering_key, event_id, parked_at)
    select new.namespace, new.event_type, new.routing_key, new.ordering_key, new.id,
           new.updated_at
     where new.status = 'dead'
       and coalesce((select s.park_dead_heads from conveyor_queue_settings s
                      where s.namespace = new.namespace and s.event_type = new.event_type
                        and s.routing_key = new.routing_key), 1);
    insert into conveyor_key_advance
    values (new.namespace, new.event_type, new.routing_key, new.ordering_key);
end;

-- a finished event was replayed: it unparks its key (if it parked it) and queues up again
create trigger conveyor_ordering_replayed
    after update of status on conveyor_events
    when new.ordering_key is not null and old.status in ('dead', 'cancelled')
         and new.status = 'pending'
begin
    delete from conveyor_parked_keys
     where namespace = new.namespace and event_type = new.event_type
       and routing_key = new.routing_key and ordering_key = new.ordering_key
       and event_id = new.id;
    insert into conveyor_key_advance
    values (new.namespace, new.event_type, new.routing_key, new.ordering_key);
end;

create trigger conveyor_ordering_deleted
    after delete on conveyor_events
    when old.ordering_key is not null and not old.blocked and old.status in ('pending', 'claimed')
begin
    insert into conveyor_key_advance
    values (old.namespace, old.event_type, old.routing_key, old.ordering_key);
end;
