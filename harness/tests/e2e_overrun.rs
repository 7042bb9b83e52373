//! End-to-end: a submission whose fetch copies a 40-byte kernel struct over
//! the 24-byte `struct per_proc_resource` fails exactly the overrun case,
//! with the byte count, and every other case is graded on its own figures.
//!
//! Ignored by default; `cargo xtask test` runs it with `--run-ignored all`.

use kgrade::verdict::{Outcome, Verdict};
mod common;

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn a_fetch_that_overruns_its_struct_fails_only_the_overrun_case() {
    let (r, _out) = common::reference_with("fetch-overruns.patch", &[]);
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    let failed: Vec<&str> = r
        .tests
        .iter()
        .filter(|t| t.outcome != Outcome::Pass)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(failed, ["fetch.writes_only_its_struct"], "{:#?}", r.tests);
    let overrun = r
        .tests
        .iter()
        .find(|t| t.name == "fetch.writes_only_its_struct")
        .unwrap();
    assert!(
        overrun
            .message
            .contains("wrote 16 bytes past the end of struct per_proc_resource (24 bytes)"),
        "{}",
        overrun.message
    );
    // The heap and file cases fetch too: they ran and judged their figures.
    for case in [
        "heap.brk_growth_counted",
        "files.open_counted",
        "files.close",
    ] {
        let t = r.tests.iter().find(|t| t.name == case).unwrap();
        assert_eq!(t.outcome, Outcome::Pass, "{case}: {}", t.message);
    }
}
