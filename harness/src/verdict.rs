//! Turning a boot's console into per-test outcomes and a run verdict.

use crate::console::Console;
use crate::ktap;
use crate::qemu::Ended;
use kgrade_protocol::Case;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The kernel crashed while this case ran.
    Crash,
    /// The case ran past its time limit (or the whole boot did, during it).
    Timeout,
    /// Never reached: an earlier crash or timeout ended the run.
    NotRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The submission was refused before anything ran (unsafe paths).
    Rejected,
    PatchFailed,
    BuildFailed,
    BootFailed,
    Crash,
    Timeout,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Rejected => "rejected",
            Verdict::PatchFailed => "patch-failed",
            Verdict::BuildFailed => "build-failed",
            Verdict::BootFailed => "boot-failed",
            Verdict::Crash => "crash",
            Verdict::Timeout => "timeout",
        }
    }
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
            Outcome::NotRun => "not-run",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// `suite.case`
    pub name: String,
    pub outcome: Outcome,
    /// Why it did not pass (empty on a pass).
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    pub tests: Vec<TestResult>,
}

/// Judges one boot. `cases` are the selected catalogue cases in run order.
pub fn judge(cases: &[&Case], console: &Console, ended: Ended, timeout_s: u64) -> Judgement {
    let stream = console.ktap.as_deref().map(ktap::parse).unwrap_or_default();
    let mut tests = Vec::new();
    let mut interrupted = false;
    for case in cases {
        let found = stream
            .cases
            .iter()
            .find(|c| c.suite == case.suite && c.name == case.name);
        let (outcome, message) = match found {
            Some(c) if c.ok => (Outcome::Pass, String::new()),
            Some(c) => {
                let reason = c.reason.clone().unwrap_or_else(|| "failed".into());
                let mut message = reason.clone();
                if !c.diagnostics.is_empty() {
                    message = format!("{reason} [{}]", c.diagnostics.join("; "));
                }
                if reason.starts_with("TIMEOUT") {
                    (Outcome::Timeout, message)
                } else {
                    (Outcome::Fail, message)
                }
            }
            None if interrupted => (Outcome::NotRun, "not reached: the run ended earlier".into()),
            None => {
                interrupted = true;
                match (&console.failure, ended) {
                    (Some(f), _) if !f.before_guest => (
                        Outcome::Crash,
                        format!("kernel {} while this test ran: {}", f.kind, f.line),
                    ),
                    (_, Ended::TimedOut) if console.ktap.is_some() => (
                        Outcome::Timeout,
                        format!("the boot hit its {timeout_s} s limit while this test ran"),
                    ),
                    (_, Ended::Flooded) if console.ktap.is_some() => (
                        Outcome::Crash,
                        "the console flooded while this test ran".into(),
                    ),
                    _ => (Outcome::NotRun, "the guest never reported it".into()),
                }
            }
        };
        tests.push(TestResult {
            name: case.full_name(),
            outcome,
            message,
        });
    }
    let (verdict, reason) = run_verdict(console, ended, &tests, timeout_s);
    Judgement {
        verdict,
        reason,
        tests,
    }
}

