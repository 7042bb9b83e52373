//! Every test case kgrade knows, by assignment and suite.
//!
//! The host uses this list to name the cases a crashed guest never reached and
//! to validate rubrics; the guest must implement exactly these cases (a unit
//! test in `guest-tests` checks it).

/// One test case: `suite.name`, run in its own child process in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub assignment: &'static str,
    pub suite: &'static str,
    pub name: &'static str,
    /// Student syscalls the case calls; if one is missing the case fails.
    pub needs: &'static [&'static str],
}

impl Case {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.suite, self.name)
    }
}

const fn case(
    assignment: &'static str,
    suite: &'static str,
    name: &'static str,
    needs: &'static [&'static str],
) -> Case {
    Case {
        assignment,
        suite,
        name,
        needs,
    }
}

const REG: &[&str] = &["register"];
const REG_FETCH: &[&str] = &["register", "fetch"];
const REG_FETCH_DEREG: &[&str] = &["register", "fetch", "deregister"];
const REG_DEREG: &[&str] = &["register", "deregister"];
const REG_CAP: &[&str] = &["register", "resource_cap"];
const REG_CAP_RESET: &[&str] = &["register", "resource_cap", "resource_reset"];
const REG_CAP_DEREG: &[&str] = &["register", "resource_cap", "deregister"];
const RESET: &[&str] = &["register", "resource_reset"];
const T: &str = "tracker";
const SET: &[&str] = &["pf_set_param"];
const GET: &[&str] = &["pf_get_info"];
const SET_GET: &[&str] = &["pf_set_param", "pf_get_info"];
const SET_CLEAN: &[&str] = &["pf_set_param", "pf_cleanup"];
const PF_ALL: &[&str] = &["pf_set_param", "pf_get_info", "pf_cleanup"];
const P: &str = "pfstat";
const MEMUSE: &[&str] = &["memuse"];
const M: &str = "memuse";

