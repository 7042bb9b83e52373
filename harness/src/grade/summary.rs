//! `summary.md`: the class in Markdown for the course staff (verdicts,
//! score statistics, the tests most failed).
//!
//! A function of the results alone (no times, no paths), so a resumed or
//! merged run writes the same bytes as an uninterrupted one.

use super::class_results::{ClassResults, RunState, RunVerdict};
use crate::rubric::fmt_points;
use crate::text;
use crate::verdict::{Outcome, Verdict};
use std::collections::BTreeMap;

/// Markdown table cells: one line of at most 140 characters, markup and
/// control characters of student-derived text made inert.
pub fn md_cell(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let short = if one_line.chars().count() > 140 {
        format!("{}…", one_line.chars().take(140).collect::<String>())
    } else {
        one_line
    };
    text::markdown(&short)
}

fn stats(scores: &[f64]) -> Option<(f64, f64, f64, f64)> {
    if scores.is_empty() {
        return None;
    }
    let mut v = scores.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some((mean, median, v[0], v[v.len() - 1]))
}

/// The whole of summary.md.
pub fn markdown(class: &ClassResults) -> String {
    let mut s = String::new();
    let max = class.rubric.max();
    s.push_str(&format!("# {}: class summary\n\n", class.assignment));
    s.push_str(&format!(
        "{} students, {} target{} ({}), {} points per target.\n",
        class.students.len(),
        class.targets.len(),
        if class.targets.len() == 1 { "" } else { "s" },
        class.targets.join(", "),
        fmt_points(max)
    ));
    let errors = class.errors();
    if !errors.is_empty() {
        s.push_str(&format!(
            "\n**{} run{} not graded** (a problem of this machine or an interrupted run, not of the submission; `kgrade grade --resume` retries them):\n\n",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ));
        for e in &errors {
            s.push_str(&format!("- {}\n", md_cell(e)));
        }
    }
    for (i, target) in class.targets.iter().enumerate() {
        s.push_str(&format!("\n## {target}\n\n"));
        match class.reference(target) {
            Some(r) if r.result().is_some() => {
                let note = if r.verdict() == RunVerdict::Graded(Verdict::Pass) {
                    ""
                } else {
                    " **the reference does not pass: check the target before trusting these grades**"
                };
                s.push_str(&format!(
                    "Reference solution: {} ({}).{note}\n\n",
                    r.verdict_str(),
                    md_cell(&r.reason())
                ));
            }
            Some(r) => s.push_str(&format!(
                "Reference solution: {} ({}).\n\n",
                r.verdict_str(),
                md_cell(&r.reason())
            )),
            None => {}
        }
        let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut scores = Vec::new();
        for st in &class.students {
            let run = &st.runs[i];
            *verdicts.entry(run.verdict_str()).or_default() += 1;
            if let Some(sc) = &run.score {
                scores.push(sc.earned);
            }
        }
        s.push_str("| verdict | students |\n|---|---:|\n");
        for (v, n) in &verdicts {
            s.push_str(&format!("| {v} | {n} |\n"));
        }
        if let Some((mean, median, lo, hi)) = stats(&scores) {
            s.push_str(&format!(
                "\nScores out of {}: mean {}, median {}, lowest {}, highest {}.\n",
                fmt_points(max),
                fmt_points(mean),
                fmt_points(median),
                fmt_points(lo),
                fmt_points(hi)
            ));
        }
        s.push_str(
            "\n| student | verdict | points | tests passed | reason |\n|---|---|---:|---:|---|\n",
        );
        for st in &class.students {
            let run = &st.runs[i];
            let points = run
                .score
                .as_ref()
                .map(|x| fmt_points(x.earned))
                .unwrap_or_else(|| "-".into());
            let passed = match &run.state {
                RunState::Done(r) => format!("{}/{}", r.passed(), class.rubric_tests()),
                _ => "-".into(),
            };
            s.push_str(&format!(
                "| {} | {} | {points} | {passed} | {} |\n",
                md_cell(&st.name),
                run.verdict_str(),
                md_cell(&run.reason())
            ));
        }
        // Which tests the class failed most: where teaching (or a test) needs a look.
        let mut failed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for st in &class.students {
            if let Some(sc) = &st.runs[i].score {
                for t in sc.tests.iter().filter(|t| {
                    matches!(
                        t.outcome,
                        Outcome::Fail | Outcome::Crash | Outcome::Timeout | Outcome::Tampered
                    )
                }) {
                    failed.entry(t.name.clone()).or_default().push(&st.name);
                }
            }
        }
        if !failed.is_empty() {
            let mut rows: Vec<_> = failed.into_iter().collect();
            rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            s.push_str("\nTests that failed, crashed or timed out (students whose tests never ran are not counted):\n\n| test | students |\n|---|---|\n");
            for (test, who) in rows {
                s.push_str(&format!(
                    "| {test} | {} ({}) |\n",
                    who.len(),
                    md_cell(&who.join(", "))
                ));
            }
        }
    }
    s
}

impl ClassResults {
    /// How many tests the rubric scores (every catalogue case).
    pub fn rubric_tests(&self) -> usize {
        self.rubric.groups.iter().map(|g| g.tests.len()).sum()
    }
}
