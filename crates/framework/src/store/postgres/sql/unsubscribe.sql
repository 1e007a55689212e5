-- Remove subscription $4 of event type $2 with routing key $3 in namespace $1, and delete
-- its copies that are still pending ($5 is its queue key, see the subscriptions migration).
-- Claimed copies finish (or are reaped) as usual; dead ones stay for the operator.
-- Answers whether it was recorded, and how many pending copies went.
with removed as (
    delete from conveyor_subscriptions
     where namespace = $1 and event_type = $2 and routing_key = $3 and subscription = $4
    returning 1
),
purged as (
    delete from conveyor_events
     where status = 'pending' and namespace = $1 and event_type = $2 and routing_key = $5
       and exists (select 1 from removed)
    returning 1
)
select exists (select 1 from removed) as removed, (select count(*) from purged) as purged
