-- Trace context (Message::traceparent, or the publishing span's with the `opentelemetry`
-- feature), as in migrations/postgres. Nullable: added in place, no rebuild.
alter table conveyor_events add column traceparent text;
