-- Raw events whose timestamp no day partition covers: non-zero means events far outside the
-- window (clock skew, bad client timestamps) or partitions missing; the manager warns.
select count(*) from events_raw_default
