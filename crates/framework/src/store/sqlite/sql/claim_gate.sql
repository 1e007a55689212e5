-- Whether a queue is paused, and with a global limit (conveyor_queue_settings.max_in_flight)
-- how many more of its events may be claimed now: the limit minus its claimed rows. Read in
-- the claim's write transaction, so no other claim can change the count meanwhile.
-- $1 namespace, $2 event_type, $3 routing_key
select exists (select 1 from conveyor_paused_handlers
                where namespace = $1 and event_type = $2 and routing_key = $3) as paused,
       (select max(s.max_in_flight
                   - (select count(*) from conveyor_events e
                       where e.status = 'claimed' and e.namespace = $1
                         and e.event_type = $2 and e.routing_key = $3), 0)
          from conveyor_queue_settings s
         where s.namespace = $1 and s.event_type = $2 and s.routing_key = $3
           and s.max_in_flight is not null) as free
