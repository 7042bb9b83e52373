//! Turning a boot's console into per-test outcomes and a run verdict.

use crate::console::Console;
use crate::ktap;
use crate::qemu::Ended;
use kgrade_protocol::Case;
use serde::{Deserialize, Serialize};

/// How one guest test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed (the message says how).
    Fail,
    /// The kernel crashed while this case ran.
    Crash,
    /// The case ran past its time limit (or the whole boot did, during it).
    Timeout,
    /// Never reached: an earlier crash or timeout ended the run.
    NotRun,
    /// A result line for this case that the guest did not print (no nonce,
    /// reported twice, out of order): whatever it said, not a pass.
    Tampered,
}

/// What a run came to, in result.json and every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every test passed.
    Pass,
    /// Some test did not pass.
    Fail,
    /// The submission was refused before anything ran (unsafe paths).
    Rejected,
    /// A patch of the submission does not apply (or it could not be read).
    PatchFailed,
    /// The kernel did not configure or build.
    BuildFailed,
    /// The kernel did not get as far as the tests.
    BootFailed,
    /// The kernel crashed while the tests ran.
    Crash,
    /// The run hit its time limit.
    Timeout,
    /// The console carries results the guest did not print (see `ktap`).
    Tampered,
}

impl Verdict {
    /// As result.json spells it: `pass`, `build-failed`, ...
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
            Verdict::Tampered => "tampered",
        }
    }
}

impl Outcome {
    /// As result.json spells it: `pass`, `not-run`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
            Outcome::NotRun => "not-run",
            Outcome::Tampered => "tampered",
        }
    }
}

/// One guest test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// `suite.case`
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it did not pass (empty on a pass).
    pub message: String,
}

/// What the judge made of a boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The boot's verdict.
    pub verdict: Verdict,
    /// One line on why.
    pub reason: String,
    /// Every selected case, in plan order.
    pub tests: Vec<TestResult>,
    /// Lines that are not the guest's, each with why (bounded; empty
    /// unless the verdict is `tampered`).
    pub evidence: Vec<String>,
}

/// At most this many evidence lines are kept: enough to show what happened.
const EVIDENCE_MAX: usize = 20;
/// Kernel lines added to one failing case's message.
const KERNEL_LINES_MAX: usize = 5;
const KERNEL_LINE_CHARS: usize = 160;

/// One boot as the judge sees it.
#[derive(Debug, Clone, Copy)]
pub struct Boot<'a> {
    /// The serial console, analysed.
    pub console: &'a Console,
    /// How QEMU ended.
    pub ended: Ended,
    /// The boot's time limit, for the messages.
    pub timeout_s: u64,
    /// The nonce in this boot's plan.
    pub nonce: &'a str,
}

