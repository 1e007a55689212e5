-- Resume a paused queue and wake its workers in every process.
with resumed as (
    delete from conveyor_paused_handlers
     where namespace = $1 and event_type = $2 and routing_key = $3
)
select count(pg_notify('conveyor_wake', $1 || chr(31) || $2 || chr(31) || $3)) as woken
