//! Wake-ups over LISTEN/NOTIFY.
//!
//! Every insert, release, reap, replay and resume sends `NOTIFY conveyor_wake` with
//! `namespace \x1f event_type \x1f queue key` (the routing key, and a subscription's name after
//! another `\x1f`), once per queue per statement. One listener
//! connection per pool turns those into [`Wake`]s for its namespace.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use sqlx::postgres::{PgListener, PgPool};

use super::queue;
use crate::error::Result;
use crate::store::Wake;

/// Notify a list of queues: $1 namespace, $2 event types, $3 routing keys.
const NOTIFY: &str =
    "select count(pg_notify('conveyor_wake', $1 || chr(31) || q.t || chr(31) || q.k)) \
                      from unnest($2::text[], $3::text[]) as q(t, k)";

/// The notification channel.
const CHANNEL: &str = "conveyor_wake";
/// How long to wait before retrying after the listener's connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub(super) async fn wake_stream(
    pool: &PgPool,
    namespace: Arc<str>,
) -> Result<BoxStream<'static, Wake>> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let wakes = stream::unfold(listener, move |mut listener| {
        let namespace = namespace.clone();
        async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if let Some(wake) = parse(n.payload(), &namespace) {
                            return Some((wake, listener));
                        }
                    }
                    // connection lost: the next call reconnects; anything sent meanwhile is missed
                    Ok(None) => return Some((Wake::All, listener)),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "wake-up listener failed; retrying");
                        tokio::time::sleep(RECONNECT_DELAY).await;
                        return Some((Wake::All, listener));
                    }
                }
            }
        }
    });
    Ok(wakes.boxed())
}

/// Send one `NOTIFY` per queue of `namespace`, in one statement of its own.
pub(super) async fn notify(
    pool: &PgPool,
    namespace: &str,
    queues: &[crate::event::Queue],
) -> Result<()> {
    if queues.is_empty() {
        return Ok(());
    }
    let types: Vec<&str> = queues.iter().map(|q| q.event_type.as_str()).collect();
    let keys: Vec<std::borrow::Cow<'_, str>> = queues
        .iter()
        .map(crate::event::Queue::routing_key_str)
        .collect();
    sqlx::query(NOTIFY)
        .bind(namespace)
        .bind(&types)
        .bind(&keys)
        .execute(pool)
        .await?;
    Ok(())
}

/// The wake-up in a notification payload, if it belongs to `namespace`.
fn parse(payload: &str, namespace: &str) -> Option<Wake> {
    // the queue key may hold U+001F itself (before a subscription's name): it is the rest
    let mut parts = payload.splitn(3, '\u{1f}');
    let (ns, event_type, routing_key) = (parts.next()?, parts.next()?, parts.next()?);
    (ns == namespace).then(|| Wake::Queue(queue(event_type.into(), routing_key.into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Queue;

    #[test]
    fn parses_own_namespace_only() {
        let wake = parse("a\u{1f}order\u{1f}", "a");
        assert_eq!(wake, Some(Wake::Queue(Queue::new("order", None))));
        let wake = parse("a\u{1f}rec\u{1f}raw", "a");
        assert_eq!(wake, Some(Wake::Queue(Queue::new("rec", Some("raw")))));
        let wake = parse("a\u{1f}rec\u{1f}raw\u{1f}audit", "a");
        let audit = Queue::new("rec", Some("raw")).in_subscription("audit");
        assert_eq!(wake, Some(Wake::Queue(audit)));
        assert_eq!(parse("b\u{1f}order\u{1f}", "a"), None);
        assert_eq!(parse("garbage", "a"), None);
    }
}
