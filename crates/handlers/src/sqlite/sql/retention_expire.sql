-- Template ({table}: one of the constant table names in retention.rs, never input). Delete
-- up to $2 rows of {table} older than the retention window ($1, µs), oldest first; the
-- caller repeats it, one short write transaction each, until fewer than $2 go.
delete from {table}
 where rowid in (select rowid from {table} where ts < $1 order by ts limit $2)
