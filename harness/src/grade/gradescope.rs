//! A Gradescope autograder `results.json` per student (the format of
//! Gradescope's autograder specification): a test per guest test and target,
//! with its score, maximum, status and message, and the run's verdict (and
//! the serial console's differences from the reference's) as the overall
//! output.

use super::class_results::{ClassResults, RunState, StudentResults};
use crate::text::printable;
use crate::verdict::Outcome;
use serde::Serialize;

#[derive(Debug, Serialize, PartialEq)]
pub struct Results {
    pub score: f64,
    pub output: String,
    pub visibility: &'static str,
    pub tests: Vec<Test>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Test {
    pub name: String,
    pub score: f64,
    pub max_score: f64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
    pub visibility: &'static str,
}

/// `diffs[i]`: run i's serial differences from the reference's, if any.
pub fn results(class: &ClassResults, s: &StudentResults, diffs: &[Option<String>]) -> Results {
    let mut output = Vec::new();
    let mut tests = Vec::new();
    let several = class.targets.len() > 1;
    for (i, run) in s.runs.iter().enumerate() {
        let line = format!("{}: {} ({})", run.target, run.verdict_str(), run.reason());
        output.push(line);
        if let Some(evidence) = ClassResults::evidence(run) {
            output.push(evidence);
        }
        if let Some(diff) = diffs.get(i).and_then(|d| d.as_deref()) {
            output.push(format!(
                "{}: serial console differences from the reference solution's \
                 (timestamps, addresses and PIDs masked; - reference, + yours):\n{diff}",
                run.target
            ));
        }
        if let RunState::Error(_) | RunState::Missing = run.state {
            continue;
        }
        if let Some(score) = &run.score {
            for t in &score.tests {
                tests.push(Test {
                    name: if several {
                        format!("{}: {}", run.target, t.name)
                    } else {
                        t.name.clone()
                    },
                    score: t.points,
                    max_score: t.max,
                    status: if t.outcome == Outcome::Pass && t.points == t.max {
                        "passed"
                    } else {
                        "failed"
                    },
                    output: printable(&t.message),
                    visibility: "visible",
                });
            }
        }
    }
    Results {
        score: s
            .runs
            .iter()
            .filter_map(|r| r.score.as_ref())
            .map(|x| x.earned)
            .sum(),
        // Shown to the student as text: what the kernel printed, minus
        // escape sequences and bidi controls.
        output: printable(&output.join("\n\n")),
        visibility: "visible",
        tests,
    }
}

pub fn to_json(r: &Results) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}
