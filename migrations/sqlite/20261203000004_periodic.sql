-- Periodic events: the last tick each schedule produced, per namespace. Every pool running
-- a schedule advances its row at each tick in the transaction that publishes the tick's
-- event, and only when the row was behind, so one event is published per tick however many
-- processes run the schedule.
create table conveyor_periodic (
    namespace text not null,
    -- the schedule's name (`Periodic::every` / `Periodic::cron`)
    name      text not null,
    -- ms since the epoch: the scheduled instant of the last tick published
    last_tick integer not null,
    primary key (namespace, name)
) without rowid;
