-- Record $3 as the last tick of periodic event $2 in namespace $1, only if the recorded one
-- is earlier (or there is none); answers a row only when it was recorded, and the caller
-- then inserts the tick's event in the same transaction. A concurrent publisher of the same
-- tick waits on the row (or on the primary key for a new one) and, once this transaction
-- commits, finds it no longer earlier: one event per tick across processes.
insert into conveyor_periodic as p (namespace, name, last_tick)
values ($1, $2, $3)
on conflict (namespace, name) do update
   set last_tick = excluded.last_tick
 where p.last_tick < excluded.last_tick
returning p.last_tick
