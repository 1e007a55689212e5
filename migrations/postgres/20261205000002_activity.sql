-- Activity: live worker pools and per-queue latency and throughput (Store::activity,
-- Store::workers).
--
-- Each worker pool measures in process and writes only its own rows, from its heartbeat
-- task (PoolBuilder::heartbeat_interval, 5 s by default): a handful of statements per
-- interval whatever the event rate, and no contention between pools. Instants are the
-- pool's clock; readers compare them with their own.

-- One row per running pool; deleted at clean shutdown. A pool is live while `last_seen` is
-- within 3 of its `interval_ms`; rows unseen for an hour are pruned by the heartbeats.
create table conveyor_workers (
    namespace   text not null,
    pool_id     text not null,
    host        text not null,
    pid         bigint not null,
    -- the queues it serves: a JSON array of {event_type, routing_key, subscription}
    queues      text not null,
    started_at  timestamptz not null,
    last_seen   timestamptz not null,
    interval_ms bigint not null,
    primary key (namespace, pool_id)
);

-- One row per (pool, queue, minute): log-scale histograms of wait (due -> claimed) and run
-- (claimed -> completed), bucket bounds fixed in code and shared by every pool, so pools
-- merge by adding counts; events completed (delivered) and failed (retried or dead).
-- Rows older than an hour are pruned by the heartbeats.
create table conveyor_queue_activity (
    namespace   text not null,
    event_type  text not null,
    -- the stored queue key, as conveyor_events.routing_key
    routing_key text not null,
    pool_id     text not null,
    minute      timestamptz not null,
    wait        bigint[] not null,
    run         bigint[] not null,
    completed   bigint not null,
    failed      bigint not null,
    primary key (namespace, pool_id, event_type, routing_key, minute)
);

create index conveyor_queue_activity_minute on conveyor_queue_activity (namespace, minute);
