//! The pipeline contract: one behavioural suite, written once against
//! [`conveyor_handlers::PipelineStore`], run against every backend.
//!
//! A new backend (a `redis/` beside `postgres/` and `sqlite/`) implements [`Harness`] (a
//! fresh migrated database per case and the few statements whose SQL differs) in a thin
//! test file of its own, as `tests/postgres.rs` and `tests/sqlite.rs` do, and calls
//! [`pipeline_cases!`] there with a macro that turns each case into a test. Cases true of
//! one backend only (Postgres partitions, SQLite's write lock) stay in that backend's file.
//! A backend that fails a case has a bug; the case is not weakened for it.
//!
//! The suite is a module of this crate's tests, not a package like `tests/contract`: every
//! `PipelineStore` backend lives in `conveyor-handlers`, so its tests are the only users,
//! and two binaries (one per backend) link faster than a package's.
//!
//! # Layout
//! - [`harness`]: the [`Harness`] trait, and [`Handles`](harness::Handles), the bound
//!   that lets the cases run the pipeline's handlers on the harness's store.
//! - [`fixtures`]: events, records, handler runs, polling, test embedders.
//! - [`raw`]: raw storage and deduplication.
//! - [`rollup`]: exact rollups under duplicates, failures and concurrency; rebuild.
//! - [`queries`]: the read side, its cursors and its errors.
//! - [`keyword`], [`vector`]: the search backends; [`deadline`]: their deadline.
//! - [`retention`]: upkeep and the whole pipeline from `EventsReceived`.

#![allow(dead_code)] // each binary uses the fixtures its backend-only cases need

pub(crate) mod deadline;
pub(crate) mod fixtures;
pub(crate) mod harness;
pub(crate) mod keyword;
pub(crate) mod queries;
pub(crate) mod raw;
pub(crate) mod retention;
pub(crate) mod rollup;
pub(crate) mod vector;

pub(crate) use harness::Harness;

/// Calls `$m! { module::case, … }` with every case of the suite, so each backend's test
/// file runs the whole list and a new case reaches every backend at once.
///
/// ```text
/// macro_rules! backend { ($($module:ident :: $case:ident),* $(,)?) => { /* one test per case */ } }
/// contract::pipeline_cases!(backend);
/// ```
macro_rules! pipeline_cases {
    ($m:ident) => {
        $m! {
            raw::a_batch_lands_once,
            raw::reprocessing_the_same_batch_changes_nothing,
            raw::duplicates_inside_one_batch_are_stored_once,
            raw::repeats_are_stored_once_per_namespace,
            raw::timestamps_keep_microseconds_and_events_differing_by_one_are_distinct,
            rollup::counts_equal_the_group_by_over_events_raw_after_duplicates_and_reprocessing,
            rollup::unique_actors_are_recorded_once_per_namespace_and_utc_day,
            rollup::a_failed_batch_counts_nothing_and_its_retry_counts_once,
            rollup::two_pools_keep_the_rollups_exact,
            rollup::rebuild_rollups_repairs_tampered_counts_within_its_range,
            rollup::rebuild_rollups_rejects_a_reversed_range,
            queries::daily_counts_pages_walk_every_row_exactly_once_in_order,
            queries::daily_counts_filter_by_event_type_source_and_days,
            queries::summary_totals_events_and_counts_each_actor_once,
            queries::event_types_come_most_frequent_first_ties_by_name,
            queries::raw_events_pages_walk_the_window_once_in_timestamp_then_id_order,
            queries::raw_events_window_includes_from_excludes_to_and_filters_by_type,
            queries::bad_bounds_and_limits_are_errors_naming_the_parameter,
            queries::another_namespace_sees_nothing_of_acme,
            keyword::keyword_search_finds_a_planted_event_in_its_namespace_only,
            keyword::keyword_search_orders_by_rank_then_newest,
            keyword::keyword_search_reads_or_phrases_and_exclusions_like_websearch,
            keyword::keyword_search_never_fails_on_hostile_input,
            keyword::reprocessing_a_keyword_batch_indexes_each_document_once,
            keyword::searches_reject_an_empty_query_and_a_bad_limit,
            vector::similar_search_ranks_the_planted_event_first,
            vector::reprocessing_a_vector_batch_stores_each_embedding_once,
            vector::failing_embedder_retries_the_batch_then_dead_letters_it_writing_nothing,
            vector::embedder_dimension_mismatch_is_an_error_not_a_panic,
            vector::similar_search_skips_vectors_of_another_embedder,
            vector::a_worker_pool_indexes_published_records_for_both_searches,
            deadline::a_keyword_search_past_its_deadline_is_cancelled_and_its_connection_reused,
            deadline::a_similarity_search_past_its_deadline_is_cancelled_and_its_connection_reused,
            retention::maintain_deletes_rows_past_retention_and_keeps_recent_ones,
            retention::register_all_runs_the_whole_pipeline_from_events_received,
        }
    };
}
pub(crate) use pipeline_cases;
