//! End-to-end runs of the `kgrade` binary on real kernels under QEMU.
//!
//! Ignored by default (they need `cargo xtask setup` and minutes of kernel
//! builds); `cargo xtask test` runs them with `--run-ignored all`.

use kgrade::report::RunResult;
use kgrade::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "tracker/6.1/x86_64";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

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
