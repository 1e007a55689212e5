-- Template ({default}, {partition}: names built from constants and a formatted date, never
-- input). Move the rows the default partition holds in the day [$1, $2) into the day's new
-- table, so attaching it does not fail on them; returns nothing, the row count is the move.
with moved as (
    delete from {default}
     where ts >= $1 and ts < $2
    returning *
)
insert into {partition}
select * from moved
