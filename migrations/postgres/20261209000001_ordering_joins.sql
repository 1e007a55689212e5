-- The ordering trigger joins its transition tables by hash, not by a nested loop.
--
-- Postgres estimates a transition table's rows from its size, and a filter on it with
-- default selectivities: the old and new rows of a claim or completion of 100 ordered events
-- were estimated at 1 and 2 rows once filtered, so both joins in conveyor_ordering_updated
-- ran as nested loops, comparing every old row with every new one. For 100 rows that was
-- 9,900 rows removed by the join filter and 2.5 ms of a 7.3 ms ordered completion; the
-- claim of ordered events paid it too (its rows finish nothing, but the join ran to find
-- that out), and a batch of 1,000 would compare a million pairs. Each join now runs in a
-- subquery fenced with `offset 0` on the unfiltered tables (estimated at their real size,
-- so hashed: 0.14 ms for 100), with the filters applied to its result.
--
-- After update: free the slots of limited events that stopped being claimed; park the keys
-- of dead heads (under the queue's park policy, the default) and advance the keys of the
-- other active events that finished; unpark and advance the keys of replayed dead heads.
-- Otherwise as in 20261204000001_ordering.sql.
create or replace function conveyor_ordering_updated() returns trigger
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
            select t.id from (select o.id, o.limited, o.status as was, n.status
                                from old_rows o join new_rows n on n.id = o.id offset 0) t
             where t.limited and t.was = 'claimed' and t.status <> 'claimed'));
    end if;
    if not exists (select 1 from new_rows where ordering_key is not null) then
        return null;
    end if;
    select array_agg(t.id), array_agg(t.namespace), array_agg(t.event_type),
           array_agg(t.routing_key), array_agg(t.ordering_key), array_agg(t.status::text),
           array_agg(t.was in ('dead', 'cancelled'))
      into ids, ns, et, rk, k, st, replayed
      from (select n.id, n.namespace, n.event_type, n.routing_key, n.ordering_key, n.status,
                   o.status as was, o.blocked as was_blocked
              from old_rows o join new_rows n on n.id = o.id offset 0) t
     where t.ordering_key is not null
       and ((t.was in ('pending', 'claimed') and not t.was_blocked
             and t.status in ('delivered', 'dead', 'cancelled'))
            or (t.was in ('dead', 'cancelled') and t.status = 'pending'));
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
