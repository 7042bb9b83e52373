//! JUnit XML, so CI systems list the guest tests: one `<testsuite>` per
//! student and target, a `<testcase>` per guest test (a failure carries the
//! KTAP reason), and a `run` case that fails when the run itself did not get
//! through the tests (patch, build or boot failure, crash, timeout).
//!
//! Written with quick-junit (nextest's serializer), which escapes markup and
//! drops what XML cannot hold. Attribute values are kept to one line (an XML
//! reader turns a raw newline in an attribute into a space); the full text of
//! a message goes in the element's body.

use super::class_results::{ClassResults, RunEntry, RunState};
use crate::verdict::{Outcome, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// A value for an attribute: one line, whatever the guest printed.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r']).collect::<Vec<_>>().join(" ")
}

/// A non-success status with its message on one line and, when it had more
/// lines (or details), the whole text as the body.
fn non_success(kind: NonSuccessKind, ty: &str, message: &str, body: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty).set_message(one_line(message));
    let body = if body.is_empty() && message.contains('\n') {
        message
    } else {
        body
    };
    if !body.is_empty() {
        status.set_description(body);
    }
    status
}

fn run_status(run: &RunEntry) -> TestCaseStatus {
    match &run.state {
        RunState::Done(r) => match r.verdict {
            Verdict::Pass | Verdict::Fail => TestCaseStatus::success(),
            v => non_success(
                NonSuccessKind::Failure,
                v.as_str(),
                &format!("{}: {}", v.as_str(), r.reason),
                &r.details,
            ),
        },
        RunState::Error(e) => non_success(
            NonSuccessKind::Error,
            "infrastructure",
            &format!("kgrade could not grade this run: {e}"),
            "",
        ),
        RunState::Missing => non_success(NonSuccessKind::Error, "missing", "not graded", ""),
    }
}

fn suite(student: &str, run: &RunEntry) -> TestSuite {
    let classname = format!("{student}.{}", run.target);
    let mut suite = TestSuite::new(format!("{student} {}", run.target));
    let mut run_case = TestCase::new("run", run_status(run));
    run_case.set_classname(classname.as_str());
    suite.add_test_case(run_case);
    let mut skipped = 0;
    if let Some(score) = &run.score {
        for t in &score.tests {
            let status = match t.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail | Outcome::Crash | Outcome::Timeout | Outcome::Tampered => {
                    non_success(NonSuccessKind::Failure, t.outcome.as_str(), &t.message, "")
                }
                Outcome::NotRun => {
                    skipped += 1;
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(one_line(&t.message));
                    s
                }
            };
            let mut case = TestCase::new(t.name.as_str(), status);
            case.set_classname(classname.as_str());
            suite.add_test_case(case);
        }
    }
    if let RunState::Done(r) = &run.state {
        let seconds = r.timings_s.values().sum::<f64>();
        suite.set_time(Duration::try_from_secs_f64(seconds).unwrap_or_default());
    }
    suite
        .extra
        .insert("skipped".into(), skipped.to_string().into());
    suite
}

pub fn junit(class: &ClassResults) -> String {
    let mut report = Report::new(format!("kgrade {}", class.assignment));
    for s in &class.students {
        for run in &s.runs {
            report.add_test_suite(suite(&s.name, run));
        }
    }
    // Serialising into memory fails only on a bug in the serializer.
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- kgrade: cannot write JUnit XML: {e} -->\n"))
}
