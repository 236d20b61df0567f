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
        $run!(scheduled_calls_are_claimed_once_due);
    };
}
