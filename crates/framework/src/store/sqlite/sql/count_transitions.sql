-- Count in queue ($1 namespace, $2 event_type, $3 routing_key) what one statement moved
-- through the two transitions the update trigger leaves out (migration
-- 20261207000001_counted_transitions): $4 rows leased (pending -> claimed), $5 of them
-- retries (attempts > 0 before the lease), $6 rows delivered (claimed -> delivered).
-- Each moved row is one change, as in the triggers.
insert into conveyor_queue_counts (namespace, event_type, routing_key, pending, in_flight,
                                   retrying, delivered, completed_total, changes)
values ($1, $2, $3, -$4, $4 - $6, -$5, $6, $6, $4 + $6)
on conflict (namespace, event_type, routing_key) do update set
    pending = pending + excluded.pending,
    in_flight = in_flight + excluded.in_flight,
    retrying = retrying + excluded.retrying,
    delivered = delivered + excluded.delivered,
    completed_total = completed_total + excluded.completed_total,
    changes = changes + excluded.changes
