-- Delete up to $3 idempotency keys of namespace $1 whose window ended before $2 (ms).
delete from conveyor_idempotency_keys
 where (namespace, idempotency_key) in (
         select namespace, idempotency_key
           from conveyor_idempotency_keys
          where expires_at < $2 and namespace = $1
          order by expires_at
          limit $3)
