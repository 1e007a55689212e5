//! Helpers shared by the test binaries.

use conveyor_bench::Report;

/// A report's numbers are sane and it serializes to one JSON line.
pub(crate) fn assert_well_formed(report: &Report, workload: &str, backend: &str) {
    assert_eq!(report.workload, workload);
    assert_eq!(report.backend, backend);
    assert!(report.params.is_object(), "params: {:?}", report.params);
    assert!(report.elapsed_s > 0.0, "{report:?}");
    assert!(report.rate.is_some_and(|r| r > 0.0), "{report:?}");
    assert!(report.peak_rss_mib.is_some_and(|m| m > 0.0), "{report:?}");
    if let Some(p) = report.latency_ms {
        assert!(p.samples > 0 && p.p50 >= 0.0, "{p:?}");
        assert!(p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max, "{p:?}");
    }
    let line = serde_json::to_string(report).expect("json");
    assert!(!line.contains('\n'));
    let back: serde_json::Value = serde_json::from_str(&line).expect("parse");
    for field in [
        "workload",
        "variant",
        "backend",
        "params",
        "events",
        "rate",
        "latency_ms",
        "peak_rss_mib",
    ] {
        assert!(back.get(field).is_some(), "missing {field} in {line}");
    }
}