/// The whole catalogue, in the order the guest runs it.
pub const CATALOGUE: &[Case] = &[
    // register
    case(T, "register", "self_returns_zero", REG),
    case(T, "register", "other_process", REG),
    case(T, "register", "pid_below_one_is_einval", REG),
    case(T, "register", "missing_process_is_esrch", REG),
    case(T, "register", "duplicate_is_ealready", REG),
    case(T, "register", "zombie_is_esrch", REG),
    case(T, "register", "forked_child_is_not_monitored", REG_FETCH),
    // fetch
    case(T, "fetch", "fresh_entry_is_zero", REG_FETCH),
    case(T, "fetch", "unmonitored_is_einval", REG_FETCH),
    case(T, "fetch", "bad_pointer_is_einval", REG_FETCH),
    case(T, "fetch", "writes_only_its_struct", REG_FETCH),
    // deregister
    case(T, "deregister", "stops_monitoring", REG_FETCH_DEREG),
    case(T, "deregister", "pid_below_one_is_einval", REG_DEREG),
    case(T, "deregister", "unmonitored_is_esrch", REG_DEREG),
    case(T, "deregister", "clears_the_quotas", REG_CAP_DEREG),
    // resource_cap
    case(T, "resource_cap", "sets_quotas", REG_CAP),
    case(T, "resource_cap", "missing_process_is_esrch", REG_CAP),
    case(T, "resource_cap", "unmonitored_is_einval", REG_CAP),
    case(T, "resource_cap", "second_cap_is_ealready", REG_CAP),
    // resource_reset
    case(T, "resource_reset", "missing_process_is_esrch", RESET),
    case(T, "resource_reset", "unmonitored_is_einval", RESET),
    case(T, "resource_reset", "allows_a_new_cap", REG_CAP_RESET),
    case(T, "resource_reset", "lifts_the_heap_cap", REG_CAP_RESET),
    case(T, "resource_reset", "lifts_the_file_cap", REG_CAP_RESET),
    // heap accounting
    case(T, "heap", "brk_growth_counted", REG_FETCH),
    case(T, "heap", "brk_shrink", REG_FETCH),
    case(T, "heap", "private_anon_mmap_counted", REG_FETCH),
    case(T, "heap", "file_mmap_not_counted", REG_FETCH),
    case(T, "heap", "shared_anon_mmap_not_counted", REG_FETCH),
    case(T, "heap", "usage_before_register_not_counted", REG_FETCH),
    case(T, "heap", "mmap_length_rounded_to_pages", REG_FETCH),
    // file accounting
    case(T, "files", "open_counted", REG_FETCH),
    case(T, "files", "openat_counted", REG_FETCH),
    case(T, "files", "openat2_counted", REG_FETCH),
    case(T, "files", "failed_open_not_counted", REG_FETCH),
    case(T, "files", "close", REG_FETCH),
    case(T, "files", "close_of_fd_from_before_register", REG_FETCH),
    // quotas
    case(T, "quota", "heap_over_quota_killed", REG_CAP),
    case(T, "quota", "heap_at_quota_survives", REG_CAP),
    case(T, "quota", "files_over_quota_killed", REG_CAP),
    case(T, "quota", "files_at_quota_survives", REG_CAP),
    case(T, "quota", "cap_below_usage", REG_CAP),
    case(T, "quota", "heap_over_quota_via_mmap_killed", REG_CAP),
    case(
        T,
        "quota",
        "files_over_quota_via_openat_and_openat2_killed",
        REG_CAP,
    ),
    case(T, "quota", "cap_below_usage_kills_the_target", REG_CAP),
    case(T, "quota", "cap_on_another_process_enforced", REG_CAP),
    // process exit
    case(T, "exit", "entry_removed_at_exit", REG_FETCH),
    case(T, "exit", "reused_pid_starts_fresh", REG_FETCH),
    // extras
    case(T, "proc", "tracker_status_lists_pid", REG),
    case(
        T,
        "threads",
        "concurrent_register_deregister",
        REG_FETCH_DEREG,
    ),
    case(T, "threads", "per_task_accounting", REG_FETCH),
    case(T, "threads", "exit_removes_only_its_own_entry", REG_FETCH),
    // pfstat: pf_set_param
    case(P, "set_param", "tracks_a_process", SET_GET),
    case(P, "set_param", "zero_length_is_einval", SET),
    case(P, "set_param", "oversized_length_is_einval", SET),
    case(P, "set_param", "bad_pointer_is_efault", SET),
    case(P, "set_param", "again_resets_the_counts", SET_GET),
    case(P, "set_param", "prefix_is_not_a_match", SET_GET),
    // pf_get_info
    case(P, "get_info", "fills_the_struct", SET_GET),
    case(P, "get_info", "untracked_name_is_einval", SET_GET),
    case(P, "get_info", "zero_length_is_einval", GET),
    case(P, "get_info", "oversized_length_is_einval", GET),
    case(P, "get_info", "bad_name_pointer_is_efault", GET),
    case(P, "get_info", "bad_stat_pointer_is_efault", SET_GET),
    case(P, "get_info", "writes_only_its_struct", SET_GET),
    case(P, "get_info", "same_name_counts_per_process", SET_GET),
    case(P, "get_info", "exited_process_is_an_error", SET_GET),
    // pf_cleanup
    case(P, "cleanup", "returns_zero", SET_CLEAN),
    case(P, "cleanup", "forgets_the_name", PF_ALL),
    case(P, "cleanup", "counts_start_over", PF_ALL),
    // copy-on-write counts, per VMA
    case(P, "cow", "child_writes_counted", SET_GET),
    case(P, "cow", "parent_writes_counted", SET_GET),
    case(P, "cow", "second_write_not_counted", SET_GET),
    case(P, "cow", "reads_not_counted", SET_GET),
    case(P, "cow", "fresh_pages_not_counted", SET_GET),
    case(P, "cow", "sole_owner_write_not_counted", SET_GET),
    case(P, "cow", "each_vma_counts_its_own", SET_GET),
    case(P, "cow", "writes_before_set_param_not_counted", SET_GET),
    case(P, "cow", "total_is_the_sum", SET_GET),
    case(P, "cow", "tracked_process_forks", SET_GET),
    case(P, "cow", "untracked_writes_not_counted", SET_GET),
    // the VMA list
    case(P, "vmas", "match_proc_maps", SET_GET),
    case(P, "vmas", "more_than_128", SET_GET),
    // memuse
    case(M, "heap", "touched_pages_counted", MEMUSE),
    case(M, "heap", "untouched_growth_at_most_one_page", MEMUSE),
    case(M, "heap", "shrink_releases_pages", MEMUSE),
    case(M, "heap", "split_heap_counted_in_full", MEMUSE),
    case(M, "heap", "mapping_at_the_break_is_not_heap", MEMUSE),
    case(M, "heap", "mmap_is_not_heap", MEMUSE),
    case(M, "heap", "no_heap_is_zero", MEMUSE),
    case(M, "stack", "recursion_grows", MEMUSE),
    case(M, "stack", "heap_growth_is_not_stack", MEMUSE),
    case(M, "kernel", "heap_and_stack_growth_not_counted", MEMUSE),
    case(M, "kernel", "mapping_above_stack_counted", MEMUSE),
    case(M, "other", "child_figure_is_its_own", MEMUSE),
    case(M, "errors", "invalid_kind", MEMUSE),
    case(M, "errors", "missing_pid", MEMUSE),
    case(M, "errors", "negative_pid", MEMUSE),
    case(M, "errors", "zombie_is_an_error", MEMUSE),
    case(M, "errors", "kernel_thread_is_an_error", MEMUSE),
    case(M, "errors", "pid_zero_is_an_error", MEMUSE),
];

