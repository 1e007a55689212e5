//! The backend contract: one behavioural suite, written once against [`conveyor::Store`]
//! and the [`conveyor::WorkerPool`], run against every backend.
//!
//! A backend plugs in by implementing [`Backend`] and calling each case from a thin test
//! file (`tests/postgres.rs`). A backend that fails a case has a bug; the case is not
//! weakened for it.
//!
//! # Layout
//! - [`support`]: the [`Backend`] harness, test events and recording handlers.
//! - [`publish`]: single, bulk, idempotency keys, validation.
//! - [`claim`]: leases, due times, exactly-once claiming under contention, fairness.
//! - [`outcomes`]: per-item outcomes, poison payloads, retries, atomicity.
//! - [`lease`]: crash recovery and graceful shutdown.
//! - [`pool`]: exactly-once across pools, fair draining, wake-up latency.
//! - [`priority`]: priority order, fairness with priorities, aging, range checks.
//! - [`admin`]: pause/resume, stats, dead letters, namespaces.
//! - [`subscription`]: several subscribers per event type.
//! - [`lookup`]: events by id and filtered listings, in every state.
//! - [`periodic`]: periodic events, once per tick across pools; missed ticks; bad settings.
//! - [`cancel`]: cancelling by id, by key, from a handler and while running; error history.
//! - [`ordering`]: per-key FIFO under pool kills, retries, key concurrency, racing
//!   publishers, fairness and wake-ups with ordering keys.
//! - [`parking`]: dead heads: parked keys listed, skipped and replayed; the skip policy.
//! - [`counters`]: every count of `stats()` against a `count(*)` oracle through a random
//!   workload with kills, retries, dead letters and operator controls.
//! - [`stats_reads`]: stats reads that keep unchanged queues' probes stay exact by the clock
//!   and through claim-and-snooze cycles.
//! - [`limits`]: the global in-flight limit across pools; bad ordering and limit settings.
//! - [`hooks`]: after-commit exactly once per committed batch; failing hooks never stop a worker.
//! - [`middleware`]: middleware order, error mapping, the metrics middleware's counters.
//! - [`items`]: bounded concurrency inside a batch, each item's outcome kept.
//! - [`activity`]: wait and run percentiles, counts per minute, live worker pools.

pub mod activity;
pub mod admin;
pub mod cancel;
pub mod claim;
pub mod counters;
pub mod hooks;
pub mod items;
pub mod lease;
pub mod limits;
pub mod lookup;
pub mod middleware;
pub mod ordering;
pub mod outcomes;
pub mod parking;
pub mod periodic;
pub mod pool;
pub mod priority;
pub mod publish;
pub mod stats_reads;
pub mod subscription;
pub mod support;

pub use support::Backend;

