-- Activity: live worker pools and per-queue latency and throughput, as in
-- migrations/postgres (see there). Instants are integer milliseconds since the epoch;
-- histograms are JSON arrays of counts.
create table conveyor_workers (
    namespace   text not null,
    pool_id     text not null,
    host        text not null,
    pid         integer not null,
    queues      text not null,
    started_at  integer not null,
    last_seen   integer not null,
    interval_ms integer not null,
    primary key (namespace, pool_id)
);

create table conveyor_queue_activity (
    namespace   text not null,
    event_type  text not null,
    routing_key text not null,
    pool_id     text not null,
    minute      integer not null,
    wait        text not null,
    run         text not null,
    completed   integer not null,
    failed      integer not null,
    primary key (namespace, pool_id, event_type, routing_key, minute)
);

create index conveyor_queue_activity_minute on conveyor_queue_activity (namespace, minute);
