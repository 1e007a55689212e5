//! Trace context from publisher to handler: the W3C `traceparent` stored with an event.
//!
//! Always here: checking an explicit [`Message::traceparent`](crate::Message::traceparent).
//! With the `opentelemetry` feature: reading the current span's context at publish
//! ([`current`]) and continuing it in the worker's `conveyor.batch` span ([`follow`]),
//! through `tracing-opentelemetry`. Without the feature those two do nothing, and no
//! OpenTelemetry type appears in the API.

use crate::error::{Error, Result};
use crate::event::Event;

/// The length of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
const LEN: usize = 55;

/// Refuse `value` unless it is a W3C `traceparent` (version 00, or a later version's first
/// four fields followed by `-` and more), naming `traceparent` in the error.
pub(crate) fn check<E: Event>(value: &str) -> Result<()> {
    parse(value).map(|_| ()).map_err(|why| {
        let mut report = garde::Report::new();
        report.append(
            garde::Path::new("traceparent"),
            garde::Error::new(format!(
                "must be a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>): {why}, got {value:?}"
            )),
        );
        Error::Validation {
            event_type: E::NAME,
            report,
        }
    })
}

/// The fields of a `traceparent`: trace id, parent (span) id, flags, all lowercase hex.
/// Read only by the `opentelemetry` feature; without it a traceparent is only checked.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
struct Fields<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    flags: &'a str,
}

/// Split and check a `traceparent` by the W3C rules (lowercase hex, ids not all zero,
/// version `ff` invalid, version 00 exactly 55 characters); the reason when it is not one.
fn parse(value: &str) -> std::result::Result<Fields<'_>, &'static str> {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    if value.len() < LEN || !value.is_char_boundary(LEN) {
        return Err("too short");
    }
    let (head, rest) = value.split_at(LEN);
    if !head.is_ascii() {
        return Err("not ASCII");
    }
    let (version, trace_id, span_id, flags) =
        (&head[..2], &head[3..35], &head[36..52], &head[53..]);
    if [2, 35, 52].iter().any(|&i| head.as_bytes()[i] != b'-') {
        return Err("fields must be separated by '-'");
    }
    if !hex(version) || version == "ff" {
        return Err("invalid version");
    }
    if (version == "00" && !rest.is_empty()) || (!rest.is_empty() && !rest.starts_with('-')) {
        return Err("unexpected text after the flags");
    }
    if !hex(trace_id) || zero(trace_id) {
        return Err("invalid trace id");
    }
    if !hex(span_id) || zero(span_id) {
        return Err("invalid span id");
    }
    if !hex(flags) {
        return Err("invalid flags");
    }
    Ok(Fields {
        trace_id,
        span_id,
        flags,
    })
}

#[cfg(feature = "opentelemetry")]
pub(crate) use otel::{context, current, current_in_trace, follow};

/// Without the `opentelemetry` feature there is no span context to read: nothing is stored
/// unless the message states its `traceparent`.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current() -> Option<String> {
    None
}

/// Without the `opentelemetry` feature no span is in any trace: emitted events inherit
/// their cause's `traceparent`.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current_in_trace(_traceparent: &str) -> bool {
    false
}

/// Without the `opentelemetry` feature a batch's span is left as it is.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn follow<'a>(_span: &tracing::Span, _traceparents: impl IntoIterator<Item = &'a str>) {}

#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::parse;

    /// The `traceparent` of the current span's OpenTelemetry context (a `tracing` span under
    /// the `tracing-opentelemetry` layer, or else OpenTelemetry's own current context), if
    /// it has a valid one.
    pub(crate) fn current() -> Option<String> {
        let sc = current_span_context()?;
        Some(format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        ))
    }

    /// The current span's OpenTelemetry span context, if valid (see [`current`]).
    fn current_span_context() -> Option<SpanContext> {
        let span = tracing::Span::current();
        let valid = |cx: &opentelemetry::Context| cx.span().span_context().is_valid();
        let cx = match (!span.is_none()).then(|| span.context()) {
            Some(cx) if valid(&cx) => cx,
            _ => opentelemetry::Context::current(),
        };
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    /// Whether the current span's context is in the trace of `traceparent`.
    pub(crate) fn current_in_trace(traceparent: &str) -> bool {
        let (Some(here), Some(there)) = (current_span_context(), span_context(traceparent)) else {
            return false;
        };
        here.trace_id() == there.trace_id()
    }

    /// The remote span context `traceparent` names (`None` if it is not one).
    pub(crate) fn span_context(traceparent: &str) -> Option<SpanContext> {
        let f = parse(traceparent).ok()?;
        Some(SpanContext::new(
            TraceId::from_hex(f.trace_id).ok()?,
            SpanId::from_hex(f.span_id).ok()?,
            TraceFlags::new(u8::from_str_radix(f.flags, 16).ok()?),
            true,
            Default::default(),
        ))
    }

    /// An OpenTelemetry context whose (remote) parent is `traceparent`, or an empty one.
    pub(crate) fn context(traceparent: Option<&str>) -> opentelemetry::Context {
        match traceparent.and_then(span_context) {
            Some(sc) => opentelemetry::Context::new().with_remote_span_context(sc),
            None => opentelemetry::Context::new(),
        }
    }

    /// Continue the items' traces in `span` (a batch's, not entered yet): when every item
    /// that has a `traceparent` is in one trace, the span becomes the child of the first
    /// item's context (and links to the other items' spans); when they are in several, it
    /// links to each distinct one instead. Does nothing without the `tracing-opentelemetry`
    /// layer or when the span is disabled.
    pub(crate) fn follow<'a>(
        span: &tracing::Span,
        traceparents: impl IntoIterator<Item = &'a str>,
    ) {
        let mut contexts: Vec<SpanContext> = Vec::new();
        for sc in traceparents.into_iter().filter_map(span_context) {
            if !contexts.contains(&sc) {
                contexts.push(sc);
            }
        }
        let Some(first) = contexts.first().cloned() else {
            return;
        };
        let links = if contexts.iter().all(|sc| sc.trace_id() == first.trace_id()) {
            // an error means no layer, a disabled span or one already started: nothing to do
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(first));
            &contexts[1..]
        } else {
            &contexts[..]
        };
        for sc in links {
            span.add_link(sc.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_w3c_traceparent_parses() {
        let f = parse(VALID).unwrap();
        assert_eq!(f.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(f.span_id, "00f067aa0ba902b7");
        assert_eq!(f.flags, "01");
        // a later version may carry more fields after a '-'
        assert!(parse(&format!("01{}-extra", &VALID[2..])).is_ok());
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
