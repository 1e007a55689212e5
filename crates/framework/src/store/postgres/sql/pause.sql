-- Pause a queue's handler in namespace $1; every process stops claiming it on its next claim.
insert into conveyor_paused_handlers (namespace, event_type, routing_key)
values ($1, $2, $3)
on conflict do nothing
