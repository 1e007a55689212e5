//! One entry of the ingestion log on disk: a fixed header (payload length, CRC-32, append
//! time, event count) and the payload, one accepted request in a compact binary encoding.
//!
//! The payload stores each event's `attributes` as the JSON text the client sent (already
//! checked to be an object within the size and depth limits), so reading an entry back never
//! nests it deeper than the request did: what the API acknowledged always decodes.

use chrono::{DateTime, Utc};
use conveyor_handlers::{EventsReceived, IngestedEvent};
use uuid::Uuid;

/// Bytes of a frame header: length (u32), CRC-32 (u32), append time (i64 µs), events (u32).
pub(crate) const HEADER: usize = 20;
/// Largest payload a reader accepts; a larger length is a torn or corrupt frame.
pub(crate) const MAX_PAYLOAD: usize = 512 * 1024 * 1024;

/// A frame header, as read from disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Payload bytes after the header.
    pub(crate) len: u32,
    /// CRC-32 of the append time, the event count and the payload.
    pub(crate) crc: u32,
    /// When the API appended the entry, in µs since the epoch.
    pub(crate) appended_at: i64,
    /// Events in the entry.
    pub(crate) events: u32,
}

impl Header {
    /// The header in `bytes`, or `None` when its length is impossible.
    pub(crate) fn parse(bytes: &[u8; HEADER]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let header = Header {
            len: u32_at(0),
            crc: u32_at(4),
            appended_at: i64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            events: u32_at(16),
        };
        (header.len as usize <= MAX_PAYLOAD).then_some(header)
    }

    /// Whether `payload` is the one this header was written with.
    pub(crate) fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize
            && checksum(self.appended_at, self.events, payload) == self.crc
    }

    /// Header and payload bytes.
    pub(crate) fn frame_len(&self) -> u64 {
        HEADER as u64 + u64::from(self.len)
    }
}

fn checksum(appended_at: i64, events: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&appended_at.to_le_bytes());
    hasher.update(&events.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// One validated event, borrowed from the request, as the log stores it.
#[derive(Debug, Clone)]
pub(crate) struct EventRef<'a> {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: &'a str,
    pub(crate) actor_id: &'a str,
    pub(crate) source: &'a str,
    pub(crate) timestamp: DateTime<Utc>,
    /// The attributes' JSON text (an object).
    pub(crate) attributes: &'a str,
}

impl<'a> EventRef<'a> {
    /// `event` with `attributes` as its attributes' JSON text.
    pub(crate) fn new(event: &'a IngestedEvent, attributes: &'a str) -> Self {
        Self {
            event_id: event.event_id,
            event_type: &event.event_type,
            actor_id: &event.actor_id,
            source: &event.source,
            timestamp: event.timestamp,
            attributes,
        }
    }
}

/// An encoded frame, ready to append.
#[derive(Debug)]
pub(crate) struct Frame {
    /// Header and payload.
    pub(crate) bytes: Vec<u8>,
    /// Events in it.
    pub(crate) events: u32,
}

