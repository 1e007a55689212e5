-- Apply per-item outcomes of a batch held by worker $2 (the arrays are parallel).
--
-- Only rows still claimed by this worker are touched; the caller compares the row count
-- with the batch size and rolls back the whole transaction (the handler's writes and the
-- emitted events too) if the lease was lost to the reaper.
--
-- $1 namespace, $2 worker, $3 ids, $4 statuses ('delivered' | 'pending' | 'dead'),
-- $5 retry delays (ms), $6 errors
update conveyor_events e
   set status = u.status::conveyor_event_status,
       available_at = case when u.status = 'pending'
                           then now() + make_interval(secs => u.delay_ms / 1000)
                           else e.available_at end,
       last_error = coalesce(u.error, e.last_error),
       claimed_at = null,
       claimed_by = null,
       lease_expires_at = null,
       updated_at = now()
  from unnest($3::bigint[], $4::text[], $5::float8[], $6::text[]) as u(id, status, delay_ms, error)
 where e.id = u.id
   and e.namespace = $1
   and e.status = 'claimed'
   and e.claimed_by = $2
