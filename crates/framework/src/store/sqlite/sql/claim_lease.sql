-- Lease the picked events ($2, a JSON array of ids) to worker $3 until $5; claim_leased.sql
-- then reads them back as one row (each returned row is a hand-off from the connection's
-- thread: `returning` sent a claim of 100 as 100 of them).
-- Runs in the claim's write transaction, so no other writer can claim them meanwhile.
-- The update trigger does not count pending -> claimed (migration
-- 20261207000001_counted_transitions): claim.rs counts the leased rows through
-- count_transitions.sql in the same transaction.
-- The unary `+` keeps the planner on the rowid lookups: on the pending index it would scan
-- every pending row of the namespace.
-- $1 namespace, $2 ids, $3 worker, $4 now (ms), $5 lease expiry (ms)
update conveyor_events
   set status = 'claimed',
       attempts = attempts + 1,
       claimed_at = $4,
       claimed_by = $3,
       lease_expires_at = $5,
       updated_at = $4
 where id in (select value from json_each($2))
   and +namespace = $1
   and +status = 'pending'
   and not +blocked
