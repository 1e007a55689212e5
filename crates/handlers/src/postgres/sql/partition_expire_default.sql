-- Template ({default}: a table name built from constants, never input). Rows of the default
-- partition older than the retention window ($1) expire like the day partitions they would
-- have been in; later timestamps stay until their day's partition is created.
delete from {default} where ts < $1
