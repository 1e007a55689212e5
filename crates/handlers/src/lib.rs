//! The handlers of the pipeline the `conveyor` server ships, built on the framework's
//! public API exactly as a user of the library would build their own.
//!
//! This crate holds no handlers yet: the ingestion → fan-out → raw store / rollup / search
//! pipeline is the next piece of work (see `docs/ARCHITECTURE.md`, "What is not built yet").
//! One handler per file will live here, with `register_all(builder)` to register them.
