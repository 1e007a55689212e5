-- Template ({parent}, {partition}, {from}, {to}: names and UTC bounds built from constants
-- and formatted dates, never input; DDL takes no binds). Attach the day's table as the
-- partition [from, to): share update exclusive on the parent, so inserts into other days go on.
alter table {parent} attach partition {partition} for values from ('{from}') to ('{to}')
