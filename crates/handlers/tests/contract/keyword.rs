//! The keyword backend: `KeywordIndexHandler` through the framework, then `keyword_search`
//! reads what it wrote, web-search syntax and hostile input included.

use conveyor_handlers::{
    Embedder, Error, HashingEmbedder, IngestedEvent, KeywordIndexHandler, PipelineStore,
    RetryPolicy,
};
use std::sync::Arc;

use super::fixtures::{checkout_failed, deliver, noise, record, search_event};
use super::Harness;

fn keyword() -> KeywordIndexHandler {
    KeywordIndexHandler::new(RetryPolicy::default())
}

/// The ids of `namespace`'s hits for `q`, best first.
async fn ids<S: PipelineStore>(store: &S, namespace: &str, q: &str) -> Vec<uuid::Uuid> {
    let hits = store.keyword_search(namespace, q, 100).await;
    hits.unwrap_or_else(|e| panic!("{q:?}: {e}"))
        .iter()
        .map(|h| h.event_id)
        .collect()
}

/// A planted event is found by an attribute value (any case, as a phrase) in its own
/// namespace only.
pub(crate) async fn keyword_search_finds_a_planted_event_in_its_namespace_only<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let mut events = noise("acme", 300);
    let planted = checkout_failed(
        "acme",
        serde_json::json!({"order": "ord-7f3a9", "reason": "card declined"}),
    );
    events.insert(150, planted.clone());
    let elsewhere = checkout_failed("globex", serde_json::json!({"order": "ord-7f3a9"}));
    let mut other = noise("globex", 20);
    other.push(elsewhere.clone());
    for rec in [record("acme", events), record("globex", other)] {
        deliver(store, &keyword(), vec![rec]).await;
    }
    assert_eq!(h.scalar("select count(*) from search_documents").await, 322);

    let hits = store.keyword_search("acme", "ord-7f3a9", 10).await?;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        (
            hits[0].event_id,
            hits[0].timestamp,
            hits[0].event_type.as_str(),
            hits[0].source.as_str()
        ),
        (
            planted.event_id,
            planted.timestamp,
            "checkout_failed",
            "web"
        )
    );
    assert!(hits[0].score > 0.0);
    assert_eq!(
        ids(store, "globex", "ORD-7F3A9").await,
        [elsewhere.event_id]
    );
    assert!(ids(store, "initech", "ord-7f3a9").await.is_empty());
    // a namespace whose name extends another's is another namespace
    assert!(ids(store, "acm", "ord-7f3a9").await.is_empty());
    // web-search syntax: a phrase, and a negated word excluding the match
    assert_eq!(
        ids(store, "acme", "\"card declined\"").await,
        [planted.event_id]
    );
    assert!(ids(store, "acme", "\"declined card\" ord").await.is_empty());
    assert!(ids(store, "acme", "ord-7f3a9 -declined").await.is_empty());
    Ok(())
}

/// Hits come by rank, equal ranks newest first, and `limit` cuts the list.
pub(crate) async fn keyword_search_orders_by_rank_then_newest<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let note = |n: &str| serde_json::json!({ "note": n });
    let once_old = search_event("acme", "refund", "a", 1, note("requested"));
    let once_new = search_event("acme", "refund", "b", 2, note("requested"));
    let twice = search_event("acme", "refund", "c", 0, note("refund requested"));
    let events = vec![once_old.clone(), twice.clone(), once_new.clone()];
    deliver(store, &keyword(), vec![record("acme", events)]).await;

    let hits = store.keyword_search("acme", "refund", 10).await?;
    let got: Vec<_> = hits.iter().map(|h| h.event_id).collect();
    assert_eq!(got, [twice.event_id, once_new.event_id, once_old.event_id]);
    assert!(hits[0].score > hits[1].score);
    assert_eq!(hits[1].score, hits[2].score);
    assert_eq!(store.keyword_search("acme", "refund", 2).await?.len(), 2);
    Ok(())
}

