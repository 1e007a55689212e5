-- Trace context (Message::traceparent, or the publishing span's with the `opentelemetry`
-- feature): the W3C `traceparent` the event was published under, handed to the worker with
-- the claim so the batch's span continues the trace. Nullable, no default: no table rewrite.
alter table conveyor_events add column traceparent text;
