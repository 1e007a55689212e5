-- The event idempotency key $2 names in namespace $1 (its window may have passed: the row
-- names the event until the pruner removes it).
select event_id
  from conveyor_idempotency_keys
 where namespace = $1 and idempotency_key = $2
