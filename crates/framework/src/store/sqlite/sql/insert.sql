-- Insert a batch of events in one statement; $2 is a JSON array with one object per event.
--
-- The caller has already left out duplicates of held idempotency keys (and holds the new
-- keys after this, in the same transaction). Rows are inserted in input order.
--
-- An event with an ordering key is stored `blocked`; the insert trigger of the ordering
-- migration unblocks it at once when its key has room.
--
-- Nothing is returned: each returned row would be a hand-off from the connection's thread
-- (5,000 of them for a publish of 5,000). The ids are the statement's last insert rowid and
-- the ones before it: under the write lock, `autoincrement` gives one statement's rows
-- consecutive ids in input order (insert.rs); a row is due at $3 when its delay is not
-- positive.
-- $1 namespace, $2 events, $3 now (ms)
insert into conveyor_events
    (namespace, event_type, routing_key, payload, available_at, fairness_key,
     idempotency_key, causation_id, correlation_id, priority, ordering_key, blocked,
     traceparent, created_at, updated_at)
select $1, e.value ->> 'event_type', e.value ->> 'routing_key', e.value ->> 'payload',
       $3 + (e.value ->> 'delay_ms'), e.value ->> 'fairness_key',
       e.value ->> 'idempotency_key', e.value ->> 'causation_id', e.value ->> 'correlation_id',
       e.value ->> 'priority', e.value ->> 'ordering_key',
       e.value ->> 'ordering_key' is not null, e.value ->> 'traceparent', $3, $3
  from json_each($2) e
 where true
 order by e.key
