-- Template ({partition}: a name built from a constant and a formatted date, never input).
-- Drop a day partition past retention: its rows go with it, at no vacuum cost.
drop table if exists {partition}
