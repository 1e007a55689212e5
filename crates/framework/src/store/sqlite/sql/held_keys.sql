-- The idempotency keys among $2 (a JSON array of strings) that namespace $1 holds at $3 (ms),
-- with the event each was first published with.
select idempotency_key, event_id
  from conveyor_idempotency_keys
 where namespace = $1
   and idempotency_key in (select value from json_each($2))
   and expires_at > $3
