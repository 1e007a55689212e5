//! The keyword backend on SQLite: `KeywordIndexHandler` into FTS5 through the framework, then
//! `keyword_search` reads what it wrote, web-search syntax and hostile input included.

use conveyor_handlers::{Error, KeywordIndexHandler, PipelineStore, RetryPolicy};

use crate::common::record;
use crate::search_support::{event, noise};
use crate::sqlite_support::{checkout_failed, deliver, TestDb};

fn keyword() -> KeywordIndexHandler {
    KeywordIndexHandler::new(RetryPolicy::default())
}

/// The ids of `namespace`'s hits for `q`, best first.
async fn ids(db: &TestDb, namespace: &str, q: &str) -> Vec<uuid::Uuid> {
    let hits = db.store.keyword_search(namespace, q, 100).await;
    hits.unwrap_or_else(|e| panic!("{q:?}: {e}"))
        .iter()
        .map(|h| h.event_id)
        .collect()
}

#[tokio::test]
async fn keyword_search_finds_a_planted_event_in_its_namespace_only() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut events = noise("acme", 300);
    let planted = checkout_failed(
        "acme",
        serde_json::json!({"order": "ord-7f3a9", "reason": "card declined"}),
    );
    events.insert(150, planted.clone());
    let elsewhere = checkout_failed("globex", serde_json::json!({"order": "ord-7f3a9"}));
    for rec in [
        record("acme", events),
        record("globex", vec![elsewhere.clone()]),
    ] {
        deliver(&db.store, &keyword(), vec![rec]).await;
    }
    assert_eq!(
        db.scalar("select count(*) from search_documents").await,
        302
    );

    let hits = db.store.keyword_search("acme", "ord-7f3a9", 10).await?;
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
    assert_eq!(ids(&db, "globex", "ORD-7F3A9").await, [elsewhere.event_id]);
    assert!(ids(&db, "initech", "ord-7f3a9").await.is_empty());
    // a namespace whose name extends another's is another namespace
    assert!(ids(&db, "acm", "ord-7f3a9").await.is_empty());
    assert_eq!(
        ids(&db, "acme", "\"card declined\"").await,
        [planted.event_id]
    );
    assert!(ids(&db, "acme", "\"declined card\" ord").await.is_empty());
    assert!(ids(&db, "acme", "ord-7f3a9 -declined").await.is_empty());
    Ok(())
}

#[tokio::test]
async fn keyword_search_orders_by_rank_then_newest() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let note = |n: &str| serde_json::json!({ "note": n });
    let once_old = event("acme", "refund", "a", 1, note("requested"));
    let once_new = event("acme", "refund", "b", 2, note("requested"));
    let twice = event("acme", "refund", "c", 0, note("refund requested"));
    let events = vec![once_old.clone(), twice.clone(), once_new.clone()];
    deliver(&db.store, &keyword(), vec![record("acme", events)]).await;

    let hits = db.store.keyword_search("acme", "refund", 10).await?;
    let got: Vec<_> = hits.iter().map(|h| h.event_id).collect();
    assert_eq!(got, [twice.event_id, once_new.event_id, once_old.event_id]);
    assert!(hits[0].score > hits[1].score);
    assert_eq!(hits[1].score, hits[2].score);
    assert_eq!(db.store.keyword_search("acme", "refund", 2).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn keyword_search_reads_or_phrases_and_exclusions_like_websearch() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let doc =
        |n: i64, text: &str| event("acme", "note", "u", n, serde_json::json!({ "text": text }));
    let (ab, ag, d) = (doc(1, "alpha beta"), doc(2, "alpha gamma"), doc(3, "delta"));
    let events = vec![ab.clone(), ag.clone(), d.clone()];
    deliver(&db.store, &keyword(), vec![record("acme", events)]).await;
    let set = |mut v: Vec<uuid::Uuid>| {
        v.sort();
        v
    };
    let of =
        |docs: &[&conveyor_handlers::IngestedEvent]| set(docs.iter().map(|e| e.event_id).collect());

    assert_eq!(set(ids(&db, "acme", "beta or delta").await), of(&[&ab, &d]));
    assert_eq!(
        set(ids(&db, "acme", "alpha beta OR delta").await),
        of(&[&ab, &d])
    );
    assert_eq!(ids(&db, "acme", "alpha -beta").await, [ag.event_id]);
    assert_eq!(
        ids(&db, "acme", "alpha -\"alpha beta\"").await,
        [ag.event_id]
    );
    // exclusions only: every document of the namespace but those, as on Postgres
    assert_eq!(ids(&db, "acme", "-alpha").await, [d.event_id]);
    assert_eq!(set(ids(&db, "acme", "-beta").await), of(&[&ag, &d]));
    assert!(ids(&db, "globex", "-beta").await.is_empty());
    assert_eq!(ids(&db, "acme", "\"alpha beta\"").await, [ab.event_id]);
    assert!(ids(&db, "acme", "\"beta alpha\"").await.is_empty());
    // `or` with nothing after it is a word
    assert!(ids(&db, "acme", "delta or").await.is_empty());
    Ok(())
}

#[tokio::test]
async fn keyword_search_never_fails_on_hostile_input() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let planted = checkout_failed(
        "acme",
        serde_json::json!({"order": "ord-7f3a9", "reason": "card declined near the end"}),
    );
    let mut events = noise("acme", 20);
    events.push(planted.clone());
    deliver(&db.store, &keyword(), vec![record("acme", events)]).await;
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
        if let Err(e) = db.store.keyword_search("acme", q, 10).await {
            panic!("{q:?} failed: {e}");
        }
    }
    // syntax is only ever words and separators
    for q in [
        "NEAR",
        "ord-7f3a9*",
        "\"card declined",
        "(card) declined:near",
        "^near",
        "declined\"near",
    ] {
        assert_eq!(ids(&db, "acme", q).await, [planted.event_id], "{q:?}");
    }
    for q in ["", "   ", "\t\n"] {
        let err = db.store.keyword_search("acme", q, 10).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if m == "q must not be empty"),
            "{err}"
        );
    }
    for limit in [0, 101] {
        let err = db
            .store
            .keyword_search("acme", "card", limit)
            .await
            .unwrap_err();
        let expected = format!("limit must be 1..=100, got {limit}");
        assert!(
            matches!(&err, Error::InvalidQuery(m) if *m == expected),
            "{err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn reprocessing_a_keyword_batch_indexes_each_document_once() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut events = noise("acme", 10);
    events.push(events[3].clone());
    let rec = record("acme", events);
    for _ in 0..3 {
        deliver(&db.store, &keyword(), vec![rec.clone()]).await;
    }
    assert_eq!(db.scalar("select count(*) from search_documents").await, 10);
    assert_eq!(db.scalar("select count(*) from search_fts").await, 10);
    assert_eq!(ids(&db, "acme", "user-3").await.len(), 1);
    Ok(())
}
