-- Delete up to $2 idempotency keys of namespace $1 whose window has passed, oldest first.
-- Runs with the pruning of delivered events, from the pool's maintenance task.
delete from conveyor_idempotency_keys
 where (namespace, idempotency_key) in (
         select namespace, idempotency_key
           from conveyor_idempotency_keys
          where expires_at < now() and namespace = $1
          order by expires_at
          limit $2
            for update skip locked)
