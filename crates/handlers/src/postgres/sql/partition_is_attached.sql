-- Whether a table named $1 exists and is already a partition: re-checked under the default
-- partition's lock, so a concurrent maintenance pass that attached it first is skipped.
select exists (select 1 from pg_inherits where inhrelid = to_regclass($1))
