//! `TracingMiddleware`: a `conveyor.handle` span per `handle` call, inside `conveyor.batch`,
//! with the batch's fields and, once the call returns, its outcome counts and error. A
//! subscriber that records every span's fields runs the pool on this test's only thread.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::middleware::TracingMiddleware;
use conveyor::{testing, Batch, Context, EventHandler, HandlerError, Store, WorkerPool};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Job {
    #[garde(skip)]
    n: u64,
}

impl conveyor::Event for Job {
    const NAME: &'static str = "job";
}

/// Fails job 1 alone, and the whole batch when it holds job 9.
struct Jobs;

#[conveyor::async_trait]
impl<S: Store> EventHandler<S> for Jobs {
    type Event = Job;
    const BATCH_SIZE: usize = 10;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            match item.payload.n {
                1 => ctx.fail(item.id, "job 1 is bad"),
                9 => return Err(HandlerError::fail("boom")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A span's name, its parent's name and its fields as text.
#[derive(Debug, Clone, Default)]
struct Captured {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

/// Records every span into `spans`, by id.
#[derive(Debug, Clone, Default)]
struct Capture {
    spans: Arc<Mutex<BTreeMap<u64, Captured>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let mut span = Captured {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: LayerContext<'_, S>) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

impl Capture {
    fn handle_spans(&self) -> Vec<Captured> {
        let spans = self.spans.lock().unwrap();
        spans
            .values()
            .filter(|s| s.name == "conveyor.handle")
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_handle_span_carries_the_batch_and_its_outcome() -> conveyor::Result<()> {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let db = testing::sqlite().await?;
    db.publish_batch((0..3).map(|n| Job { n })).await?;
    let pool = || {
        WorkerPool::builder(db.clone())
            .middleware(TracingMiddleware)
            .register(Jobs)
    };
    testing::drain(pool(), Duration::from_secs(10)).await?;
    db.publish(Job { n: 9 }).await?;
    testing::drain(pool(), Duration::from_secs(10)).await?;

    let spans = capture.handle_spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (ok, failed) = (&spans[0].fields, &spans[1].fields);
    assert_eq!(spans[0].parent.as_deref(), Some("conveyor.batch"));
    assert!(ok["handler"].ends_with("Jobs"), "{ok:?}");
    assert_eq!(ok["queue"], "job");
    assert_eq!(ok["batch_size"], "3");
    assert_eq!(
        (
            ok["delivered"].as_str(),
            ok["dead"].as_str(),
            ok["retried"].as_str()
        ),
        ("2", "1", "0")
    );
    assert!(!ok.contains_key("error"), "{ok:?}");
    assert_eq!(failed["batch_size"], "1");
    assert_eq!(
        (failed["dead"].as_str(), failed["delivered"].as_str()),
        ("1", "0")
    );
    assert_eq!(failed["error"], "boom");
    Ok(())
}
