-- Template ({partition}, {parent}: names built from constants and a formatted date, never
-- input; DDL takes no binds). A day's table, created standalone with the parent's columns,
-- defaults and checks; it becomes a partition at attach, which also builds its indexes.
create table if not exists {partition} (like {parent} including defaults including constraints)
