//! The cases of the store conformance suite (`retry_runtime::durable::conformance`), listed
//! once, so that every backend's test file runs every case: `every_conformance_case!(m)`
//! calls the file's own macro `m!(case)` for each.

macro_rules! every_conformance_case {
    ($run:ident) => {
        $run!(lifecycle_success);
        $run!(lifecycle_retry_then_dead);
        $run!(bury_undecodable_keeps_attempts);
        $run!(cancel_from_each_state);
        $run!(cancel_finished_is_refused);
        $run!(lease_expiry_and_reclaim);
        $run!(renew_extends_lease);
        $run!(release_on_shutdown);
        $run!(requeue_one);
        $run!(requeue_all_dead);
        $run!(purge_by_state_and_age);
        $run!(stats_counts);
        $run!(list_filters);
        $run!(only_registered_functions_claimed);
        $run!(claim_batch_limit);
        $run!(next_due);
        $run!(duplicate_cid_is_an_error);
        $run!(enqueue_tried_waits_with_its_progress);
        $run!(lost_names_the_calls_no_longer_held);
        $run!(overdue_counts_due_calls);
        $run!(paused_functions_are_not_claimed);
        $run!(pause_is_per_function);
        $run!(workers_heartbeats_and_gone);
        $run!(trace_context_is_kept);
        $run!(result_kept_with_success_and_purged);
        $run!(wait_on_finished_calls_returns_at_once);
        $run!(wait_is_woken_by_each_outcome);
        $run!(attempts_are_recorded_with_each_outcome);
        $run!(stale_fence_writes_no_attempt);
        $run!(attempts_are_bounded);
        $run!(purge_deletes_attempts);
        $run!(audit_records_newest_first_in_pages);
        $run!(the_callers_attempt_starts_the_history);
        $run!(limited_function_claims_only_its_room);
        $run!(operator_limit_wins_over_declared);
        $run!(unique_key_returns_the_unfinished_call);
        $run!(unique_key_is_freed_when_the_call_finishes);
        $run!(unique_key_kept_for_a_time_after_success);
        $run!(scheduled_calls_are_claimed_once_due);
    };
}
