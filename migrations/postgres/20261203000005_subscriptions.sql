-- Subscriptions: several handlers may consume one event type, each under a name of its own.
--
-- A publish stores one copy of the event per subscription recorded here for its namespace,
-- event type and routing key (or, when none is recorded, one copy for the default
-- subscription, as before subscriptions existed). Each copy is a queue of its own: its
-- `conveyor_events.routing_key` column holds the routing key, then U+001F and the
-- subscription's name for a named subscription, so the claim, stats, pause and dead-letter
-- statements and their indexes treat it as any other queue. The default subscription ('')
-- stores the routing key alone, so rows stored before this migration are its copies.
--
-- A worker pool records its handlers' subscriptions when it starts; a subscription stays
-- recorded (and keeps receiving copies while its processes are down) until an operator
-- removes it (`conveyor subscriptions remove`).
create table conveyor_subscriptions (
    namespace    text not null,
    event_type   text not null,
    -- '' when the handler claims events published without a routing key
    routing_key  text not null,
    -- '' is the default subscription
    subscription text not null,
    -- the handler type that recorded it last (a different one is logged as a warning)
    handler      text not null,
    recorded_at  timestamptz not null default now(),
    primary key (namespace, event_type, routing_key, subscription)
);
