//! Tests of the bulk ingestion route.

use std::time::Duration;

use chrono::Utc;

use super::*;

fn body(events: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
}

fn event() -> serde_json::Value {
    serde_json::json!({"event_type": "click", "actor_id": "u1", "source": "web", "timestamp": "2026-01-01T00:00:00Z"})
}

fn bad_field(err: ApiError) -> Option<String> {
    match err {
        ApiError::BadRequest { field, .. } => field,
        other => panic!("expected 400, got {other:?}"),
    }
}

fn window() -> Window {
    Window::new(Duration::from_secs(86_400), 3650)
}

/// The 422 details of a body, as (index, field).
fn problems(bytes: &[u8]) -> Vec<(Option<usize>, String)> {
    let request = parse(bytes).unwrap();
    match validate("ns", "r", &request, &window()) {
        Err(ApiError::Unprocessable { details, .. }) => {
            details.into_iter().map(|d| (d.index, d.field)).collect()
        }
        other => panic!("expected 422, got {:?}", other.map(|(_, n)| n)),
    }
}

#[test]
fn a_body_that_is_not_the_envelope_is_400_naming_where() {
    let err = parse(b"{}").unwrap_err();
    assert_eq!(bad_field(err).as_deref(), Some("events"));
    let err = parse(br#"{"events": [{"event_type": "click",}]}"#).unwrap_err();
    assert!(matches!(err, ApiError::BadRequest { .. }));
    let err = parse(br#"{"events": {"a": 1}}"#).unwrap_err();
    assert_eq!(bad_field(err).as_deref(), Some("events"));
}

#[test]
fn per_event_problems_are_422_naming_index_and_field() {
    let mut wrong = event();
    wrong["event_type"] = serde_json::json!(5);
    let mut missing = event();
    missing.as_object_mut().unwrap().remove("source");
    let mut bad_time = event();
    bad_time["timestamp"] = "yesterday".into();
    let body = body(serde_json::json!([event(), wrong, missing, bad_time, 7]));
    let found = problems(&body);
    let fields: Vec<&str> = found.iter().map(|(_, f)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "events[1].event_type",
            "events[2].source",
            "events[3].timestamp",
            "events[4]"
        ]
    );
    assert_eq!(found[0].0, Some(1));
}

#[test]
fn more_than_max_events_is_413_without_reading_the_rest() {
    // what follows the element past the limit is not even valid JSON: parsing stops first
    let mut text = String::from("{\"events\": [");
    for _ in 0..=MAX_EVENTS {
        text.push_str("{},");
    }
    text.push_str("{not json");
    let err = parse(text.as_bytes()).unwrap_err();
    assert!(matches!(err, ApiError::PayloadTooLarge { .. }), "{err:?}");
}

#[test]
fn absent_ids_are_derived_and_the_frame_holds_every_event() {
    let bytes = body(serde_json::json!([event(), event()]));
    let request = parse(&bytes).unwrap();
    let (frame, n) = validate("ns", "r", &request, &window()).unwrap();
    assert_eq!((n, frame.events), (2, 2));
    let header = crate::ingest::frame::Header::parse(
        frame.bytes[..crate::ingest::frame::HEADER]
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let batch = crate::ingest::frame::decode(&frame.bytes[crate::ingest::frame::HEADER..]).unwrap();
    assert!(header.matches(&frame.bytes[crate::ingest::frame::HEADER..]));
    assert_eq!(batch.events[0].event_id, batch.events[1].event_id);
    assert!(batch.events[0].attributes.is_empty());
}

#[test]
fn oversized_or_deep_attributes_are_refused_before_they_are_parsed() {
    let mut big = event();
    // 50 MB of zeros would be 1.7 GB as serde_json::Value; as raw text it is only measured
    big["attributes"] = serde_json::json!({"z": vec![0; 20_000]});
    let mut deep = event();
    let nested = format!("{}{}", "[".repeat(40), "]".repeat(40));
    deep["attributes"] =
        serde_json::json!({"a": serde_json::from_str::<serde_json::Value>(&nested).unwrap()});
    let mut not_object = event();
    not_object["attributes"] = serde_json::json!([1, 2]);
    let found = problems(&body(serde_json::json!([big, deep, not_object, event()])));
    assert_eq!(
        found,
        [
            (Some(0), "events[0].attributes".to_owned()),
            (Some(1), "events[1].attributes".to_owned()),
            (Some(2), "events[2].attributes".to_owned()),
        ]
    );
}

#[test]
fn depth_counts_nesting_outside_strings() {
    assert_eq!(
        super::super::validate::depth(r#"{"a": [1, {"b": "[[[{"}]}"#),
        3
    );
    assert_eq!(super::super::validate::depth(r#"{"a": "\"[["}"#), 1);
    assert_eq!(super::super::validate::depth("{}"), 1);
}

#[test]
fn invalid_events_are_listed_by_index_and_field() {
    let mut bad = event();
    bad["actor_id"] = "".into();
    bad["timestamp"] = (Utc::now() + chrono::Duration::days(2)).to_rfc3339().into();
    let found = problems(&body(serde_json::json!([event(), bad])));
    let fields: Vec<_> = found.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(fields, ["events[1].actor_id", "events[1].timestamp"]);
    assert!(found.iter().all(|d| d.0 == Some(1)));
}

fn no_budget(_: usize) -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn gunzip_enforces_the_cap_and_charges_the_budget_as_it_goes() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[b' '; 200_000]).unwrap();
    let wire = gz.finish().unwrap();
    assert_eq!(gunzip(&wire, 200_000, no_budget).unwrap().len(), 200_000);
    assert!(matches!(
        gunzip(&wire, 199_999, no_budget),
        Err(ApiError::PayloadTooLarge { .. })
    ));
    assert!(matches!(
        gunzip(b"not gzip", 100, no_budget),
        Err(ApiError::BadRequest { .. })
    ));
    // a budget of 100 KiB stops the inflation before the 200 KB are held
    let budget = Budget::new(100 * 1024);
    let mut held = None;
    let err = gunzip(&wire, 200_000, |n| Ok(budget.charge(&mut held, n)?)).unwrap_err();
    assert!(matches!(err, ApiError::Busy { .. }), "{err:?}");
}

#[test]
fn the_window_refuses_the_future_and_what_retention_would_drop() {
    let window = Window::new(Duration::from_secs(3600), 30);
    let now = Utc::now();
    assert!(window.check(now).is_ok());
    assert!(window.check(now - chrono::Duration::days(29)).is_ok());
    let old = window.check(now - chrono::Duration::days(31)).unwrap_err();
    assert!(old.contains("30-day retention window"), "{old}");
    let future = window.check(now + chrono::Duration::hours(2)).unwrap_err();
    assert!(future.contains("ahead of the server's clock"), "{future}");
}
