-- The tables of the pipeline the conveyor server ships (crates/handlers), on SQLite. The
-- outbox lives in migrations/sqlite; both sets share sqlx's migration table, with distinct
-- versions. Same tables and keys as migrations/pipeline, in SQLite's types:
-- - instants (`ts`, `received_at`) are integer microseconds since the Unix epoch (UTC), the
--   precision Postgres keeps, so ordering, windows and the deduplication key are exact;
-- - days are 'YYYY-MM-DD' text (UTC), which sorts and compares as dates;
-- - event ids are 16-byte blobs, which sort like Postgres uuids;
-- - attributes are JSON text.
-- There are no partitions: retention deletes rows (see the `ts` indexes).

-- Raw events. The primary key is the deduplication key: a client's event_id at its
-- timestamp, per namespace.
create table events_raw (
    namespace   text    not null,
    event_id    blob    not null,
    ts          integer not null,
    event_type  text    not null,
    actor_id    text    not null,
    source      text    not null,
    attributes  text    not null default '{}',
    received_at integer not null,
    primary key (namespace, event_id, ts)
);

-- reads: one namespace, a time window, keyset pagination on (ts, event_id)
create index events_raw_window_idx on events_raw (namespace, ts, event_id);
-- retention and rollup rebuilds: a time range over every namespace
create index events_raw_ts_idx on events_raw (ts);

-- Exact daily counts per (namespace, day, event type, source). Rows are added to only by the
-- rollup handler, for events it has not counted before (see analytics_rollup_seen).
create table analytics_daily_event_counts (
    namespace  text    not null,
    day        text    not null,
    event_type text    not null,
    source     text    not null,
    count      integer not null check (count >= 0),
    primary key (namespace, day, event_type, source)
) without rowid;

-- Unique actors per day: one row per (namespace, day, actor).
create table analytics_daily_actors (
    namespace text not null,
    day       text not null,
    actor_id  text not null,
    primary key (namespace, day, actor_id)
) without rowid;

-- The events the rollup has counted, keyed like events_raw, so a duplicate, a retried batch
-- or a batch reprocessed after a crash is never counted twice. Expires with events_raw.
create table analytics_rollup_seen (
    namespace text    not null,
    event_id  blob    not null,
    ts        integer not null,
    primary key (namespace, event_id, ts)
);

create index analytics_rollup_seen_ts_idx on analytics_rollup_seen (ts);

-- Full-text documents: one per event; `body` holds the event type, source, actor and
-- attribute values. `id` is the document's rowid in search_fts.
create table search_documents (
    id         integer primary key,
    namespace  text    not null,
    event_id   blob    not null,
    ts         integer not null,
    event_type text    not null,
    source     text    not null,
    body       text    not null,
    unique (namespace, event_id, ts)
);

create index search_documents_ts_idx on search_documents (ts);

-- The FTS5 index of search_documents, contentless (the text stays in search_documents once):
-- `body` the document, `ns` the hex of its namespace as one token, so a search seeks the
-- namespace in the index, exactly, and a query of exclusions only has something to exclude
-- from. Words are runs of letters and digits, case-folded, diacritics kept (like the
-- 'simple' configuration on Postgres: no stemming, no stop words).
create virtual table search_fts using fts5(
    body,
    ns,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- search_fts follows search_documents: a document skipped as a duplicate fires nothing.
create trigger search_documents_index after insert on search_documents
begin
    insert into search_fts (rowid, body, ns) values (new.id, new.body, hex(new.namespace));
end;

create trigger search_documents_unindex after delete on search_documents
begin
    delete from search_fts where rowid = old.id;
end;

-- Embeddings of the same text, L2-normalised, as little-endian f32 blobs (4 bytes a
-- dimension), so cosine similarity is a dot product.
create table search_embeddings (
    namespace  text    not null,
    event_id   blob    not null,
    ts         integer not null,
    event_type text    not null,
    source     text    not null,
    embedding  blob    not null,
    primary key (namespace, event_id, ts)
);

create index search_embeddings_ts_idx on search_embeddings (ts);
