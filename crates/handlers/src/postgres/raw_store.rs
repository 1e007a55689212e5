//! [`RawStoreHandler`] on Postgres: one `unnest` insert per batch.

use chrono::{DateTime, Utc};
use conveyor::{Context, PgStore};
use sqlx::types::Json;
use uuid::Uuid;

use crate::events::IngestedEvent;
use crate::raw_store::{batch_events, RawStoreHandler};
use crate::storage_handler::{Records, WriteBatch, Written};

const INSERT_EVENTS: &str = include_str!("sql/raw_insert_events.sql");

impl WriteBatch<PgStore> for RawStoreHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, PgStore>) -> Written {
        let events = batch_events(batch);
        let mut columns = RawColumns::with_capacity(events.len());
        for (namespace, event) in events {
            columns.push(namespace, event);
        }
        let stored = sqlx::query(INSERT_EVENTS)
            .bind(columns.namespaces)
            .bind(columns.event_ids)
            .bind(columns.timestamps)
            .bind(columns.event_types)
            .bind(columns.actor_ids)
            .bind(columns.sources)
            .bind(columns.attributes)
            .execute(ctx.db().await?)
            .await?
            .rows_affected();
        tracing::debug!(records = batch.len(), stored, "raw events stored");
        Ok(())
    }
}

/// The parallel arrays [`INSERT_EVENTS`] unnests, borrowed from the batch.
pub(crate) struct RawColumns<'a> {
    namespaces: Vec<&'a str>,
    event_ids: Vec<Uuid>,
    timestamps: Vec<DateTime<Utc>>,
    event_types: Vec<&'a str>,
    actor_ids: Vec<&'a str>,
    sources: Vec<&'a str>,
    attributes: Vec<Json<&'a serde_json::Map<String, serde_json::Value>>>,
}

impl<'a> RawColumns<'a> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            namespaces: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            event_types: Vec::with_capacity(n),
            actor_ids: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            attributes: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, namespace: &'a str, event: &'a IngestedEvent) {
        self.namespaces.push(namespace);
        self.event_ids.push(event.event_id);
        self.timestamps.push(event.timestamp);
        self.event_types.push(&event.event_type);
        self.actor_ids.push(&event.actor_id);
        self.sources.push(&event.source);
        self.attributes.push(Json(&event.attributes));
    }

    /// `query` with the seven arrays bound as `$1..$7`, in [`INSERT_EVENTS`]'s order (which
    /// the ingestion insert shares).
    pub(crate) fn bind_to<'q, O>(
        self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.namespaces)
            .bind(self.event_ids)
            .bind(self.timestamps)
            .bind(self.event_types)
            .bind(self.actor_ids)
            .bind(self.sources)
            .bind(self.attributes)
    }
}
