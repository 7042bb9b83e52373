//! JUnit XML, so CI systems list the guest tests: one `<testsuite>` per
//! student and target, a `<testcase>` per guest test (a failure carries the
//! KTAP reason), and a `run` case that fails when the run itself did not get
//! through the tests (patch, build or boot failure, crash, timeout).

use super::markup::escape;
use super::results::{ClassResults, RunEntry, RunState};
use crate::verdict::Outcome;

fn attr(s: &str) -> String {
    escape(s)
}

/// Running totals for `<testsuites>`.
#[derive(Default)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

fn suite(student: &str, run: &RunEntry, totals: &mut Totals) -> String {
    let name = format!("{student} {}", run.target);
    let classname = format!("{student}.{}", run.target);
    let mut cases = String::new();
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    let mut time = 0.0;
    let run_case = match &run.state {
        RunState::Done(r) => {
            time = r.timings_s.values().sum::<f64>();
            match r.verdict.as_str() {
                "pass" | "fail" => String::new(),
                v => format!(
                    "<failure message=\"{}\" type=\"{v}\">{}</failure>",
                    attr(&format!("{v}: {}", r.reason)),
                    escape(&r.details)
                ),
            }
        }
        RunState::Error(e) => format!(
            "<error message=\"{}\" type=\"infrastructure\"/>",
            attr(&format!("kgrade could not grade this run: {e}"))
        ),
        RunState::Missing => "<error message=\"not graded\" type=\"missing\"/>".to_string(),
    };
    tests += 1;
    if run_case.starts_with("<failure") {
        failures += 1;
    } else if run_case.starts_with("<error") {
        errors += 1;
    }
    cases.push_str(&format!(
        "    <testcase classname=\"{}\" name=\"run\">{run_case}</testcase>\n",
        attr(&classname)
    ));
    if let Some(score) = &run.score {
        for t in &score.tests {
            tests += 1;
            let body = match t.outcome {
                Outcome::Pass => String::new(),
                Outcome::Fail | Outcome::Crash | Outcome::Timeout | Outcome::Tampered => {
                    failures += 1;
                    format!(
                        "<failure message=\"{}\" type=\"{}\"/>",
                        attr(&t.message),
                        t.outcome.as_str()
                    )
                }
                Outcome::NotRun => {
                    skipped += 1;
                    format!("<skipped message=\"{}\"/>", attr(&t.message))
                }
            };
            cases.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">{body}</testcase>\n",
                attr(&classname),
                attr(&t.name)
            ));
        }
    }
    totals.tests += tests;
    totals.failures += failures;
    totals.errors += errors;
    totals.skipped += skipped;
    format!(
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.1}\">\n{cases}  </testsuite>\n",
        attr(&name)
    )
}

pub fn junit(class: &ClassResults) -> String {
    let mut body = String::new();
    let mut t = Totals::default();
    for s in &class.students {
        for run in &s.runs {
            body.push_str(&suite(&s.name, run, &mut t));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kgrade {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n{body}</testsuites>\n",
        attr(&class.assignment),
        t.tests,
        t.failures,
        t.errors,
        t.skipped
    )
}
