-- Subscriptions on SQLite: the same table and rules as migrations/postgres (instants in ms).
create table conveyor_subscriptions (
    namespace    text not null,
    event_type   text not null,
    routing_key  text not null,
    subscription text not null,
    handler      text not null,
    recorded_at  integer not null,
    primary key (namespace, event_type, routing_key, subscription)
);