/// Judges one boot. `cases` are the selected catalogue cases in run order.
pub fn judge(cases: &[&Case], boot: Boot) -> Judgement {
    let Boot {
        console,
        ended,
        timeout_s,
        nonce,
    } = boot;
    let stream = console
        .ktap
        .as_deref()
        .map(|k| ktap::parse(k, nonce))
        .unwrap_or_default();
    let (accepted, mut rejected) = in_plan_order(cases, &stream);
    let mut tests = Vec::new();
    let mut interrupted = false;
    let mut previous_line: Option<usize> = None;
    for case in cases {
        let tampered = rejected
            .iter()
            .find(|r| r.suite == case.suite && r.name == case.name);
        let found = accepted
            .iter()
            .find(|c| c.suite == case.suite && c.name == case.name);
        let (outcome, message) = match (tampered, found) {
            (Some(r), _) => (
                Outcome::Tampered,
                format!(
                    "a result line the guest did not print ({}): {}",
                    r.why, r.line
                ),
            ),
            (None, Some(c)) if c.ok => (Outcome::Pass, String::new()),
            (None, Some(c)) => {
                let reason = c.reason.clone().unwrap_or_else(|| "failed".into());
                let mut message = reason.clone();
                if !c.diagnostics.is_empty() {
                    message = format!("{reason} [{}]", c.diagnostics.join("; "));
                }
                let said = kernel_said(console, previous_line, c.line);
                if !said.is_empty() {
                    message = format!("{message}; kernel said: {}", said.join(" | "));
                }
                if reason.starts_with("TIMEOUT") {
                    (Outcome::Timeout, message)
                } else {
                    (Outcome::Fail, message)
                }
            }
            (None, None) if interrupted => {
                (Outcome::NotRun, "not reached: the run ended earlier".into())
            }
            (None, None) => {
                interrupted = true;
                match (&console.failure, ended) {
                    (Some(f), _) if !f.before_guest => (Outcome::Crash, crash_message(f)),
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
        if let Some(c) = found {
            previous_line = Some(c.line);
        }
        tests.push(TestResult {
            name: case.full_name(),
            outcome,
            message,
        });
    }
    let evidence: Vec<String> = rejected
        .drain(..)
        .map(|r| format!("{}: {}", r.why, r.line))
        .collect();
    let (verdict, reason) = if evidence.is_empty() || console.ktap.is_none() {
        run_verdict(console, ended, &tests, timeout_s)
    } else {
        (
            Verdict::Tampered,
            format!(
                "{} result line(s) on the console are not the guest's; first: {}",
                evidence.len(),
                evidence[0]
            ),
        )
    };
    let mut evidence = evidence;
    if evidence.len() > EVIDENCE_MAX {
        let more = evidence.len() - EVIDENCE_MAX;
        evidence.truncate(EVIDENCE_MAX);
        evidence.push(format!("... and {more} more"));
    }
    Judgement {
        verdict,
        reason,
        tests,
        evidence,
    }
}

/// The stream's accepted results that follow the plan's order, and every
/// line that is not the guest's: the parser's rejects, plus results for a
/// case outside the plan or out of its order (a kernel relabelling the
/// guest's lines with a `# Subtest:` of its own).
fn in_plan_order<'s>(
    cases: &[&Case],
    stream: &'s ktap::Stream,
) -> (Vec<&'s ktap::CaseLine>, Vec<ktap::Rejected>) {
    let mut accepted = Vec::new();
    let mut rejected = stream.rejected.clone();
    let mut last: Option<usize> = None;
    for line in &stream.cases {
        let at = cases
            .iter()
            .position(|c| c.suite == line.suite && c.name == line.name);
        let why = match at {
            None => Some("a result for a case not in the plan"),
            Some(i) if last.is_some_and(|l| i <= l) => Some("a result out of order"),
            Some(i) => {
                last = Some(i);
                None
            }
        };
        match why {
            Some(why) => rejected.push(ktap::Rejected {
                suite: line.suite.clone(),
                name: line.name.clone(),
                why: why.into(),
                line: format!(
                    "{}ok {} {}",
                    if line.ok { "" } else { "not " },
                    line.suite,
                    line.name
                ),
            }),
            None => accepted.push(line),
        }
    }
    (accepted, rejected)
}

/// The crashed case's message: the kernel's first report line, then the
/// lines of its report that say where (RIP/pc, the calls), bounded.
fn crash_message(f: &crate::console::KernelFailure) -> String {
    let mut message = format!("kernel {} while this test ran: {}", f.kind, f.line);
    let report: Vec<String> = f
        .excerpt
        .lines()
        .skip(1)
        .map(|l| strip_stamp(l).trim().to_string())
        .filter(|l| {
            [
                "RIP:",
                "pc :",
                "lr :",
                "EIP:",
                "Call Trace",
                "Oops",
                "Kernel panic",
                "BUG",
            ]
            .iter()
            .any(|k| l.starts_with(k))
                || l.contains("+0x")
        })
        .take(KERNEL_LINES_MAX)
        .map(|l| match l.char_indices().nth(KERNEL_LINE_CHARS) {
            Some((i, _)) => format!("{}...", &l[..i]),
            None => l,
        })
        .collect();
    if !report.is_empty() {
        message = format!("{message}; kernel said: {}", report.join(" | "));
    }
    message
}

fn strip_stamp(line: &str) -> &str {
    let l = line.trim_start();
    match (l.starts_with('['), l.find("] ")) {
        (true, Some(end)) => &l[end + 2..],
        _ => l,
    }
}

/// What the kernel said that bears on a failure, while the case whose
/// result is at ktap line `line` ran (after the previous result, at
/// `previous`): warnings, "failed" lines, splats. Bounded.
fn kernel_said(console: &Console, previous: Option<usize>, line: usize) -> Vec<String> {
    let from = previous.map_or(0, |p| p + 1);
    let mut said: Vec<String> = console
        .kernel_lines
        .iter()
        .filter(|(at, m)| (from..=line).contains(at) && crate::console::is_telling(m))
        .map(|(_, m)| {
            let m = m.trim();
            match m.char_indices().nth(KERNEL_LINE_CHARS) {
                Some((i, _)) => format!("{}...", &m[..i]),
                None => m.to_string(),
            }
        })
        .collect();
    if said.len() > KERNEL_LINES_MAX {
        let more = said.len() - KERNEL_LINES_MAX;
        said.truncate(KERNEL_LINES_MAX);
        said.push(format!("({more} more lines in serial.log)"));
    }
    said
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

/// Why a run ended before its kernel booted, as the stage that stopped it
/// saw it: always the submission's doing (this machine's is an error).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stopped {
    /// Refused when read or applied: unsafe paths, over a limit.
    Refused(String),
    /// A student's submission that cannot be read as patches.
    Unreadable(String),
    /// A patch that does not apply, with `patch`'s output and the rejects.
    DoesNotApply {
        patch: String,
        output: String,
        rejects: String,
    },
    /// `patch` stopped at a limit.
    PatchLimit { patch: String, why: String },
    /// The kernel did not build.
    BuildFailed {
        reason: String,
        first_errors: String,
    },
    /// The kernel config lost wanted options.
    ConfigDropped(Vec<String>),
    /// The configuration refused the patched tree.
    ConfigFailed {
        reason: String,
        first_errors: String,
    },
}

/// A run's verdict, one line on why, and the longer evidence for
/// result.json's `details`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) verdict: Verdict,
    pub(crate) reason: String,
    pub(crate) details: String,
}

/// The verdict of a run a stage stopped before any boot.
pub(crate) fn stopped(stop: Stopped) -> Decision {
    let decision = |verdict, reason, details| Decision {
        verdict,
        reason,
        details,
    };
    match stop {
        Stopped::Refused(why) => {
            decision(Verdict::Rejected, format!("refused: {why}"), String::new())
        }
        Stopped::Unreadable(why) => decision(Verdict::PatchFailed, why, String::new()),
        Stopped::DoesNotApply {
            patch,
            output,
            rejects,
        } => decision(
            Verdict::PatchFailed,
            format!("{patch} does not apply"),
            format!("{output}\n{rejects}"),
        ),
        Stopped::PatchLimit { patch, why } => decision(
            Verdict::PatchFailed,
            format!("{patch}: patching stopped at a limit ({why})"),
            String::new(),
        ),
        Stopped::BuildFailed {
            reason,
            first_errors,
        } => {
            let first = first_errors
                .lines()
                .find(|l| l.contains("error"))
                .map(|l| l.trim().to_string())
                .unwrap_or(reason);
            decision(Verdict::BuildFailed, first, first_errors)
        }
        Stopped::ConfigDropped(lost) => decision(
            Verdict::BuildFailed,
            format!("kernel config dropped {}", lost.join(", ")),
            lost.join("\n"),
        ),
        Stopped::ConfigFailed {
            reason,
            first_errors,
        } => {
            let first = first_errors
                .lines()
                .next()
                .map(|l| l.trim().to_string())
                .unwrap_or(reason);
            decision(
                Verdict::BuildFailed,
                format!("the kernel configuration failed: {first}"),
                first_errors,
            )
        }
    }
}

/// The verdict of a run that booted: the judge's over its boots, held to
/// the numbers the handout fixes (see [`fixed_numbers_verdict`]).
pub(crate) fn booted(
    verdict: Verdict,
    reason: String,
    details: String,
    wrong: &[String],
) -> Decision {
    let (verdict, reason) = fixed_numbers_verdict(verdict, reason, wrong);
    Decision {
        verdict,
        reason,
        details,
    }
}

/// A run whose tests all passed still fails when the syscalls sit at other
/// numbers than the handout fixes: the course's own tester would call the
/// fixed ones. The tests ran with the patch's numbers, so they still tell the
/// student what works.
pub(crate) fn fixed_numbers_verdict(
    verdict: Verdict,
    reason: String,
    wrong: &[String],
) -> (Verdict, String) {
    if wrong.is_empty() || !matches!(verdict, Verdict::Pass | Verdict::Fail) {
        return (verdict, reason);
    }
    (
        Verdict::Fail,
        format!(
            "{}; tests ran with the patch's own numbers: {reason}",
            wrong.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::{analyse, Console};
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

    /// The tests' nonce: `block` puts it in the header, and `boot` expects it.
    const N: &str = "c0ffee";

    /// A suite block as the guest prints it: every result line signed.
    fn block(lines: &str) -> String {
        let signed: Vec<String> = lines
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("ok ") || l.trim_start().starts_with("not ok ") {
                    match l.split_once(" # ") {
                        Some((head, why)) => format!("{head} # nonce:{N} {why}"),
                        None => format!("{l} # nonce:{N}"),
                    }
                } else {
                    l.to_string()
                }
            })
            .collect();
        format!(
            "KTAP version 1\n1..1\n# kgrade-nonce: {N}\n    KTAP version 1\n    # Subtest: s\n    1..3\n{}",
            signed.join("\n")
        )
    }

    fn boot(console: &Console, ended: Ended) -> Boot<'_> {
        Boot {
            console,
            ended,
            timeout_s: 60,
            nonce: N,
        }
    }

    #[test]
    fn all_pass() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    ok 2 b\n    ok 3 c\nok 1 s")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Pass);
        assert!(j.tests.iter().all(|t| t.outcome == Outcome::Pass));
    }

    #[test]
    fn failure_and_case_timeout_keep_their_messages() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    not ok 2 b # expected 0, got -22\n    not ok 3 c # TIMEOUT after 5000 ms\nnot ok 1 s")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
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
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
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
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::TimedOut));
        assert_eq!(j.verdict, Verdict::Timeout);
        assert_eq!(j.tests[1].outcome, Outcome::Timeout);
        assert_eq!(j.tests[2].outcome, Outcome::NotRun);
    }

    #[test]
    fn boot_failures() {
        let j = judge(
            &[&A],
            boot(
                &analyse("[ 0.1] Kernel panic - not syncing: boom\n"),
                Ended::Exited,
            ),
        );
        assert_eq!(j.verdict, Verdict::BootFailed);
        assert!(j.reason.contains("boom"));
        assert_eq!(j.tests[0].outcome, Outcome::NotRun);
        let j = judge(&[&A], boot(&analyse("SeaBIOS\n"), Ended::TimedOut));
        assert_eq!(j.verdict, Verdict::BootFailed);
        assert!(j.reason.contains("nothing within 60 s"));
    }

    #[test]
    fn a_missing_case_line_is_not_a_pass() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    ok 3 c")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.tests[1].outcome, Outcome::NotRun);
    }

    /// A kernel printing an all-`ok` block of its own, markers and all,
    /// while the guest's own results say otherwise.
    #[test]
    fn a_forged_block_is_tampered_and_scores_nothing() {
        let forged = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..3\n    ok 1 a\n    ok 2 b\n    ok 3 c\nok 1 s";
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{forged}\n{}\n{END_MARKER}\n",
            block("    ok 1 a")
                .lines()
                .take(7)
                .collect::<Vec<_>>()
                .join("\n"),
            block("    not ok 2 b # fetch is broken\n    ok 3 c\nnot ok 1 s")
                .lines()
                .skip(6)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Tampered, "{}", j.reason);
        assert!(
            j.reason.contains("without this boot's nonce"),
            "{}",
            j.reason
        );
        let outcomes: Vec<Outcome> = j.tests.iter().map(|t| t.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Tampered; 3]);
        assert!(
            j.evidence.iter().any(|e| e.ends_with("    ok 2 b")),
            "{:?}",
            j.evidence
        );
        assert!(j.tests.iter().all(|t| t.outcome != Outcome::Pass));
    }

    #[test]
    fn the_same_run_without_forgery_is_graded_as_usual() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 1 a\n    not ok 2 b # fetch is broken\n    ok 3 c\nnot ok 1 s")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert!(j.evidence.is_empty());
        assert_eq!(j.tests[1].message, "fetch is broken");
    }

    #[test]
    fn results_out_of_plan_order_or_outside_it_are_tampered() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("    ok 2 b\n    ok 1 a\n    ok 3 c\n    ok 4 zz")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Tampered);
        assert_eq!(j.tests[0].outcome, Outcome::Tampered);
        assert!(
            j.tests[0].message.contains("out of order"),
            "{}",
            j.tests[0].message
        );
        assert_eq!(j.tests[1].outcome, Outcome::Pass);
        assert!(j.evidence.iter().any(|e| e.contains("not in the plan")));
    }

    #[test]
    fn evidence_is_bounded() {
        let many: String = (0..100).map(|i| format!("    ok {i} a\n")).collect();
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block(&many).replace(" # nonce:c0ffee", "")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.verdict, Verdict::Tampered);
        assert_eq!(j.evidence.len(), EVIDENCE_MAX + 1);
        assert_eq!(j.evidence[EVIDENCE_MAX], "... and 80 more");
    }

    #[test]
    fn a_failing_case_carries_what_the_kernel_said_while_it_ran() {
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block("[ 1.0] register_kprobe failed, returned -95\n    ok 1 a\n[ 1.1] tracker: hello\n[ 1.2] clocksource: tsc unstable\n[ 1.3] WARNING: CPU: 0 PID: 7 at kernel/tracker.c:10\n    not ok 2 b # got -22\n[ 1.4] BUG: sleeping function called\n    not ok 3 c # got 1")
        );
        let j = judge(&[&A, &B, &C], boot(&analyse(&text), Ended::Exited));
        assert_eq!(j.tests[0].outcome, Outcome::Pass);
        assert_eq!(j.tests[0].message, "");
        assert_eq!(
            j.tests[1].message,
            "got -22; kernel said: WARNING: CPU: 0 PID: 7 at kernel/tracker.c:10"
        );
        assert_eq!(
            j.tests[2].message,
            "got 1; kernel said: BUG: sleeping function called"
        );
    }

    #[test]
    fn kernel_lines_in_a_message_are_bounded() {
        let noise: String = (0..30)
            .map(|i| format!("[ 1.{i}] warning {}\n", "w".repeat(300)))
            .collect();
        let text = format!(
            "{BEGIN_MARKER}\n{}\n{END_MARKER}\n",
            block(&format!("{noise}    not ok 1 a # got 2"))
        );
        let j = judge(&[&A], boot(&analyse(&text), Ended::Exited));
        let m = &j.tests[0].message;
        assert!(m.ends_with("(25 more lines in serial.log)"), "{m}");
        assert!(m.len() < 6 * 170, "{}", m.len());
    }

    #[test]
    fn a_stopped_run_gets_its_stage_verdict_and_evidence() {
        let d = stopped(Stopped::Refused("../etc/passwd".into()));
        assert_eq!(
            (d.verdict, d.reason.as_str()),
            (Verdict::Rejected, "refused: ../etc/passwd")
        );
        let d = stopped(Stopped::DoesNotApply {
            patch: "0001.patch".into(),
            output: "Hunk #1 FAILED".into(),
            rejects: "@@ -1 +1 @@".into(),
        });
        assert_eq!(d.verdict, Verdict::PatchFailed);
        assert_eq!(d.reason, "0001.patch does not apply");
        assert_eq!(d.details, "Hunk #1 FAILED\n@@ -1 +1 @@");
        let d = stopped(Stopped::BuildFailed {
            reason: "make exited 2".into(),
            first_errors: "  CC kernel/x.o\n kernel/x.c:3: error: expected ';'\n".into(),
        });
        assert_eq!(d.verdict, Verdict::BuildFailed);
        assert_eq!(d.reason, "kernel/x.c:3: error: expected ';'");
        let d = stopped(Stopped::BuildFailed {
            reason: "make exited 2".into(),
            first_errors: "Killed".into(),
        });
        assert_eq!(d.reason, "make exited 2");
        let d = stopped(Stopped::ConfigDropped(vec![
            "CONFIG_A".into(),
            "CONFIG_B".into(),
        ]));
        assert_eq!(
            (d.reason.as_str(), d.details.as_str()),
            (
                "kernel config dropped CONFIG_A, CONFIG_B",
                "CONFIG_A\nCONFIG_B"
            )
        );
        let d = stopped(Stopped::ConfigFailed {
            reason: "exit 1".into(),
            first_errors: " Kconfig:3: syntax error\nmore".into(),
        });
        assert_eq!(
            d.reason,
            "the kernel configuration failed: Kconfig:3: syntax error"
        );
    }

    #[test]
    fn wrong_fixed_numbers_fail_a_passing_run_with_the_reason() {
        let wrong = vec!["pf_set_param is 390 but the spec fixes 385".to_string()];
        let (v, why) = fixed_numbers_verdict(Verdict::Pass, "22/22 tests passed".into(), &wrong);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(
            why,
            "pf_set_param is 390 but the spec fixes 385; tests ran with the patch's own numbers: 22/22 tests passed"
        );
        let (v, why) = fixed_numbers_verdict(Verdict::Crash, "kernel oops".into(), &wrong);
        assert_eq!((v, why.as_str()), (Verdict::Crash, "kernel oops"));
        let (v, _) = fixed_numbers_verdict(Verdict::Pass, "ok".into(), &[]);
        assert_eq!(v, Verdict::Pass);
    }
}
