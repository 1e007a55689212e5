-- Template ({default}: a table name built from constants, never input; DDL takes no binds).
-- Hold the default partition against inserts (reads go on) while a day's rows move out of it
-- and the day's partition is attached, so no row in that day can land in it meanwhile and
-- make the attach fail. Taken before any other lock of the transaction: inserters hold the
-- parent first and attach needs only share update exclusive on it, so this cannot deadlock.
lock table {default} in exclusive mode
