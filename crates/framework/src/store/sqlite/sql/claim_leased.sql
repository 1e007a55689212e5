-- The events claim_lease.sql just leased ($2, a JSON array of ids) to worker $3, as one JSON
-- array of arrays in one row, in ClaimRow's field order (store/claim.rs). Same write
-- transaction, so exactly the leased rows: every picked id was pending, and is now claimed.
-- The unary `+` keeps the planner on the rowid lookups, as in claim_lease.sql.
-- $1 namespace, $2 ids, $3 worker
select json_group_array(json_array(id, payload, attempts, fairness_key, causation_id,
                                   correlation_id, created_at, max(available_at, created_at),
                                   last_error, ordering_key, traceparent))
  from conveyor_events
 where id in (select value from json_each($2))
   and +namespace = $1
   and +status = 'claimed'
   and +claimed_by = $3
