-- Cancel the ids $2 (a JSON array) of namespace $1 with reason $3 at $4 (ms), in the write
-- transaction that read their statuses (cancel_statuses.sql). Pending rows (due, scheduled,
-- retrying) become cancelled; claimed rows keep running with the request recorded in
-- cancel_reason (completion, release and the reaper apply it); finished rows are left alone.
-- The unary `+` keeps the planner on the rowid lookups.
update conveyor_events
   set status = case when status = 'claimed' then 'claimed' else 'cancelled' end,
       cancel_reason = $3,
       updated_at = $4
 where id in (select value from json_each($2))
   and +namespace = $1
   and +status in ('pending', 'claimed')
