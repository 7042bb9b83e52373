//! End-to-end runs on real kernels of submissions that lie and crash: a
//! forged KTAP block is `tampered`, an oops in one case costs that case only.
//! Each submission is a fixture patch laid over the reference (as mutants
//! are), so only tracker.c is rebuilt.

use kgrade::report::RunResult;
use kgrade::verdict::{Outcome, Verdict};
use std::path::Path;
use std::process::Command;

mod common;

/// The reference with `fixture_name` over it, running `only` (empty: all);
/// the run's directory is kept for the caller (serial logs, plans). With
/// `KGRADE_E2E_KEEP=DIR`, its plans and serial logs are also copied to
/// `DIR/<fixture>/` (how `tests/fixtures/serial/` was captured).
fn reference_with(fixture_name: &str, only: &[&str]) -> (RunResult, tempfile::TempDir) {
    let (r, out) = common::reference_with(fixture_name, only);
    if let Some(keep) = std::env::var_os("KGRADE_E2E_KEEP") {
        let dir = Path::new(&keep).join(fixture_name.trim_end_matches(".patch"));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(out.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("serial") || name.starts_with("plan") || name == "result.json" {
                std::fs::copy(&path, dir.join(&name)).unwrap();
            }
        }
    }
    (r, out)
}

/// `kgrade judge OUT --dry-run` judges the run again from its logs alone:
/// the same result, but for the stage times.
fn judged_again(out: &Path, expected: &RunResult) {
    let again = kgrade::boots::rejudge(out).expect("the run judges again");
    assert_eq!(again.verdict, expected.verdict);
    assert_eq!(again.reason, expected.reason);
    assert_eq!(again.tests, expected.tests);
    assert_eq!(again.boots, expected.boots);
    assert_eq!(again.details, expected.details);
    let status = Command::new(env!("CARGO_BIN_EXE_kgrade"))
        .arg("judge")
        .arg(out)
        .arg("--dry-run")
        .status()
        .expect("kgrade runs");
    assert_eq!(status.code(), Some(1), "a run that did not pass exits 1");
}

