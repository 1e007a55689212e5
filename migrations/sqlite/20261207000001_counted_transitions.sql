-- The claim's lease (pending -> claimed) and a delivered completion (claimed -> delivered)
-- are the two transitions every event makes. A row trigger upserting 15 counters per row
-- cost the SQLite drain about a fifth (bench throughput 26.9k/s against 31.9k/s without
-- the counter triggers), so the statements that make these two transitions count them
-- themselves, once per statement and queue (store/sqlite/sql/count_transitions.sql, from
-- claim.rs and complete.rs), and the update trigger leaves them out. Every other change
-- is still counted by the triggers. A statement that makes either transition must count
-- it the same way; today only claim_lease.sql and complete_delivered.sql do.

drop trigger conveyor_counts_updated;

create trigger conveyor_counts_updated
    after update on conveyor_events
    when (new.status <> old.status or new.blocked <> old.blocked
          or (new.attempts > 0) <> (old.attempts > 0)
          or (new.status = 'pending' and new.available_at <> old.available_at))
         and not (old.status = 'pending' and new.status = 'claimed')
         and not (old.status = 'claimed' and new.status = 'delivered')
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
