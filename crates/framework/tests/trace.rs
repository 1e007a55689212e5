//! Trace context from publisher to handler (feature `opentelemetry`, which the crate's
//! dev-dependency on itself turns on), on Postgres and SQLite: a publishing span's trace
//! continues in the handler's span and through the events it emits; a batch of several
//! traces links to each; a malformed `Message::traceparent` is refused at publish.
//!
//! Each test installs its subscriber with `set_default`, which only the test's thread sees:
//! the runtimes of `#[sqlx::test]` and `#[tokio::test]` are single-threaded, so the pool's
//! workers run on that thread too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use conveyor::testing;
use conveyor::tracing_opentelemetry::{self, OpenTelemetrySpanExt};
use conveyor::{
    Batch, Context, Event, EventHandler, EventId, HandlerError, Message, SqlStore, Store,
    WorkerPool,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sqlx::PgPool;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[macro_use]
mod backends;
use backends::pg;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Order {
    #[garde(skip)]
    id: String,
}

impl Event for Order {
    const NAME: &'static str = "trace.order";
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Shipped {
    #[garde(skip)]
    id: String,
}

impl Event for Shipped {
    const NAME: &'static str = "trace.shipped";
}

/// What a handler saw of one item: its id, its `traceparent`, and the trace id of the span
/// it ran in.
type Seen = Arc<Mutex<Vec<(EventId, Option<String>, TraceId)>>>;

fn see<E>(seen: &Seen, batch: &Batch<E>) {
    let here = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .trace_id();
    let mut seen = seen.lock().unwrap();
    for item in batch {
        seen.push((item.id, item.traceparent().map(str::to_owned), here));
    }
}

/// Ships every order: emits one `Shipped` per item, caused by it.
#[derive(Default)]
struct Ship<const N: usize> {
    seen: Seen,
}

#[conveyor::async_trait]
impl<S: Store, const N: usize> EventHandler<S> for Ship<N> {
    type Event = Order;
    const BATCH_SIZE: usize = N;
    const POLL_INTERVAL: Duration = Duration::from_millis(50);

    async fn handle(
        &self,
        batch: Batch<Order>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        see(&self.seen, &batch);
        for item in &batch {
            ctx.emit_for(
                item.id,
                Shipped {
                    id: item.payload.id.clone(),
                },
            )?;
        }
        Ok(())
    }
}

/// Records what it sees of each `Shipped`.
#[derive(Default)]
struct Record {
    seen: Seen,
}

#[conveyor::async_trait]
impl<S: Store> EventHandler<S> for Record {
    type Event = Shipped;
    const POLL_INTERVAL: Duration = Duration::from_millis(50);

    async fn handle(
        &self,
        batch: Batch<Shipped>,
        _: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        see(&self.seen, &batch);
        Ok(())
    }
}

/// A tracer provider exporting finished spans to memory, its layer installed for this
/// thread until the guard drops.
struct Tracing {
    spans: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

fn install() -> Tracing {
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("conveyor-test"));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    Tracing {
        spans,
        _provider: provider,
        _guard: guard,
    }
}

impl Tracing {
    /// The finished `conveyor.batch` spans of the handler whose type name contains `handler`.
    fn batches(&self, handler: &str) -> Vec<SpanData> {
        let spans = self.spans.get_finished_spans().unwrap();
        spans
            .into_iter()
            .filter(|s| s.name == "conveyor.batch")
            .filter(|s| {
                s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "handler" && kv.value.as_str().contains(handler))
            })
            .collect()
    }
}

/// The trace and span id of a finished span.
fn ids(span: &tracing::Span) -> (TraceId, SpanId) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    (sc.trace_id(), sc.span_id())
}

/// Drain a pool of `ship` and `record`; `delivered` events in all.
async fn drain<S: Store, const N: usize>(store: &S, ship: Ship<N>, record: Record, delivered: i64) {
    let builder = WorkerPool::builder(store.clone())
        .register(ship)
        .register(record);
    let drained = testing::drain(builder, Duration::from_secs(20))
        .await
        .unwrap();
    let counts = (drained.delivered, drained.dead);
    assert_eq!(counts, (delivered, 0), "{:?}", drained.stats);
}

async fn publishing_span_trace_reaches_an_emitted_events_handler<S: Store>(store: &S) {
    let tracing = install();
    let request = tracing::info_span!("request");
    let (trace_id, span_id) = ids(&request);
    let published = store
        .publish(Order { id: "o-1".into() })
        .instrument(request.clone())
        .await
        .unwrap();
    drop(request);
    let (ship, record) = (Ship::<1>::default(), Record::default());
    let (shipped, recorded) = (ship.seen.clone(), record.seen.clone());
    drain(store, ship, record, 2).await;

    let order = published.id().unwrap();
    let expected = format!("00-{trace_id}-{span_id}-01");
    let shipped = shipped.lock().unwrap().clone();
    assert_eq!(shipped, vec![(order, Some(expected.clone()), trace_id)]);
    let record = store.event(order).await.unwrap().unwrap();
    assert_eq!(
        record.traceparent.as_deref(),
        Some(&*expected),
        "the lookup reports it"
    );

    // the handler's span is a child of the publishing span
    let ship_batch = tracing.batches("Ship");
    assert_eq!(ship_batch.len(), 1);
    assert_eq!(ship_batch[0].span_context.trace_id(), trace_id);
    assert_eq!(ship_batch[0].parent_span_id, span_id);
    assert!(ship_batch[0].parent_span_is_remote);

    // the event emitted there carries the handler's span, and its handler continues the trace
    let recorded = recorded.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    let emitted_from = ship_batch[0].span_context.span_id();
    assert_eq!(
        recorded[0].1,
        Some(format!("00-{trace_id}-{emitted_from}-01"))
    );
    assert_eq!(
        recorded[0].2, trace_id,
        "the emitted event's handler is in the trace"
    );
    let record_batch = tracing.batches("Record");
    assert_eq!(record_batch[0].parent_span_id, emitted_from);
}

