-- The tables of the pipeline the conveyor server ships (crates/handlers). The outbox itself
-- lives in migrations/postgres; both sets share sqlx's migration table, with distinct versions.

-- Raw events, partitioned by day on the event's own timestamp. The primary key is the
-- deduplication key: a client's event_id at its timestamp, per namespace. Partitioned tables
-- need the partition key in every unique index, hence `ts` in it.
create table events_raw (
    namespace   text        not null,
    event_id    uuid        not null,
    ts          timestamptz not null,
    event_type  text        not null,
    actor_id    text        not null,
    source      text        not null,
    attributes  jsonb       not null default '{}'::jsonb,
    received_at timestamptz not null default now(),
    primary key (namespace, event_id, ts)
) partition by range (ts);

-- reads: one namespace, a time window, keyset pagination on (ts, event_id)
create index events_raw_window_idx on events_raw (namespace, ts, event_id);

-- timestamps outside every day partition land here; the partition manager reports it
create table events_raw_default partition of events_raw default;

-- Exact daily counts per (namespace, day, event type, source). Rows are added to only by the
-- rollup handler, for events it has not counted before (see analytics_rollup_seen).
create table analytics_daily_event_counts (
    namespace  text   not null,
    day        date   not null,
    event_type text   not null,
    source     text   not null,
    count      bigint not null check (count >= 0),
    primary key (namespace, day, event_type, source)
);

-- Unique actors per day: one row per (namespace, day, actor).
create table analytics_daily_actors (
    namespace text not null,
    day       date not null,
    actor_id  text not null,
    primary key (namespace, day, actor_id)
);

-- The events the rollup has counted, keyed like events_raw, so a duplicate, a retried batch
-- or a batch reprocessed after a crash is never counted twice. Partitioned like events_raw
-- and dropped with it.
create table analytics_rollup_seen (
    namespace text        not null,
    event_id  uuid        not null,
    ts        timestamptz not null,
    primary key (namespace, event_id, ts)
) partition by range (ts);

create table analytics_rollup_seen_default partition of analytics_rollup_seen default;

-- Full-text index: one document per event; `body` holds the event type, source, actor and
-- attribute values. The 'simple' configuration keeps identifiers and codes searchable as is.
create table search_documents (
    namespace  text        not null,
    event_id   uuid        not null,
    ts         timestamptz not null,
    event_type text        not null,
    source     text        not null,
    body       text        not null,
    tsv        tsvector    generated always as (to_tsvector('simple', body)) stored,
    primary key (namespace, event_id, ts)
);

create index search_documents_tsv_idx on search_documents using gin (tsv);

-- Embeddings of the same text, L2-normalised, so cosine similarity is a dot product.
create table search_embeddings (
    namespace  text        not null,
    event_id   uuid        not null,
    ts         timestamptz not null,
    event_type text        not null,
    source     text        not null,
    embedding  real[]      not null,
    primary key (namespace, event_id, ts)
);