/// `or`, phrases and exclusions read as web-search syntax does.
pub(crate) async fn keyword_search_reads_or_phrases_and_exclusions_like_websearch<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let doc = |n: i64, text: &str| {
        search_event("acme", "note", "u", n, serde_json::json!({ "text": text }))
    };
    let (ab, ag, d) = (doc(1, "alpha beta"), doc(2, "alpha gamma"), doc(3, "delta"));
    let events = vec![ab.clone(), ag.clone(), d.clone()];
    deliver(store, &keyword(), vec![record("acme", events)]).await;
    let set = |mut v: Vec<uuid::Uuid>| {
        v.sort();
        v
    };
    let of = |docs: &[&IngestedEvent]| set(docs.iter().map(|e| e.event_id).collect());

    assert_eq!(
        set(ids(store, "acme", "beta or delta").await),
        of(&[&ab, &d])
    );
    assert_eq!(
        set(ids(store, "acme", "alpha beta OR delta").await),
        of(&[&ab, &d])
    );
    assert_eq!(ids(store, "acme", "alpha -beta").await, [ag.event_id]);
    assert_eq!(
        ids(store, "acme", "alpha -\"alpha beta\"").await,
        [ag.event_id]
    );
    // exclusions only: every document of the namespace but those
    assert_eq!(ids(store, "acme", "-alpha").await, [d.event_id]);
    assert_eq!(set(ids(store, "acme", "-beta").await), of(&[&ag, &d]));
    assert!(ids(store, "globex", "-beta").await.is_empty());
    assert_eq!(ids(store, "acme", "\"alpha beta\"").await, [ab.event_id]);
    assert!(ids(store, "acme", "\"beta alpha\"").await.is_empty());
    // `or` with nothing after it is a word
    assert!(ids(store, "acme", "delta or").await.is_empty());
    Ok(())
}

/// A keyword batch delivered three times (with a repeat inside) indexes each document once.
pub(crate) async fn reprocessing_a_keyword_batch_indexes_each_document_once<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let mut events = noise("acme", 10);
    events.push(events[3].clone());
    let rec = record("acme", events);
    for _ in 0..3 {
        deliver(h.store(), &keyword(), vec![rec.clone()]).await;
    }
    assert_eq!(h.scalar("select count(*) from search_documents").await, 10);
    assert_eq!(h.keyword_index_rows().await, 10);
    assert_eq!(ids(h.store(), "acme", "user-3").await.len(), 1);
    Ok(())
}

/// Both searches refuse an empty query and a limit outside 1..=100 by name; punctuation
/// only is a valid query that matches nothing.
pub(crate) async fn searches_reject_an_empty_query_and_a_bad_limit<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::default());
    for q in ["", "   ", "\n\t"] {
        let err = store.keyword_search("acme", q, 10).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if m == "q must not be empty"),
            "{err}"
        );
        let err = store
            .similar_search(&embedder, "acme", q, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if m == "q must not be empty"),
            "{err}"
        );
    }
    for limit in [0, 101] {
        let expected = format!("limit must be 1..=100, got {limit}");
        let err = store.keyword_search("acme", "x", limit).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if *m == expected),
            "{err}"
        );
        let err = store
            .similar_search(&embedder, "acme", "x", limit)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if *m == expected),
            "{err}"
        );
    }
    assert!(store.keyword_search("acme", "!!!", 10).await?.is_empty());
    assert!(store
        .similar_search(&embedder, "acme", "!!!", 10)
        .await?
        .is_empty());
    Ok(())
}

/// No query fails the keyword search: syntax is only ever words and separators.
pub(crate) async fn keyword_search_never_fails_on_hostile_input<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let planted = checkout_failed(
        "acme",
        serde_json::json!({"order": "ord-7f3a9", "reason": "card declined near the end"}),
    );
    let mut events = noise("acme", 20);
    events.push(planted.clone());
    deliver(store, &keyword(), vec![record("acme", events)]).await;
    let long_or = vec!["x"; 2000].join(" or ");
    let long_and = "declined ".repeat(3000);
    for q in [
        "\"",
        "\"\"",
        "\"\"\"",
        "(",
        ")",
        "()",
        "*",
        "**",
        "a*",
        "^",
        ":",
        "::",
        "-",
        "--",
        "- -",
        "NEAR",
        "NEAR(",
        "NEAR(a b, 2)",
        "AND",
        "OR",
        "NOT",
        "a AND",
        "NOT a",
        "or or or",
        "body:card",
        "ns:61636D65",
        "{body ns}:x",
        "col : (a OR b)",
        "'",
        "';--",
        "\\",
        "%_",
        "\u{0}",
        "x\u{0}y",
        "😀",
        "日本語",
        "ﬁ",
        "\u{301}",
        "\u{feff}",
        "\u{202e}evil",
        "[a] {b} <c> |d| &e! ~f",
        long_or.as_str(),
        long_and.as_str(),
    ] {
        if let Err(e) = store.keyword_search("acme", q, 10).await {
            panic!("{q:?} failed: {e}");
        }
    }
    for q in [
        "NEAR",
        "ord-7f3a9*",
        "\"card declined",
        "(card) declined:near",
        "^near",
        "declined\"near",
    ] {
        assert_eq!(ids(store, "acme", q).await, [planted.event_id], "{q:?}");
    }
    Ok(())
}
