-- Cancellation and error history (issue 13, items 3 and 8).
--
-- `cancelled` is a state of its own, not a dead letter: an operator (or a handler) decided
-- the event must not run, nothing failed. Cancelled rows are never claimed and are pruned
-- after the delivered retention, like delivered rows.
--
-- `cancel_reason` is set with the cancellation; on a claimed row it is the request: the
-- batch's completion (or the reaper) turns the row into `cancelled` unless it was delivered.
--
-- `errors` keeps the last 5 failed attempts, newest last:
-- [{"attempt": 3, "at": "…", "worker": "…", "error": "…"}, …]; null until one fails.
-- `last_error` stays as it was.
--
-- The new enum value cannot be used in the transaction that adds it: the pruner's index
-- on cancelled rows is in 20261203000002_cancel_index.sql.
alter type conveyor_event_status add value if not exists 'cancelled';

alter table conveyor_events
    add column cancel_reason text,
    add column errors jsonb;