/// Calls `$m! { module::case, … }` with every case that takes a [`Backend`], so each
/// backend's test file runs the whole list and a new case reaches every backend at once.
///
/// ```text
/// macro_rules! contract { ($($module:ident :: $case:ident),* $(,)?) => { /* one #[test] per case */ } }
/// conveyor_contract::every_case!(contract);
/// ```
#[macro_export]
macro_rules! every_case {
    ($m:ident) => {
        $m! {
            publish::publish_returns_increasing_ids,
            publish::bulk_publish_stores_every_event_in_order,
            publish::duplicate_idempotency_key_is_reported_not_inserted,
            publish::idempotency_keys_outlive_delivery_until_their_window_passes,
            publish::publish_in_commits_with_the_transaction,
            publish::invalid_payload_is_refused_at_publish,
            publish::delayed_event_is_not_due_until_its_delay_passes,
            publish::scheduled_event_is_due_at_its_instant,
            claim::claim_takes_up_to_limit_and_holds_them,
            claim::a_large_claim_returns_what_a_small_one_does,
            claim::routing_key_selects_its_events_only,
            claim::completion_by_another_worker_is_refused,
            claim::completion_can_delete_delivered_events,
            claim::concurrent_claimers_claim_each_event_exactly_once,
            claim::claim_round_robins_across_fairness_groups,
            claim::fairness_cursor_rotates_through_many_groups,
            outcomes::snoozed_events_come_back_without_using_an_attempt,
            outcomes::a_handler_past_its_timeout_is_retried_then_dead,
            outcomes::a_zero_timeout_is_a_build_error,
            outcomes::per_item_outcomes_in_one_batch_land_as_stated,
            outcomes::poison_payload_is_dead_lettered_on_first_sight,
            outcomes::retries_back_off_then_dead_letter_after_max_retries,
            outcomes::failed_handler_leaves_no_writes_and_no_emitted_events,
            outcomes::successful_handler_commits_writes_and_emitted_events_once,
            outcomes::run_batch_reports_outcomes_and_emits_only_for_delivered_items,
            lease::events_of_a_killed_worker_are_reclaimed_after_the_lease,
            lease::graceful_shutdown_finishes_in_flight_and_leaves_nothing_claimed,
            lease::shutdown_timeout_releases_running_batches,
            pool::pools_drain_20000_events_exactly_once,
            pool::small_group_is_not_starved_by_a_large_backlog,
            pool::idle_pool_is_woken_by_a_publish,
            pool::conflicting_registration_is_a_build_error,
            pool::handler_options_override_the_handler_constants,
            admin::pause_stops_claiming_and_resume_restarts_it,
            admin::dead_letters_list_replay_and_purge,
            admin::delivered_events_are_pruned_after_retention,
            admin::namespaces_are_isolated,
            subscription::every_subscription_gets_every_event,
            subscription::a_recorded_subscription_gets_copies_while_its_process_is_down,
            subscription::a_failing_subscription_leaves_the_others_alone,
            subscription::two_handlers_on_one_subscription_are_a_build_error,
            subscription::unsubscribe_removes_a_subscription_and_its_pending_copies,
            lookup::events_are_looked_up_by_id_in_every_status,
            lookup::events_are_listed_by_queue_status_and_time_with_a_cursor,
            periodic::three_pools_publish_each_tick_exactly_once,
            periodic::a_tick_is_published_once_and_never_behind_the_last,
            periodic::a_missed_tick_is_caught_up_once_at_start,
            periodic::bad_periodic_settings_are_build_errors,
            cancel::pending_scheduled_and_retrying_events_are_cancelled_by_id,
            cancel::cancel_by_key_cancels_the_event_holding_the_key,
            cancel::a_running_event_is_cancelled_unless_its_batch_delivers_it,
            cancel::a_held_event_with_a_cancel_request_is_cancelled_when_reaped_or_released,
            cancel::a_handler_cancels_an_item_with_ctx_cancel,
            cancel::cancelled_events_are_pruned_after_the_retention,
            cancel::the_error_history_keeps_the_last_five_failures,
            cancel::a_reaped_attempt_is_recorded_as_lease_expired,
            ordering::keys_run_in_order_one_at_a_time_across_pools_with_kills,
            ordering::a_retry_keeps_its_place_and_blocks_only_its_key,
            parking::a_dead_head_parks_its_key_until_skipped_or_replayed,
            parking::a_dead_head_under_skip_moves_on,
            ordering::key_concurrency_lets_n_of_a_key_run_at_once,
            limits::the_global_limit_is_never_exceeded_across_pools,
            limits::freeing_a_slot_wakes_the_limited_queue,
            ordering::fairness_and_wakeups_hold_with_ordering_keys,
            limits::bad_ordering_settings_are_refused,
            ordering::racing_publishers_of_the_same_keys_do_not_deadlock,
            priority::priorities_apply_among_ordering_key_heads,
            priority::higher_priority_is_claimed_first,
            priority::equal_priority_keeps_due_time_order,
            priority::fairness_groups_round_robin_with_priorities,
            priority::aged_events_are_claimed_before_fresh_high_priority,
            priority::handler_options_set_the_priority_aging,
            priority::priority_out_of_range_is_refused_at_publish,
            priority::delayed_high_priority_events_wait_until_due,
            hooks::after_commit_fires_once_per_committed_batch_even_when_a_commit_fails,
            hooks::a_panicking_or_stalled_hook_never_stops_a_worker,
            hooks::a_lost_lease_is_reported_and_rolls_the_batch_back,
            middleware::middleware_runs_in_order_and_maps_errors_into_outcomes,
            middleware::metrics_middleware_counts_events_by_queue_and_outcome,
            items::item_concurrency_is_bounded_and_keeps_each_items_outcome,
            activity::activity_reports_wait_run_and_completed_per_minute,
            activity::failed_attempts_are_counted_per_minute,
            activity::live_workers_count_pools_until_they_stop_or_go_stale,
            activity::a_zero_heartbeat_interval_is_a_build_error,
            counters::counters_match_the_rows_through_a_random_workload,
            counters::counters_stay_exact_while_compaction_runs,
            counters::a_completion_across_queues_counts_each_queue,
            counters::a_deleting_completion_counts_the_events_it_unblocks,
            stats_reads::stats_follow_the_clock_and_every_change,
        }
    };
}
