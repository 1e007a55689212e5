-- Give up on partition DDL that waits more than 5 s for a lock (a long read, say) rather
-- than stall the inserts queued behind it; the next maintenance round tries again.
set local lock_timeout = '5s'
