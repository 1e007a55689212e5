-- The claim and the completion count their own transitions: each appends one delta per
-- queue from what it changed (claim.sql, complete.sql: a `counted` CTE over the rows it
-- returns) and sets `conveyor.self_counted` for the rest of its statement, and the update
-- trigger then returns at once. The trigger's join of the old and new transition tables was
-- the counters' largest cost to the drain (0.14 of a 1.5 ms claim of 100 events; dropping
-- the counter triggers gained 13% in `conveyor bench throughput`).
--
-- The flag is transaction-local (`set_config(…, true)`) and the trigger clears it, so it
-- covers only the statement that set it: every statement that sets it updates
-- conveyor_events, whose update trigger fires at the statement's end, after all its CTEs;
-- a rolled-back statement takes its setting with it. Only the flagged statement's own
-- trigger (depth 1: the claim and the completion are client statements) reads the flag:
-- an update run by another trigger of that statement, before this one fires (the
-- completion's delete triggers fire first, and conveyor_ordering_deleted unblocks the
-- events behind a deleted head), is counted by its own trigger (depth 2) as before, and so
-- are the rows conveyor_ordering_updated unblocks after it.
--
-- Otherwise as in 20261206000001_stats_changes.sql.
create or replace function conveyor_counts_updated() returns trigger
language plpgsql as $$
begin
    if pg_trigger_depth() = 1 and current_setting('conveyor.self_counted', true) = 'on' then
        perform set_config('conveyor.self_counted', 'off', true);
        return null;
    end if;
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
