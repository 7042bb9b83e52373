//! The static HTML report: `report/index.html` (the class at a glance) and a
//! page per student (verdicts, points per test, the evidence of a failure and
//! the console's differences from the reference's).

use super::class_results::{ClassResults, RunEntry, RunVerdict, StudentResults};
use super::markup::escape;
use crate::rubric::fmt_points;
use crate::verdict::{Outcome, Verdict};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right}\
.pass{background:#e3f6e3}.fail{background:#fff3d6}.bad{background:#fbe0e0}.none{background:#eee}\
pre{background:#f8f8f8;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:90%}\
pre .add{color:#1a6e1a}pre .del{color:#a31515}pre .hunk{color:#555}\
.small{color:#555;font-size:90%}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// A CSS class for a verdict: green, amber (some tests failed), red (it
/// never reached or never finished the tests), grey (not graded).
fn verdict_class(v: RunVerdict) -> &'static str {
    match v {
        RunVerdict::Graded(Verdict::Pass) => "pass",
        RunVerdict::Graded(Verdict::Fail) => "fail",
        RunVerdict::Error | RunVerdict::Missing => "none",
        RunVerdict::Graded(_) => "bad",
    }
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotRun => "none",
        Outcome::Crash | Outcome::Timeout | Outcome::Tampered => "bad",
    }
}

pub fn student_page_name(dir: &str) -> String {
    format!("students/{dir}.html")
}

fn points_cell(run: &RunEntry) -> String {
    match &run.score {
        Some(s) => format!("{} / {}", fmt_points(s.earned), fmt_points(s.max)),
        None => "-".into(),
    }
}

pub fn index(class: &ClassResults) -> String {
    let mut b = format!(
        "<h1>{}: class report</h1>\n<p>{} students; {} points per target.</p>\n",
        escape(&class.assignment),
        class.students.len(),
        fmt_points(class.rubric.max())
    );
    let errors = class.errors();
    if !errors.is_empty() {
        b.push_str("<p class=\"bad\">Runs not graded (kgrade failed on them, or they never finished; <code>kgrade grade --resume</code> retries them):</p>\n<ul>\n");
        for e in errors {
            b.push_str(&format!("<li>{}</li>\n", escape(&e)));
        }
        b.push_str("</ul>\n");
    }
    b.push_str("<table>\n<tr><th>student</th>");
    for t in &class.targets {
        b.push_str(&format!("<th>{}</th>", escape(t)));
    }
    b.push_str(&format!(
        "<th>total / {}</th></tr>\n",
        fmt_points(class.max_total())
    ));
    if !class.references.is_empty() {
        b.push_str("<tr><td><em>reference solution</em></td>");
        for r in &class.references {
            b.push_str(&run_cell(r));
        }
        b.push_str("<td></td></tr>\n");
    }
    for s in &class.students {
        b.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td>",
            escape(&student_page_name(&s.dir)),
            escape(&s.name)
        ));
        for r in &s.runs {
            b.push_str(&run_cell(r));
        }
        b.push_str(&format!(
            "<td class=\"num\">{}</td></tr>\n",
            s.total().map(fmt_points).unwrap_or_else(|| "-".into())
        ));
    }
    b.push_str("</table>\n");
    page(&format!("{}: class report", class.assignment), &b)
}

fn run_cell(r: &RunEntry) -> String {
    format!(
        "<td class=\"{}\">{}<br><span class=\"small\">{}</span></td>",
        verdict_class(r.verdict()),
        escape(r.verdict_str()),
        escape(&points_cell(r))
    )
}

/// A unified diff with its lines coloured.
fn diff_block(diff: &str) -> String {
    let mut b = String::from("<pre>");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@")
        {
            Some("hunk")
        } else if line.starts_with('+') {
            Some("add")
        } else if line.starts_with('-') {
            Some("del")
        } else {
            None
        };
        match class {
            Some(c) => b.push_str(&format!("<span class=\"{c}\">{}</span>\n", escape(line))),
            None => {
                b.push_str(&escape(line));
                b.push('\n');
            }
        }
    }
    b.push_str("</pre>\n");
    b
}