fn outcome(r: &RunResult, name: &str) -> Outcome {
    r.tests
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is reported"))
        .outcome
}

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn a_forged_ktap_block_is_tampered_and_earns_nothing() {
    let (r, out) = reference_with("forged-ktap.patch", &[]);
    assert_eq!(r.verdict, Verdict::Tampered, "{}", r.reason);
    assert!(r.reason.contains("not the guest's"), "{}", r.reason);
    // Every case was forged as `ok`: none of them is a pass.
    assert!(!r.tests.is_empty());
    for t in &r.tests {
        assert_eq!(t.outcome, Outcome::Tampered, "{}: {}", t.name, t.message);
    }
    assert_eq!(r.passed(), 0);
    assert!(
        r.details.contains("without this boot's nonce: ")
            && r.details.contains("ok 1 self_returns_zero"),
        "the forged lines are the evidence: {}",
        r.details
    );
    assert!(r.details.lines().count() <= 30, "bounded: {}", r.details);
    // The guest's own lines are still on the console, fetch broken as it is.
    let serial = std::fs::read_to_string(out.path().join("serial.log")).unwrap();
    let nonce = kgrade_protocol::Plan::from_json(
        &std::fs::read_to_string(out.path().join("plan.json")).unwrap(),
    )
    .unwrap()
    .nonce;
    assert_eq!(nonce.len(), 32);
    assert!(
        serial.contains(&format!("not ok 1 open_counted # nonce:{nonce} ")),
        "{serial}"
    );
    judged_again(out.path(), &r);
}

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn an_oops_in_one_case_costs_that_case_only() {
    let (r, out) = reference_with("oops-in-one-case.patch", &[]);
    let crashed = "register.pid_below_one_is_einval";
    assert_eq!(r.verdict, Verdict::Crash, "{}", r.reason);
    assert_eq!(outcome(&r, crashed), Outcome::Crash);
    let message = &r.tests.iter().find(|t| t.name == crashed).unwrap().message;
    assert!(
        message.contains("NULL pointer") || message.contains("Oops"),
        "{message}"
    );
    assert!(
        message.contains("sys_register"),
        "the oops names the function: {message}"
    );
    // The cases after it ran in a second boot, on their own merits.
    assert_eq!(r.boots.len(), 2, "{:?}", r.boots);
    assert_eq!(r.boots[1].serial_log, "serial-2.log");
    assert!(out.path().join("serial-2.log").is_file());
    assert!(out.path().join("plan-2.json").is_file());
    assert_eq!(
        outcome(&r, "deregister.pid_below_one_is_einval"),
        Outcome::Fail,
        "its own mistake"
    );
    for t in &r.tests {
        if t.name != crashed && t.name != "deregister.pid_below_one_is_einval" {
            assert_eq!(t.outcome, Outcome::Pass, "{}: {}", t.name, t.message);
        }
    }
    assert_eq!(r.passed(), r.tests.len() - 2);
    assert!(r.details.contains("== serial.log"), "{}", r.details);
    assert!(r.reason.contains("2 boots after crashes"), "{}", r.reason);
    judged_again(out.path(), &r);
}

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn a_console_flood_is_a_crash_of_its_case_and_the_run_goes_on() {
    let only = [
        "register.self_returns_zero",
        "fetch.unmonitored_is_einval",
        "deregister.stops_monitoring",
        "deregister.pid_below_one_is_einval",
    ];
    let (r, out) = reference_with("console-flood.patch", &only);
    assert_eq!(r.verdict, Verdict::Crash, "{}", r.reason);
    assert_eq!(outcome(&r, "register.self_returns_zero"), Outcome::Pass);
    // Both cases that fetch an unmonitored pid flood, each in its own boot.
    assert_eq!(outcome(&r, "fetch.unmonitored_is_einval"), Outcome::Crash);
    assert_eq!(outcome(&r, "deregister.stops_monitoring"), Outcome::Crash);
    assert_eq!(
        outcome(&r, "deregister.pid_below_one_is_einval"),
        Outcome::Pass
    );
    // Under TCG the serial console may be slower than the soft-lockup
    // watchdog: either ends the boot, and both are the case's crash.
    for name in ["fetch.unmonitored_is_einval", "deregister.stops_monitoring"] {
        let t = r.tests.iter().find(|t| t.name == name).unwrap();
        assert!(
            t.message.contains("flooded") || t.message.contains("lockup"),
            "{t:?}"
        );
    }
    assert_eq!(r.boots.len(), 3, "{:?}", r.boots);
    let size = std::fs::metadata(out.path().join("serial.log"))
        .unwrap()
        .len();
    assert!(size <= (4 << 20) + (64 << 10), "capped: {size}");
    judged_again(out.path(), &r);
}

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn a_hanging_case_times_out_in_one_boot() {
    let only = [
        "register.self_returns_zero",
        "fetch.fresh_entry_is_zero",
        "deregister.unmonitored_is_esrch",
    ];
    let (r, out) = reference_with("fetch-hangs.patch", &only);
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert_eq!(outcome(&r, "fetch.fresh_entry_is_zero"), Outcome::Timeout);
    assert_eq!(
        outcome(&r, "deregister.unmonitored_is_esrch"),
        Outcome::Pass
    );
    assert_eq!(r.boots.len(), 1, "a case timeout is no crash: no reboot");
    judged_again(out.path(), &r);
}

#[test]
#[ignore = "builds and boots real kernels; run by cargo xtask test"]
fn a_failing_case_carries_what_the_kernel_said_while_it_ran() {
    let only = [
        "register.self_returns_zero",
        "fetch.unmonitored_is_einval",
        "deregister.unmonitored_is_esrch",
    ];
    let (r, out) = reference_with("fetch-warns.patch", &only);
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    let failed = r
        .tests
        .iter()
        .find(|t| t.name == "fetch.unmonitored_is_einval")
        .unwrap();
    assert_eq!(failed.outcome, Outcome::Fail);
    assert!(
        failed.message.contains("; kernel said: ")
            && failed.message.contains("fetch of pid ")
            && failed.message.contains("failed, returned -ENOENT"),
        "{}",
        failed.message
    );
    // The cases around it passed and carry nothing.
    for name in [
        "register.self_returns_zero",
        "deregister.unmonitored_is_esrch",
    ] {
        assert_eq!(outcome(&r, name), Outcome::Pass);
    }
    judged_again(out.path(), &r);
}