/// The cases of one assignment, in run order.
pub fn cases_for(assignment: &str) -> impl Iterator<Item = &'static Case> + '_ {
    CATALOGUE.iter().filter(move |c| c.assignment == assignment)
}

/// The suites of one assignment, in run order, without repeats.
pub fn suites_for(assignment: &str) -> Vec<&'static str> {
    let mut suites: Vec<&'static str> = Vec::new();
    for c in cases_for(assignment) {
        if !suites.contains(&c.suite) {
            suites.push(c.suite);
        }
    }
    suites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = CATALOGUE
            .iter()
            .map(|c| format!("{}/{}", c.assignment, c.full_name()))
            .collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn suites_are_contiguous() {
        // The guest prints one KTAP subtest block per suite: a suite split in
        // two would print two blocks with the same name.
        for a in ["tracker", "pfstat", "memuse"] {
            let order: Vec<&str> = cases_for(a).map(|c| c.suite).collect();
            for s in suites_for(a) {
                let first = order.iter().position(|x| *x == s).unwrap();
                let last = order.iter().rposition(|x| *x == s).unwrap();
                assert!(order[first..=last].iter().all(|x| *x == s), "{s}");
            }
        }
    }

    #[test]
    fn tracker_has_enough_cases() {
        assert!(cases_for("tracker").count() >= 25);
    }

    #[test]
    fn pfstat_cases_need_only_pfstat_syscalls() {
        assert!(cases_for("pfstat").count() >= 20);
        for c in cases_for("pfstat") {
            assert!(!c.needs.is_empty(), "{}", c.full_name());
            assert!(
                c.needs.iter().all(|n| n.starts_with("pf_")),
                "{}",
                c.full_name()
            );
        }
    }

    #[test]
    fn memuse_covers_every_kind_and_the_errors() {
        let suites = suites_for("memuse");
        assert_eq!(suites, ["heap", "stack", "kernel", "other", "errors"]);
        assert!(cases_for("memuse").all(|c| c.needs == ["memuse"]));
    }
}
