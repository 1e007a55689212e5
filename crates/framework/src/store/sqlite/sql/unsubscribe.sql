-- Delete the pending copies of a removed subscription: $1 namespace, $2 event type, $3 its
-- queue key (see the subscriptions migration). Runs in the write transaction that removed it.
delete from conveyor_events
 where status = 'pending' and namespace = $1 and event_type = $2 and routing_key = $3
