//! Operator lookups over a [`Store`]: `event show` and `events list`.

use anyhow::Context as _;
use conveyor::{EventFilter, EventId, EventRecord, Store};

use crate::config::{EventCommand, EventsCommand};

/// Width of the error column before it is cut with `…`.
pub(crate) const ERROR_WIDTH: usize = 60;

/// `event show`: the event as `key: value` lines or one JSON object; an unknown id fails
/// (exit 1) naming it and the namespace.
pub(crate) async fn event<S: Store>(store: &S, command: EventCommand) -> anyhow::Result<()> {
    let EventCommand::Show { id, json } = command;
    let record = store
        .event(EventId(id))
        .await
        .with_context(|| format!("looking up event {id}"))?
        .with_context(|| format!("no event {id} in namespace {}", store.namespace()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print_record(&record)?;
    }
    Ok(())
}

fn print_record(e: &EventRecord) -> anyhow::Result<()> {
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("id:               {}", e.id);
    println!("queue:            {}", e.queue);
    println!("status:           {}", e.status);
    println!("attempts:         {}", e.attempts);
    println!("priority:         {}", e.priority);
    println!("fairness_key:     {}", e.fairness_key);
    println!("ordering_key:     {}", or_none(e.ordering_key.clone()));
    println!("idempotency_key:  {}", or_none(e.idempotency_key.clone()));
    println!(
        "causation_id:     {}",
        or_none(e.causation_id.map(|c| c.to_string()))
    );
    println!(
        "correlation_id:   {}",
        or_none(e.correlation_id.map(|c| c.to_string()))
    );
    println!("traceparent:      {}", or_none(e.traceparent.clone()));
    println!("created_at:       {}", at(e.created_at));
    println!("available_at:     {}", at(e.available_at));
    println!("updated_at:       {}", at(e.updated_at));
    println!("claimed_by:       {}", or_none(e.claimed_by.clone()));
    println!("lease_expires_at: {}", or_none(e.lease_expires_at.map(at)));
    println!("last_error:       {}", or_none(e.last_error.clone()));
    println!("cancel_reason:    {}", or_none(e.cancel_reason.clone()));
    for f in &e.errors {
        let worker = f.worker.as_deref().unwrap_or("-");
        println!(
            "failed attempt {}: {} on {worker}: {}",
            f.attempt,
            at(f.at),
            cut(&f.error)
        );
    }
    println!("payload:          {}", serde_json::to_string(&e.payload)?);
    Ok(())
}

/// `events list`: a table or JSON lines; says how to get the next page when there may be one.
pub(crate) async fn events<S: Store>(store: &S, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::List {
        queue,
        state,
        from,
        until,
        after,
        limit,
        json,
    } = command;
    let filter = EventFilter {
        queue: queue.queue(),
        status: state,
        created_from: from,
        created_until: until,
        after: after.map(EventId),
        up_to: None,
        limit: limit as usize,
    };
    let page = store.events(&filter).await.context("listing events")?;
    if json {
        for e in &page.events {
            println!("{}", serde_json::to_string(e)?);
        }
    } else {
        print_table(&page.events);
    }
    if let Some(next) = page.next {
        eprintln!("more may follow: --after {next}");
    }
    Ok(())
}

fn print_table(events: &[EventRecord]) {
    println!(
        "{:>12} {:<32} {:<9} {:>8} {:<20} error",
        "id", "queue", "status", "attempts", "created_at"
    );
    for e in events {
        println!(
            "{:>12} {:<32} {:<9} {:>8} {:<20} {}",
            e.id.to_string(),
            e.queue.to_string(),
            e.status.as_str(),
            e.attempts,
            e.created_at.format("%Y-%m-%d %H:%M:%S"),
            cut(e.last_error.as_deref().unwrap_or("")),
        );
    }
}

/// `error` on one line, cut to [`ERROR_WIDTH`] characters with `…`.
pub(crate) fn cut(error: &str) -> String {
    let error = error.replace('\n', " ");
    match error.char_indices().nth(ERROR_WIDTH) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error,
    }
}
