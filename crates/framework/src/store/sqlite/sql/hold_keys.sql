-- Hold the idempotency keys of $2 (a JSON array of [key, event id]) in namespace $1 until
-- $3 (ms); a key whose window had passed is taken over.
insert into conveyor_idempotency_keys (namespace, idempotency_key, event_id, expires_at)
select $1, e.value ->> 0, e.value ->> 1, $3
  from json_each($2) e
 where true
on conflict (namespace, idempotency_key) do update
   set event_id = excluded.event_id, expires_at = excluded.expires_at
