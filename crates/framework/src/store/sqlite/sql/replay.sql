-- Return dead letters and cancelled events to the queue with a fresh retry budget (River's
-- JobRetry takes both); the last error and the error history stay, the cancel reason goes.
-- The unary `+` keeps the planner on the rowid lookups rather than the dead-letter index.
-- $1 namespace, $2 ids (JSON array), $3 now (ms)
update conveyor_events
   set status = 'pending', attempts = 0, available_at = $3, updated_at = $3, cancel_reason = null,
       -- an ordered event queues up again; the ordering trigger unblocks it in turn
       blocked = ordering_key is not null
 where id in (select value from json_each($2)) and +namespace = $1
   and +status in ('dead', 'cancelled')
returning event_type, routing_key
