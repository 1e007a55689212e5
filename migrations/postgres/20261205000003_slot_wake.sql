-- Freeing a global-limit slot wakes the queue's workers.
--
-- A claim on a limited queue that finds no free slot comes back empty, and its worker waits
-- for a wake-up. Before this, nothing woke it when a slot freed (a completion publishes
-- nothing), so it waited for its poll interval and a limited queue drained about one batch
-- at a time. Now the statement that frees slots notifies each of their queues once, at
-- commit, as an insert does; unlimited queues never get here.
create or replace function conveyor_free_slots(ids bigint[]) returns void
language plpgsql as $$
begin
    perform pg_notify('conveyor_wake', f.namespace || chr(31) || f.event_type || chr(31) || f.routing_key)
       from (select distinct namespace, event_type, routing_key
               from conveyor_slots
              where event_id = any(ids)) f;
    update conveyor_slots set event_id = null where event_id = any(ids);
end
$$;
