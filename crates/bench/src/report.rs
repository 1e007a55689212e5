//! [`Report`]: one measured result, as a JSON object (`--json`) or a row of the human table
//! ([`print_table`]), plus the [`Percentiles`] and ordered [`Row`]s it carries.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::rss::peak_rss_mib;

/// One measured result of a workload on a backend.
///
/// `--json` prints each as one line (`serde_json::to_string`); [`print_table`] prints them
/// for people. `events` and `rate` are the headline numbers; the maps hold the rest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The workload: `ceiling`, `throughput`, `latency`, `ingest` or `soak`.
    pub workload: String,
    /// What was measured within the workload, e.g. `claim_delete` or `drain`.
    pub variant: String,
    /// The backend: `postgres`, `sqlite`, or `http` for the ingest driver.
    pub backend: String,
    /// The workload's parameters, as given (a JSON object).
    pub params: Value,
    /// The events (or rows) this result counts.
    pub events: u64,
    /// Seconds the measured phase took.
    pub elapsed_s: f64,
    /// `events / elapsed_s`, events per second; `None` when no rate applies.
    pub rate: Option<f64>,
    /// Further counts by name (failures, HTTP statuses, backlog, ...).
    pub counts: BTreeMap<String, u64>,
    /// Further rates by name, events per second (end to end, first and last interval, ...).
    pub rates: BTreeMap<String, f64>,
    /// Latency percentiles in milliseconds, where the workload measures latency.
    pub latency_ms: Option<Percentiles>,
    /// Peak resident set of this process in MiB (`VmHWM`) when the result was taken.
    pub peak_rss_mib: Option<f64>,
    /// Pass/fail of the workload's own targets (the soak's decay and RSS checks).
    pub checks: BTreeMap<String, bool>,
    /// Per-interval or per-configuration rows (soak minutes, sweep grid), in order.
    pub rows: Vec<Row>,
    /// Remarks for people (the best sweep configuration, a timeout, ...).
    pub notes: Vec<String>,
}

impl Report {
    /// A report of `events` measured over `elapsed`, with its rate and the current peak RSS.
    pub(crate) fn new(
        workload: &str,
        variant: &str,
        backend: &str,
        params: &impl serde::Serialize,
        events: u64,
        elapsed: Duration,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            workload: workload.to_owned(),
            variant: variant.to_owned(),
            backend: backend.to_owned(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
            events,
            elapsed_s: secs,
            rate: (secs > 0.0).then(|| events as f64 / secs),
            counts: BTreeMap::new(),
            rates: BTreeMap::new(),
            latency_ms: None,
            peak_rss_mib: peak_rss_mib(),
            checks: BTreeMap::new(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Add a named count.
    pub(crate) fn count(mut self, name: &str, n: u64) -> Self {
        self.counts.insert(name.to_owned(), n);
        self
    }

    /// Add a named rate (events per second).
    pub(crate) fn rate(mut self, name: &str, per_s: f64) -> Self {
        self.rates.insert(name.to_owned(), per_s);
        self
    }

    /// Set the latency percentiles.
    pub(crate) fn latency(mut self, latency: Option<Percentiles>) -> Self {
        self.latency_ms = latency;
        self
    }

    /// Add a remark.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Latency percentiles in milliseconds (nearest rank), with the sample count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// How many samples.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest sample.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `samples` (milliseconds), or `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = (p * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Self {
            samples: sorted.len(),
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// An ordered row of named values: a soak interval, a sweep configuration. Serializes as a
/// JSON object whose keys keep their order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub Vec<(String, Value)>);

impl Row {
    /// Append a named value.
    pub(crate) fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.push((name.to_owned(), value.into()));
        self
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Print `reports` as a table on stdout.
///
/// # Errors
/// When stdout cannot be written.
pub fn print_table(reports: &[Report]) -> io::Result<()> {
    write_table(&mut io::stdout().lock(), reports)
}

/// Write `reports` as a table: one line per report with its headline numbers and parameters,
/// then its counts, rates, checks and notes indented beneath, then its rows as a sub-table.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_table(out: &mut impl Write, reports: &[Report]) -> io::Result<()> {
    const HEADER: [&str; 10] = [
        "workload", "variant", "backend", "events", "secs", "events/s", "p50 ms", "p95 ms",
        "p99 ms", "rss MiB",
    ];
    let lines: Vec<[String; 10]> = reports.iter().map(headline).collect();
    let mut widths = HEADER.map(str::len);
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let header = HEADER.map(str::to_owned);
    write_cells(out, &header, &widths, "params")?;
    for (report, line) in reports.iter().zip(&lines) {
        write_cells(out, line, &widths, &params_text(&report.params))?;
        write_details(out, report)?;
    }
    Ok(())
}

fn headline(r: &Report) -> [String; 10] {
    let ms = |f: fn(&Percentiles) -> f64| r.latency_ms.as_ref().map_or("-".into(), |p| fixed(f(p)));
    [
        r.workload.clone(),
        r.variant.clone(),
        r.backend.clone(),
        grouped(r.events as f64),
        format!("{:.2}", r.elapsed_s),
        r.rate.map_or("-".into(), grouped),
        ms(|p| p.p50),
        ms(|p| p.p95),
        ms(|p| p.p99),
        r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
    ]
}

fn write_cells(
    out: &mut impl Write,
    cells: &[String],
    widths: &[usize],
    last: &str,
) -> io::Result<()> {
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        // names left-aligned, numbers right-aligned
        if i < 3 {
            write!(out, "{cell:<w$}  ")?;
        } else {
            write!(out, "{cell:>w$}  ")?;
        }
    }
    writeln!(out, "{last}")
}

fn write_details(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let mut details: Vec<String> = Vec::new();
    details.extend(r.counts.iter().map(|(k, v)| format!("{k}={v}")));
    details.extend(
        r.rates
            .iter()
            .map(|(k, v)| format!("{k}={}/s", grouped(*v))),
    );
    details.extend(
        r.checks
            .iter()
            .map(|(k, ok)| format!("{k}={}", if *ok { "yes" } else { "NO" })),
    );
    if !details.is_empty() {
        writeln!(out, "    {}", details.join("  "))?;
    }
    for note in &r.notes {
        writeln!(out, "    {note}")?;
    }
    write_rows(out, &r.rows)
}

fn write_rows(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let names: Vec<&str> = first.0.iter().map(|(k, _)| k.as_str()).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            names
                .iter()
                .map(|n| row.get(n).map_or("-".into(), cell))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = names.iter().map(|n| n.len()).collect();
    for line in &cells {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.len());
        }
    }
    let header: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    for line in std::iter::once(&header).chain(&cells) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        writeln!(out, "    {}", cells.join("  "))?;
    }
    Ok(())
}

fn params_text(params: &Value) -> String {
    match params {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => fixed(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A float with precision that suits its size: 0.123, 12.3, 1234.
fn fixed(v: f64) -> String {
    match v.abs() {
        a if a >= 1000.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// A whole number with thousands separators: 1,234,567.
fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Serde helper: a [`Duration`] as fractional seconds, so parameters read `"duration": 10.0`.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::Serializer;

    /// Serialize `d` as seconds.
    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