/// One student's page. `diffs` holds, per target, the serial console's
/// differences from the reference's (None when there is nothing to compare
/// or nothing differs).
pub fn student(class: &ClassResults, s: &StudentResults, diffs: &[Option<String>]) -> String {
    let mut b = format!(
        "<p><a href=\"../index.html\">class report</a></p>\n<h1>{}</h1>\n<p>Total: {} / {}</p>\n",
        escape(&s.name),
        s.total().map(fmt_points).unwrap_or_else(|| "-".into()),
        fmt_points(class.max_total())
    );
    for (i, run) in s.runs.iter().enumerate() {
        b.push_str(&format!(
            "<h2>{}</h2>\n<p class=\"{}\"><strong>{}</strong>: {} &mdash; {}</p>\n",
            escape(&run.target),
            verdict_class(run.verdict()),
            escape(run.verdict_str()),
            escape(&run.reason()),
            escape(&points_cell(run)),
        ));
        let logs: Vec<String> = ["result.json", "build.log", "serial.log"]
            .iter()
            .filter(|f| run.dir.join(f).is_file())
            .map(|f| {
                format!(
                    "<a href=\"../../students/{}/{}/{f}\">{f}</a>",
                    escape(&s.dir),
                    escape(&crate::paths::component(&run.target))
                )
            })
            .collect();
        if !logs.is_empty() {
            b.push_str(&format!(
                "<p class=\"small\">{}</p>\n",
                logs.join(" &middot; ")
            ));
        }
        if let Some(r) = run.result() {
            if let Some(k) = &r.kernel {
                let note = if k.substitute {
                    format!(" (a stand-in for {})", k.canonical)
                } else {
                    String::new()
                };
                b.push_str(&format!(
                    "<p class=\"small\">Linux {}{} from {}</p>\n",
                    escape(&k.version),
                    escape(&note),
                    escape(&k.origin)
                ));
            }
            if !r.missing_syscalls.is_empty() {
                b.push_str(&format!(
                    "<p>Syscalls not found in the patched tree: {}</p>\n",
                    escape(&r.missing_syscalls.join(", "))
                ));
            }
        }
        if let Some(evidence) = ClassResults::evidence(run) {
            let what = match run.verdict() {
                RunVerdict::Graded(Verdict::PatchFailed) => "What did not apply",
                RunVerdict::Graded(Verdict::BuildFailed) => {
                    "First build errors (the whole log is build.log)"
                }
                RunVerdict::Graded(Verdict::Crash | Verdict::BootFailed) => "The kernel's report",
                RunVerdict::Graded(Verdict::Timeout) => "The end of the console",
                RunVerdict::Graded(Verdict::Tampered) => {
                    "Lines on the console the guest did not print"
                }
                _ => "Details",
            };
            b.push_str(&format!(
                "<h3>{what}</h3>\n<pre>{}</pre>\n",
                escape(&evidence)
            ));
        }
        if let Some(score) = &run.score {
            b.push_str(
                "<table>\n<tr><th>test</th><th>outcome</th><th>points</th><th>message</th></tr>\n",
            );
            for t in &score.tests {
                b.push_str(&format!(
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{} / {}</td><td>{}</td></tr>\n",
                    outcome_class(t.outcome),
                    escape(&t.name),
                    t.outcome.as_str(),
                    fmt_points(t.points),
                    fmt_points(t.max),
                    escape(&t.message)
                ));
            }
            b.push_str("</table>\n");
        }
        if let Some(diff) = diffs.get(i).and_then(|d| d.as_deref()) {
            b.push_str("<h3>Console differences from the reference solution</h3>\n<p class=\"small\">Timestamps, addresses, PIDs and timings are masked; <code>-</code> lines are the reference's, <code>+</code> lines this submission's.</p>\n");
            b.push_str(&diff_block(diff));
        }
    }
    page(&format!("{}: {}", class.assignment, s.name), &b)
}
