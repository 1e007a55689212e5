//! Tests of the report: percentiles, the table and the JSON line.

use super::*;

#[test]
fn percentiles_use_the_nearest_rank() {
    let samples: Vec<f64> = (1..=100).map(f64::from).collect();
    let p = Percentiles::of(&samples).expect("samples");
    assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
    assert_eq!(p.samples, 100);
    let one = Percentiles::of(&[7.0]).expect("one sample");
    assert_eq!((one.p50, one.p99), (7.0, 7.0));
    assert_eq!(Percentiles::of(&[]), None);
}

#[test]
fn grouped_inserts_thousands_separators() {
    assert_eq!(grouped(0.4), "0");
    assert_eq!(grouped(999.0), "999");
    assert_eq!(grouped(1234.0), "1,234");
    assert_eq!(grouped(1_234_567.0), "1,234,567");
    assert_eq!(grouped(-1234.0), "-1,234");
}

#[test]
fn rows_serialize_as_objects_in_insertion_order() {
    let row = Row::default().with("z", 1).with("a", "x");
    assert_eq!(
        serde_json::to_string(&row).expect("json"),
        r#"{"z":1,"a":"x"}"#
    );
}

#[test]
fn table_shows_headline_details_and_rows() {
    let mut report = Report::new(
        "soak",
        "steady",
        "postgres",
        &serde_json::json!({"rate": 100}),
        1000,
        Duration::from_secs(2),
    )
    .count("backlog", 3)
    .note("all good");
    report
        .rows
        .push(Row::default().with("interval", 1).with("rate", 500.5));
    let mut out = Vec::new();
    write_table(&mut out, &[report]).expect("write");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains("soak"), "{text}");
    assert!(text.contains("1,000"), "{text}");
    assert!(text.contains("500"), "{text}");
    assert!(text.contains("rate=100"), "{text}");
    assert!(text.contains("backlog=3"), "{text}");
    assert!(text.contains("all good"), "{text}");
    assert!(text.contains("interval"), "{text}");
}
