-- Cancel events of namespace $1 with reason $3, in one statement: the ids $2, or with $4 the
-- event that idempotency key $4 names (then $2 is empty). One row per input, in input order:
-- its id, its status before (null: no such event) and after (null: left alone).
--
-- Pending rows (due, scheduled, retrying) become cancelled. Claimed rows keep running with
-- the request recorded in cancel_reason; completion, release and the reaper apply it.
-- Finished rows (delivered, dead, cancelled) are left alone. Nothing becomes due: no wake-up.
--
-- $1 namespace, $2 ids, $3 reason, $4 idempotency key (null: cancel $2)
with input as (
    select u.id, u.ord
      from unnest($2::bigint[]) with ordinality as u(id, ord)
    union all
    select k.event_id, 1
      from conveyor_idempotency_keys k
     where $4::text is not null and k.namespace = $1 and k.idempotency_key = $4
),
-- The ordering keys of the events to cancel are locked first (one sorted pass), so a
-- concurrent advance of a key, which unblocks its waiting events, never waits on a row this
-- statement holds while this one waits on the key (see the ordering migration).
locks as materialized (
    select conveyor_lock_keys(array_agg(e.namespace), array_agg(e.event_type),
                              array_agg(e.routing_key), array_agg(e.ordering_key)) as done
      from conveyor_events e
     where e.id = any(array(select id from input)) and e.namespace = $1
       and e.ordering_key is not null
),
cancelled as (
    update conveyor_events e
       set status = (case when e.status = 'claimed' then 'claimed'
                          else 'cancelled' end)::conveyor_event_status,
           cancel_reason = $3,
           updated_at = now()
     where e.id = any(array(select id from input))
       and e.namespace = $1
       and e.status in ('pending', 'claimed')
       and exists (select 1 from locks)
    returning e.id, e.status::text as status
)
select i.id, before.status::text as before, c.status as after
  from input i
  left join conveyor_events before on before.id = i.id and before.namespace = $1
  left join cancelled c on c.id = i.id
 order by i.ord