fn run_verdict(
    console: &Console,
    ended: Ended,
    tests: &[TestResult],
    timeout_s: u64,
) -> (Verdict, String) {
    if console.ktap.is_none() {
        let why = match (&console.failure, ended) {
            (Some(f), _) => format!("kernel {} before the tests started: {}", f.kind, f.line),
            (None, Ended::TimedOut) => format!("the guest printed nothing within {timeout_s} s"),
            (None, Ended::Flooded) => "the console flooded before the tests started".into(),
            (None, Ended::Exited) => "QEMU exited before the tests started".into(),
        };
        return (Verdict::BootFailed, why);
    }
    if let Some(f) = console.failure.as_ref().filter(|f| !f.before_guest) {
        return (Verdict::Crash, format!("kernel {}: {}", f.kind, f.line));
    }
    match ended {
        Ended::Flooded => return (Verdict::Crash, "the console passed its size cap".into()),
        Ended::TimedOut if !console.finished => {
            return (
                Verdict::Timeout,
                format!("the run hit its {timeout_s} s limit"),
            )
        }
        _ => {}
    }
    let passed = tests.iter().filter(|t| t.outcome == Outcome::Pass).count();
    if passed == tests.len() && console.finished {
        (
            Verdict::Pass,
            format!("{passed}/{} tests passed", tests.len()),
        )
    } else {
        (
            Verdict::Fail,
            format!("{passed}/{} tests passed", tests.len()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::analyse;
    use kgrade_protocol::{BEGIN_MARKER, END_MARKER};

    const A: Case = Case {
        assignment: "t",
        suite: "s",
        name: "a",
        needs: &[],
    };
    const B: Case = Case {
        assignment: "t",
        suite: "s",
        name: "b",
        needs: &[],
    };
    const C: Case = Case {
        assignment: "t",
        suite: "s",
        name: "c",
        needs: &[],
    };

    fn block(lines: &str) -> String {
        format!("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..3\n{lines}")
    }

    #[test]
    fn all_pass() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    ok 2 b\n    ok 3 c\nok 1 s")
        );
        let j = judge(&[&A, &B, &C], &analyse(&text), Ended::Exited, 60);
        assert_eq!(j.verdict, Verdict::Pass);
        assert!(j.tests.iter().all(|t| t.outcome == Outcome::Pass));
    }

    #[test]
    fn failure_and_case_timeout_keep_their_messages() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    not ok 2 b # expected 0, got -22\n    not ok 3 c # TIMEOUT after 5000 ms\nnot ok 1 s")
        );
        let j = judge(&[&A, &B, &C], &analyse(&text), Ended::Exited, 60);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.tests[1].outcome, Outcome::Fail);
        assert_eq!(j.tests[1].message, "expected 0, got -22");
        assert_eq!(j.tests[2].outcome, Outcome::Timeout);
    }

    #[test]
    fn crash_is_pinned_on_the_running_case() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n[ 2.0] Oops: 0000 [#1]\n[ 2.0] Kernel panic - not syncing: Fatal exception\n",
            block("    ok 1 a")
        );
        let j = judge(&[&A, &B, &C], &analyse(&text), Ended::Exited, 60);
        assert_eq!(j.verdict, Verdict::Crash);
        assert_eq!(j.tests[0].outcome, Outcome::Pass);
        assert_eq!(j.tests[1].outcome, Outcome::Crash);
        assert!(
            j.tests[1].message.contains("oops"),
            "{}",
            j.tests[1].message
        );
        assert_eq!(j.tests[2].outcome, Outcome::NotRun);
    }

    #[test]
    fn whole_boot_timeout_during_tests() {
        let text = format!("{BEGIN_MARKER}\n{}\n", block("    ok 1 a"));
        let j = judge(&[&A, &B, &C], &analyse(&text), Ended::TimedOut, 60);
        assert_eq!(j.verdict, Verdict::Timeout);
        assert_eq!(j.tests[1].outcome, Outcome::Timeout);
        assert_eq!(j.tests[2].outcome, Outcome::NotRun);
    }

    #[test]
    fn boot_failures() {
        let j = judge(
            &[&A],
            &analyse("[ 0.1] Kernel panic - not syncing: boom\n"),
            Ended::Exited,
            60,
        );
        assert_eq!(j.verdict, Verdict::BootFailed);
        assert!(j.reason.contains("boom"));
        assert_eq!(j.tests[0].outcome, Outcome::NotRun);
        let j = judge(&[&A], &analyse("SeaBIOS\n"), Ended::TimedOut, 60);
        assert_eq!(j.verdict, Verdict::BootFailed);
        assert!(j.reason.contains("nothing within 60 s"));
    }

    #[test]
    fn a_missing_case_line_is_not_a_pass() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    ok 3 c")
        );
        let j = judge(&[&A, &B, &C], &analyse(&text), Ended::Exited, 60);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.tests[1].outcome, Outcome::NotRun);
    }
}