/// Encode one request's events as a frame appended at `appended_at` (µs since the epoch).
pub(crate) fn encode(
    namespace: &str,
    request_id: &str,
    events: &[EventRef<'_>],
    appended_at: i64,
) -> Frame {
    let size: usize = events
        .iter()
        .map(|e| {
            16 + 12
                + 16
                + 4
                + e.event_type.len()
                + e.actor_id.len()
                + e.source.len()
                + e.attributes.len()
        })
        .sum();
    let mut bytes = Vec::with_capacity(HEADER + 12 + namespace.len() + request_id.len() + size);
    bytes.resize(HEADER, 0);
    put_str(&mut bytes, namespace);
    put_str(&mut bytes, request_id);
    bytes.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        bytes.extend_from_slice(e.event_id.as_bytes());
        put_str(&mut bytes, e.event_type);
        put_str(&mut bytes, e.actor_id);
        put_str(&mut bytes, e.source);
        bytes.extend_from_slice(&e.timestamp.timestamp().to_le_bytes());
        bytes.extend_from_slice(&e.timestamp.timestamp_subsec_nanos().to_le_bytes());
        put_str(&mut bytes, e.attributes);
    }
    let count = events.len() as u32;
    let len = (bytes.len() - HEADER) as u32;
    let crc = checksum(appended_at, count, &bytes[HEADER..]);
    bytes[0..4].copy_from_slice(&len.to_le_bytes());
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    bytes[8..16].copy_from_slice(&appended_at.to_le_bytes());
    bytes[16..20].copy_from_slice(&count.to_le_bytes());
    Frame {
        bytes,
        events: count,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Why a payload does not decode.
#[derive(Debug, thiserror::Error)]
#[error("corrupt ingestion log entry: {0}")]
pub(crate) struct Corrupt(String);

/// The request a payload (checked against its header) holds.
pub(crate) fn decode(payload: &[u8]) -> Result<EventsReceived, Corrupt> {
    let mut r = Cursor { bytes: payload };
    let namespace = r.string()?;
    let request_id = r.string()?;
    let n = r.u32()? as usize;
    let mut events = Vec::with_capacity(n.min(payload.len() / 40 + 1));
    for _ in 0..n {
        let event_id = Uuid::from_bytes(r.take(16)?.try_into().expect("16 bytes"));
        let event_type = r.string()?;
        let actor_id = r.string()?;
        let source = r.string()?;
        let secs = i64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let nanos = r.u32()?;
        let timestamp = DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| Corrupt(format!("timestamp {secs}.{nanos} out of range")))?;
        let attributes = serde_json::from_slice(r.take_str()?)
            .map_err(|e| Corrupt(format!("attributes: {e}")))?;
        events.push(IngestedEvent {
            event_id,
            event_type,
            actor_id,
            source,
            timestamp,
            attributes,
        });
    }
    if !r.bytes.is_empty() {
        return Err(Corrupt(format!("{} trailing bytes", r.bytes.len())));
    }
    Ok(EventsReceived {
        namespace,
        request_id,
        events,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.bytes.len() < n {
            return Err(Corrupt("truncated payload".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn take_str(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        let bytes = self.take_str()?;
        String::from_utf8(bytes.to_vec()).map_err(|e| Corrupt(format!("text: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attributes: &str) -> EventRef<'_> {
        EventRef {
            event_id: Uuid::new_v4(),
            event_type: "click",
            actor_id: "u1",
            source: "web",
            timestamp: DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap(),
            attributes,
        }
    }

    fn header_of(frame: &Frame) -> Header {
        Header::parse(frame.bytes[..HEADER].try_into().unwrap()).unwrap()
    }

    #[test]
    fn a_frame_round_trips_with_nanosecond_timestamps() {
        let events = [event(r#"{"page": "/pricing", "n": [1, 2.5]}"#), event("{}")];
        let frame = encode("acme", "req-1", &events, 42);
        let header = header_of(&frame);
        assert_eq!((header.events, header.appended_at), (2, 42));
        assert_eq!(header.frame_len(), frame.bytes.len() as u64);
        let payload = &frame.bytes[HEADER..];
        assert!(header.matches(payload));
        let back = decode(payload).unwrap();
        assert_eq!(
            (back.namespace.as_str(), back.request_id.as_str()),
            ("acme", "req-1")
        );
        assert_eq!(back.events[0].event_id, events[0].event_id);
        assert_eq!(back.events[0].timestamp, events[0].timestamp);
        assert_eq!(back.events[0].attributes["page"], "/pricing");
        assert!(back.events[1].attributes.is_empty());
    }

    #[test]
    fn a_flipped_bit_or_a_torn_payload_is_detected() {
        let frame = encode("acme", "r", &[event("{}")], 1);
        let header = header_of(&frame);
        let mut payload = frame.bytes[HEADER..].to_vec();
        payload[3] ^= 1;
        assert!(!header.matches(&payload));
        assert!(!header.matches(&frame.bytes[HEADER..frame.bytes.len() - 1]));
        assert!(decode(&frame.bytes[HEADER..frame.bytes.len() - 1]).is_err());
    }

    #[test]
    fn deeply_nested_attributes_decode_as_deep_as_they_were_sent() {
        // 120 levels: within serde_json's limit alone, past it if the log wrapped them
        let nested = format!("{}{}", "{\"a\":[".repeat(60), "]}".repeat(60));
        let frame = encode("acme", "r", &[event(&nested)], 1);
        let back = decode(&frame.bytes[HEADER..]).unwrap();
        assert!(back.events[0].attributes.contains_key("a"));
    }
}
