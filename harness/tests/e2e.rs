//! End-to-end runs of the `kgrade` binary on real kernels under QEMU.
//!
//! Ignored by default (they need `cargo xtask setup` and minutes of kernel
//! builds); `cargo xtask test` runs them with `--run-ignored all`.

use kgrade::report::RunResult;
use kgrade::verdict::Verdict;
use std::path::Path;
use std::process::Command;

mod common;

use common::{fixture, TARGET};

/// Runs `kgrade run` and returns its exit code and result.json.
fn kgrade_run(submission: &Path, out: &Path) -> (i32, RunResult) {
    let status = Command::new(env!("CARGO_BIN_EXE_kgrade"))
        .args(["run", "--target", TARGET, "--submission"])
        .arg(submission)
        .arg("--out")
        .arg(out)
        .status()
        .expect("kgrade runs");
    let result = RunResult::read(out).expect("result.json is written");
    (status.code().unwrap_or(-1), result)
}

#[test]
#[ignore = "needs kernel sources and QEMU; run by `cargo xtask test`"]
fn a_patch_that_does_not_apply_is_patch_failed_with_its_hunks() {
    let out = tempfile::tempdir().unwrap();
    let (code, r) = kgrade_run(&fixture("wrong-context.patch"), out.path());
    assert_eq!(code, 1);
    assert_eq!(r.verdict, Verdict::PatchFailed, "{}", r.reason);
    assert!(r.reason.contains("wrong-context.patch"), "{}", r.reason);
    assert!(r.details.contains("FAILED"), "{}", r.details);
    assert!(
        r.details.contains("-// This line is not in any kernel"),
        "rejected hunk kept: {}",
        r.details
    );
    assert!(r.kernel.as_ref().is_some_and(|k| !k.version.is_empty()));
}

#[test]
#[ignore = "needs kernel sources and QEMU; run by `cargo xtask test`"]
fn a_patch_that_escapes_the_tree_is_rejected_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let (code, r) = kgrade_run(&fixture("escapes-tree.patch"), out.path());
    assert_eq!(code, 1);
    assert_eq!(r.verdict, Verdict::Rejected, "{}", r.reason);
    assert!(r.reason.contains(".."), "{}", r.reason);
    assert!(!Path::new("/etc/kgrade-escape").exists());
}

fn reference_with(fixture_name: &str, only: &[&str]) -> RunResult {
    common::reference_with(fixture_name, only).0
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_kernel_that_does_not_build_is_build_failed_with_the_error() {
    let r = reference_with("does-not-build.patch", &[]);
    assert_eq!(r.verdict, Verdict::BuildFailed, "{}", r.reason);
    assert!(r.reason.contains("target_pid"), "{}", r.reason);
    assert!(r.details.contains("tracker.c"), "{}", r.details);
    assert!(r.tests.is_empty());
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_kernel_that_oopses_at_boot_is_boot_failed() {
    let r = reference_with("oops-at-boot.patch", &[]);
    assert_eq!(r.verdict, Verdict::BootFailed, "{}", r.reason);
    assert!(
        r.reason.contains("before the tests started"),
        "{}",
        r.reason
    );
    assert!(
        r.details.contains("tracker_init"),
        "the crash report names the function: {}",
        r.details
    );
    assert!(r
        .tests
        .iter()
        .all(|t| t.outcome == kgrade::verdict::Outcome::NotRun));
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_hanging_syscall_times_out_its_test_and_the_run_goes_on() {
    let r = reference_with(
        "fetch-hangs.patch",
        &[
            "register.duplicate_is_ealready",
            "fetch.fresh_entry_is_zero",
            "deregister.unmonitored_is_esrch",
        ],
    );
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    let outcome = |n: &str| r.tests.iter().find(|t| t.name == n).unwrap().outcome;
    use kgrade::verdict::Outcome;
    assert_eq!(outcome("fetch.fresh_entry_is_zero"), Outcome::Timeout);
    assert_eq!(outcome("register.duplicate_is_ealready"), Outcome::Pass);
    assert_eq!(
        outcome("deregister.unmonitored_is_esrch"),
        Outcome::Pass,
        "the case after the hang still ran"
    );
    assert_eq!(r.tests.len(), 3);
}

/// The COL331 students' exit cleanup, a kprobe on do_exit(), works on a
/// kgrade kernel as it does on the course's: the kernel has KPROBES, so the
/// exit cases pass (on tinyconfig alone register_kprobe() returned -95 and
/// both exit cases failed for a reason that was kgrade's).
#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn an_exit_cleanup_by_kprobe_on_do_exit_passes_the_exit_cases() {
    let cases = [
        "exit.entry_removed_at_exit",
        "exit.reused_pid_starts_fresh",
        "threads.exit_removes_only_its_own_entry",
    ];
    let (r, out) = common::reference_with("exit-by-kprobe.patch", &cases);
    let serial = std::fs::read_to_string(out.path().join("serial.log")).unwrap();
    assert!(
        !serial.contains("register_kprobe failed"),
        "the kprobe was not registered:\n{serial}"
    );
    assert_eq!(r.verdict, Verdict::Pass, "{}: {:?}", r.reason, r.tests);
    assert_eq!(r.tests.len(), cases.len());
}
