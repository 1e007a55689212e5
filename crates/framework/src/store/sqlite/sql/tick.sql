-- Record $3 (ms since the epoch) as the last tick of periodic event $2 in namespace $1, only
-- if the recorded one is earlier (or there is none); answers a row only when it was
-- recorded, and the caller then inserts the tick's event in the same write transaction,
-- which holds the database's write lock: one event per tick across processes.
insert into conveyor_periodic (namespace, name, last_tick)
values ($1, $2, $3)
on conflict (namespace, name) do update
   set last_tick = excluded.last_tick
 where conveyor_periodic.last_tick < excluded.last_tick
returning last_tick
