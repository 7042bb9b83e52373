//! A graded class as the report writers see it: each student's run on each
//! target, scored under the rubric. Loaded from an output directory, so the
//! reports of a resumed or merged run are those of one uninterrupted run.

use super::manifest::Manifest;
use super::run_files;
use crate::report::RunResult;
use crate::rubric::{Rubric, Score};
use crate::verdict::Verdict;
use std::path::{Path, PathBuf};

/// Where one run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Finished, with its result.
    Done(Box<RunResult>),
    /// kgrade could not grade it (not the student's doing); no score.
    Error(String),
    /// Not graded (yet).
    Missing,
}

/// What a run came to, as the reports tell it: a verdict, or none because
/// kgrade failed on it or it never finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunVerdict {
    /// It ran to a verdict.
    Graded(Verdict),
    /// kgrade failed on it.
    Error,
    /// It never finished.
    Missing,
}

impl RunVerdict {
    /// `pass`, `build-failed`, ... or `error` / `missing`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunVerdict::Graded(v) => v.as_str(),
            RunVerdict::Error => "error",
            RunVerdict::Missing => "missing",
        }
    }
}

/// One run (a student's or the reference's) on one target, as the reports see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// The target.
    pub target: String,
    /// Where it stands.
    pub state: RunState,
    /// Present exactly when the run is done.
    pub score: Option<Score>,
    /// Where its result.json and logs are.
    pub dir: PathBuf,
}

impl RunEntry {
    /// The run in `dir`, scored under `rubric`.
    pub fn load(dir: &Path, target: &str, rubric: &Rubric) -> RunEntry {
        let state = match (run_files::read_done(dir), RunResult::read(dir)) {
            (Some(done), _) if done.error.is_some() => {
                RunState::Error(done.error.unwrap_or_default())
            }
            (Some(_), Ok(r)) => RunState::Done(Box::new(r)),
            _ => RunState::Missing,
        };
        let score = match &state {
            RunState::Done(r) => Some(rubric.score(Some(r))),
            _ => None,
        };
        RunEntry {
            target: target.to_string(),
            state,
            score,
            dir: dir.to_path_buf(),
        }
    }

    /// Its result, when it finished.
    pub fn result(&self) -> Option<&RunResult> {
        match &self.state {
            RunState::Done(r) => Some(r),
            _ => None,
        }
    }

    /// What it came to.
    pub fn verdict(&self) -> RunVerdict {
        match &self.state {
            RunState::Done(r) => RunVerdict::Graded(r.verdict),
            RunState::Error(_) => RunVerdict::Error,
            RunState::Missing => RunVerdict::Missing,
        }
    }

    /// `pass`, `build-failed`, ... or `error` / `missing`.
    pub fn verdict_str(&self) -> &'static str {
        self.verdict().as_str()
    }

    /// One line on why (or why there is no verdict).
    pub fn reason(&self) -> String {
        match &self.state {
            RunState::Done(r) => r.reason.clone(),
            RunState::Error(e) => format!("kgrade could not grade this run: {e}"),
            RunState::Missing => "not graded".into(),
        }
    }

    /// Its serial console, when it has one.
    pub fn serial(&self) -> Option<String> {
        std::fs::read(self.dir.join("serial.log"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// One student's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentResults {
    /// The student's name.
    pub name: String,
    /// The student's directory name in the output.
    pub dir: String,
    /// One per target, in target order.
    pub runs: Vec<RunEntry>,
}

impl StudentResults {
    /// Points earned over all targets; none while a run has no score.
    pub fn total(&self) -> Option<f64> {
        self.runs
            .iter()
            .map(|r| r.score.as_ref().map(|s| s.earned))
            .sum()
    }
}

/// A graded class, loaded from an output directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassResults {
    /// The assignment.
    pub assignment: String,
    /// The targets, in order.
    pub targets: Vec<String>,
    /// The rubric the runs are scored under.
    pub rubric: Rubric,
    /// Every graded student, in order.
    pub students: Vec<StudentResults>,
    /// The reference solution's run per target, in target order.
    pub references: Vec<RunEntry>,
}

impl ClassResults {
    /// The class in `out`, as its manifest lists it.
    pub fn load(out: &Path, manifest: &Manifest, rubric: &Rubric) -> ClassResults {
        let students = manifest
            .graded()
            .into_iter()
            .map(|s| StudentResults {
                name: s.name.clone(),
                dir: s.dir.clone(),
                runs: manifest
                    .targets
                    .iter()
                    .map(|t| RunEntry::load(&run_files::run_dir(out, &s.dir, t), t, rubric))
                    .collect(),
            })
            .collect();
        let references = manifest
            .targets
            .iter()
            .map(|t| RunEntry::load(&run_files::reference_run_dir(out, t), t, rubric))
            .collect();
        ClassResults {
            assignment: manifest.assignment.clone(),
            targets: manifest.targets.clone(),
            rubric: rubric.clone(),
            students,
            references,
        }
    }

    /// Maximum points over all targets.
    pub fn max_total(&self) -> f64 {
        self.rubric.max() * self.targets.len() as f64
    }

    /// The reference's run on `target`.
    pub fn reference(&self, target: &str) -> Option<&RunEntry> {
        self.references.iter().find(|r| r.target == target)
    }

    /// Runs without a result, as `student target: why`: kgrade failed on
    /// them, or they never finished (an interrupted shard).
    pub fn errors(&self) -> Vec<String> {
        let why = |state: &RunState| match state {
            RunState::Error(e) => Some(e.clone()),
            RunState::Missing => Some("not graded: the run never finished".to_string()),
            RunState::Done(_) => None,
        };
        let mut out = Vec::new();
        for s in &self.students {
            for r in &s.runs {
                if let Some(e) = why(&r.state) {
                    out.push(format!("{} {}: {e}", s.name, r.target));
                }
            }
        }
        for r in &self.references {
            if let Some(e) = why(&r.state) {
                out.push(format!("reference {}: {e}", r.target));
            }
        }
        out
    }

    /// The longer evidence a report shows for a run that did not pass: the
    /// rejected hunks, the first build errors, the kernel's crash report, or
    /// the end of the console for a timeout.
    pub fn evidence(run: &RunEntry) -> Option<String> {
        let r = run.result()?;
        if !r.details.trim().is_empty() {
            return Some(r.details.clone());
        }
        match r.verdict {
            Verdict::Timeout | Verdict::BootFailed | Verdict::Crash => {
                let serial = run.serial()?;
                let lines: Vec<&str> = serial.lines().collect();
                let start = lines.len().saturating_sub(30);
                Some(lines[start..].join("\n"))
            }
            _ => None,
        }
    }
}
