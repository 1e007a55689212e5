-- The queue of held event $2 (namespace $1), and whether it has a global limit: a batch's
-- events all belong to one queue, so its first event names the queue whose delivered
-- outcomes complete_delivered.sql counts, and a limited queue's workers are woken after the
-- commit (completing its events frees capacity; a claim that found the limit reached came
-- back empty and waits for a wake-up).
select e.event_type, e.routing_key,
       exists (select 1 from conveyor_queue_settings s
                where s.namespace = e.namespace and s.event_type = e.event_type
                  and s.routing_key = e.routing_key and s.max_in_flight is not null) as limited
  from conveyor_events e
 where e.id = $2 and e.namespace = $1