on_both_backends!(
    publishing_span_trace_reaches_an_emitted_events_handler,
    trace_reaches_an_emitted_events_handler_on_postgres,
    trace_reaches_an_emitted_events_handler_on_sqlite
);

async fn a_batch_of_several_traces_links_to_each<S: Store>(store: &S) {
    let tracing = install();
    let mut publishers = Vec::new();
    for id in ["o-1", "o-2"] {
        let span = tracing::info_span!("request");
        publishers.push(ids(&span));
        store
            .publish(Order { id: id.into() })
            .instrument(span)
            .await
            .unwrap();
    }
    let (ship, record) = (Ship::<2>::default(), Record::default());
    let (shipped, recorded) = (ship.seen.clone(), record.seen.clone());
    drain(store, ship, record, 4).await;

    let batch = tracing.batches("Ship");
    assert_eq!(batch.len(), 1, "both orders in one batch");
    let batch = &batch[0];
    let mut linked: Vec<(TraceId, SpanId)> = batch
        .links
        .links
        .iter()
        .map(|l| (l.span_context.trace_id(), l.span_context.span_id()))
        .collect();
    linked.sort_by_key(|(t, s)| (t.to_string(), s.to_string()));
    publishers.sort_by_key(|(t, s)| (t.to_string(), s.to_string()));
    assert_eq!(linked, publishers, "linked to each publishing span");
    assert!(
        publishers
            .iter()
            .all(|(t, _)| *t != batch.span_context.trace_id()),
        "a trace of its own, not a child of either"
    );
    assert_eq!(shipped.lock().unwrap().len(), 2);

    // each emitted event stays in its cause's trace (the batch's span is in neither)
    let mut traces: Vec<TraceId> = recorded.lock().unwrap().iter().map(|s| s.2).collect();
    traces.sort_by_key(TraceId::to_string);
    let expected: Vec<TraceId> = publishers.iter().map(|(t, _)| *t).collect();
    assert_eq!(traces, expected);
}

on_both_backends!(
    a_batch_of_several_traces_links_to_each,
    several_traces_are_linked_on_postgres,
    several_traces_are_linked_on_sqlite
);

async fn a_bulk_publish_stores_the_span_with_each_event<S: Store>(store: &S) {
    let _tracing = install();
    let request = tracing::info_span!("request");
    let (trace_id, span_id) = ids(&request);
    let orders = ["o-1", "o-2"].map(|id| Message::new(Order { id: id.into() }));
    let [first, second] = orders;
    let given = second.traceparent(GIVEN);
    let report = store
        .publish_batch([first, given])
        .instrument(request)
        .await
        .unwrap();
    let ids: Vec<EventId> = report.inserted().collect();
    let mut stored = Vec::new();
    for id in ids {
        stored.push(store.event(id).await.unwrap().unwrap().traceparent);
    }
    let from_span = format!("00-{trace_id}-{span_id}-01");
    assert_eq!(
        stored,
        vec![Some(from_span), Some(GIVEN.to_owned())],
        "a stated one wins"
    );
}

on_both_backends!(
    a_bulk_publish_stores_the_span_with_each_event,
    bulk_publish_stores_the_span_on_postgres,
    bulk_publish_stores_the_span_on_sqlite
);

const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn an_explicit_traceparent_is_checked_stored_and_handed_down<S: SqlStore>(store: &S) {
    // no tracing layer here: what a build without the feature does
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "nope",
    ] {
        let msg = Message::new(Order { id: "o-0".into() }).traceparent(bad);
        let err = store.publish(msg).await.unwrap_err();
        assert!(matches!(err, conveyor::Error::Validation { .. }), "{err:?}");
        assert!(err.to_string().contains("traceparent"), "{err}");
    }
    let batch = vec![Message::new(Order { id: "o-0".into() }).traceparent("00-x")];
    assert!(store.publish_batch(batch).await.is_err());
    assert!(
        testing::published::<Order, S>(store)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );

    // with a key: the keyed insert on Postgres
    let msg = Message::new(Order { id: "o-1".into() })
        .traceparent(GIVEN)
        .idempotency_key("o-1");
    let order = store.publish(msg).await.unwrap().id().unwrap();
    let (ship, record) = (Ship::<1>::default(), Record::default());
    let (shipped, recorded) = (ship.seen.clone(), record.seen.clone());
    drain(store, ship, record, 2).await;
    assert_eq!(shipped.lock().unwrap()[0].0, order);
    assert_eq!(shipped.lock().unwrap()[0].1.as_deref(), Some(GIVEN));
    // with no span context in the handler, the emitted event inherits its cause's
    assert_eq!(recorded.lock().unwrap()[0].1.as_deref(), Some(GIVEN));
}

on_both_backends!(
    an_explicit_traceparent_is_checked_stored_and_handed_down,
    explicit_traceparent_on_postgres,
    explicit_traceparent_on_sqlite
);
