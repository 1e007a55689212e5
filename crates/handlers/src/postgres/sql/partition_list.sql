-- The partitions attached to the partitioned table named $1, by name. The partition manager
-- parses the day out of the names it creates (<table>_pYYYYMMDD) and leaves any other
-- partition, the default one included, alone.
select c.relname::text
  from pg_inherits i
  join pg_class c on c.oid = i.inhrelid
 where i.inhparent = $1::text::regclass
