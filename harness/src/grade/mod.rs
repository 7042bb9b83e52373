//! Grading a class: every student's submission on every target of an
//! assignment, through the same pipeline as `kgrade run`.
//!
//! Each run lands in `OUT/students/<student>/<target>/` (result.json,
//! build.log, serial.log, done.json) the moment it finishes, placed
//! atomically; the reference solution's runs go to `OUT/reference/<target>/`
//! first, for the console diffs. A run already finished under the same key
//! (see `run_files`) is never redone by `--resume`. At the end the reports are
//! written from what is on disk (see `class_reports`), so an interrupted and
//! resumed run, or shards merged with `kgrade merge`, give the same reports
//! as one uninterrupted run.
//!
//! `--jobs N` runs N pipelines at once. Their workspaces are keyed by the
//! submission's digest, so different submissions never share a tree (the
//! same submission twice waits on the workspace lock), and every `make`
//! takes the machine-wide build lock: boots, tests and patching overlap,
//! kernel builds queue.

pub mod class;
pub mod class_reports;
pub mod class_results;
mod gradebook;
mod gradescope;
mod html;
mod junit;
mod manifest;
mod markup;
pub mod merge;
pub mod progress;
mod run_files;
pub mod slurm;
mod summary;
#[cfg(test)]
mod tests;

use crate::ioerr::{io, IoError};
use crate::paths::{self, FileLock};
use crate::pipeline::{self, InfraError, Request};
use crate::report::RunResult;
use crate::rubric::{fmt_points, Rubric, RubricError};
use crate::source;
use crate::target::{Catalog, Target};
use class::{Shard, Student};
use class_results::ClassResults;
pub use manifest::Manifest;
use progress::Progress;
pub use run_files::Done;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// Why a class could not be graded (or its reports written).
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    /// The class directory is not usable.
    #[error("{0}")]
    Class(String),
    /// No target of the assignment (the assignment, the known ones).
    #[error("no target of assignment `{0}` (known assignments: {1})")]
    NoSuchAssignment(String, String),
    /// A target not of the assignment (the target, the assignment, its targets).
    #[error("target `{0}` is not a target of assignment `{1}` (its targets: {2})")]
    NotInAssignment(String, String, String),
    /// The rubric is not valid.
    #[error(transparent)]
    Rubric(#[from] RubricError),
    /// The reference run failed for a reason of this machine's.
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// The output directory is locked by another `kgrade grade`.
    #[error("{0} is in use by another `kgrade grade` (its lock is held)")]
    Busy(PathBuf),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What `kgrade grade` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The assignment to grade.
    pub assignment: String,
    /// Target names; empty means every target of the assignment.
    pub targets: Vec<String>,
    /// The class directory: one submission per student.
    pub dir: PathBuf,
    /// The output directory.
    pub out: PathBuf,
    /// Runs at once.
    pub jobs: usize,
    /// Grade only this shard of the class.
    pub shard: Option<Shard>,
    /// Keep finished runs (and redo only the rest).
    pub resume: bool,
    /// Keep each student's patched tree and build directory in the cache
    /// (a rerun then takes seconds, not a minute, at about 100 MB a run).
    pub keep_workspaces: bool,
    /// Grade without the build sandbox where it cannot start (unsafe).
    pub no_sandbox: bool,
}

/// What a grading run did.
#[derive(Debug)]
pub struct Summary {
    /// Runs done now.
    pub ran: usize,
    /// Finished runs found and kept (including the reference's).
    pub reused: usize,
    /// The class, as graded.
    pub class: ClassResults,
}

/// The targets to grade, in catalogue order.
pub fn select_targets<'c>(
    catalog: &'c Catalog,
    assignment: &str,
    names: &[String],
) -> Result<Vec<&'c Target>, GradeError> {
    let all: Vec<&Target> = catalog
        .targets
        .iter()
        .filter(|t| t.assignment.name == assignment)
        .collect();
    if all.is_empty() {
        let mut known: Vec<&str> = catalog
            .targets
            .iter()
            .map(|t| t.assignment.name.as_str())
            .collect();
        known.dedup();
        return Err(GradeError::NoSuchAssignment(
            assignment.into(),
            known.join(", "),
        ));
    }
    if names.is_empty() {
        return Ok(all);
    }
    let listing = || {
        all.iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for n in names {
        if !all.iter().any(|t| &t.name == n) {
            return Err(GradeError::NotInAssignment(
                n.clone(),
                assignment.into(),
                listing(),
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| names.contains(&t.name))
        .collect())
}

/// One run to do.
struct Job<'c> {
    /// Index into the graded students; None for the reference.
    student: Option<usize>,
    label: String,
    target: &'c Target,
    submission_path: Option<PathBuf>,
    dir: PathBuf,
    key: String,
    submission_digest: String,
}

/// Per target: the inputs key and the reference's submission digest.
fn plan_inputs(
    catalog: &Catalog,
    targets: &[&Target],
) -> Result<BTreeMap<String, (String, String)>, GradeError> {
    let mut out = BTreeMap::new();
    for t in targets {
        let src = source::resolve(&t.series_name, &t.series, None, &paths::cache_root())
            .map_err(InfraError::from)?;
        let ref_dir = pipeline::reference_patches_dir(
            &catalog.root,
            &t.assignment.name,
            &src,
            &t.series_name,
        )?;
        let fp = run_files::submission_digest(&ref_dir);
        let inputs = run_files::inputs_key(catalog, t, &src, &fp)?;
        out.insert(t.name.clone(), (inputs, fp));
    }
    Ok(out)
}

/// Grades the class in `opts.dir` (or one shard of it) into `opts.out`.
pub fn grade(
    catalog: &Catalog,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Summary, GradeError> {
    let targets = select_targets(catalog, &opts.assignment, &opts.targets)?;
    let rubric = targets[0].assignment.rubric()?;
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let class = class::discover(&opts.dir, Some(&opts.out))?;
    let graded: Vec<Student> = match opts.shard {
        Some(s) => s.select(&class),
        None => class.clone(),
    };
    let _lock = FileLock::try_acquire(&opts.out)
        .map_err(io(&opts.out))?
        .ok_or_else(|| GradeError::Busy(opts.out.clone()))?;
    let inputs = plan_inputs(catalog, &targets)?;
    let manifest = Manifest {
        assignment: opts.assignment.clone(),
        targets: targets.iter().map(|t| t.name.clone()).collect(),
        inputs: inputs
            .iter()
            .map(|(t, (k, _))| (t.clone(), k.clone()))
            .collect(),
        shard: opts.shard,
        class: class.clone(),
        students: graded.iter().map(|s| s.dir.clone()).collect(),
    };
    manifest.write(&opts.out)?;

    let mut jobs = VecDeque::new();
    let mut reused = 0;
    // The references first: every student's console is compared with theirs.
    // A finished reference run is kept even without --resume: it is not
    // a student's grade, and its key covers every input.
    for t in &targets {
        let (inputs_key, fp) = &inputs[&t.name];
        let key = run_files::run_key(inputs_key, fp);
        let dir = run_files::reference_run_dir(&opts.out, &t.name);
        if run_files::is_done(&dir, &key) {
            reused += 1;
            continue;
        }
        jobs.push_back(Job {
            student: None,
            label: "reference".into(),
            target: t,
            submission_path: None,
            dir,
            key,
            submission_digest: fp.clone(),
        });
    }
    let mut pending = vec![0usize; graded.len()];
    for (i, s) in graded.iter().enumerate() {
        let fp = run_files::submission_digest(&s.path);
        for t in &targets {
            let key = run_files::run_key(&inputs[&t.name].0, &fp);
            let dir = run_files::run_dir(&opts.out, &s.dir, &t.name);
            if opts.resume && run_files::is_done(&dir, &key) {
                reused += 1;
                continue;
            }
            pending[i] += 1;
            jobs.push_back(Job {
                student: Some(i),
                label: s.name.clone(),
                target: t,
                submission_path: Some(s.path.clone()),
                dir,
                key,
                submission_digest: fp.clone(),
            });
        }
    }
    let already = pending.iter().filter(|n| **n == 0).count();
    let ran = jobs.len();
    progress.begin(graded.len(), already, ran, reused);
    let queue = Mutex::new(jobs);
    let pending = Mutex::new(pending);
    let finished = Mutex::new(0usize);
    let workers = opts.jobs.max(1).min(ran.max(1));
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (queue, pending, finished) = (&queue, &pending, &finished);
            let rubric = &rubric;
            scope.spawn(move || loop {
                let Some(job) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    progress.stage(worker, "done");
                    break;
                };
                let (done, result) = run_job(catalog, &job, opts, worker, progress);
                let n = finished.lock().map(|mut f| {
                    *f += 1;
                    *f
                });
                let student_done = job.student.is_some_and(|i| {
                    pending.lock().is_ok_and(|mut p| {
                        p[i] -= 1;
                        p[i] == 0
                    })
                });
                let line = finished_line(&job, &done, result.as_ref(), rubric);
                progress.finished(&format!("[{}/{ran}] {line}", n.unwrap_or(0)), student_done);
            });
        }
    });
    progress.end();
    let class = class_reports::write_reports(&opts.out, &manifest, &rubric)?;
    Ok(Summary { ran, reused, class })
}

fn finished_line(job: &Job, done: &Done, result: Option<&RunResult>, rubric: &Rubric) -> String {
    let what = match (&done.error, result) {
        (Some(e), _) => format!("ERROR {e}"),
        (None, Some(r)) => {
            let s = rubric.score(Some(r));
            format!(
                "{} ({}), {}/{} points",
                r.verdict.as_str(),
                r.reason,
                fmt_points(s.earned),
                fmt_points(s.max)
            )
        }
        (None, None) => "no result".into(),
    };
    format!(
        "{} {}: {what} [{:.0} s]",
        job.label, job.target.name, done.seconds
    )
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs one job into a staging directory and files it. Never fails: a
/// problem becomes the run's `error` (and the next --resume retries it).
fn run_job(
    catalog: &Catalog,
    job: &Job,
    opts: &Options,
    worker: usize,
    progress: &dyn Progress,
) -> (Done, Option<RunResult>) {
    let started = Instant::now();
    let staging = run_files::sibling(&job.dir, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    let prefix = format!("{} {}", job.label, job.target.name);
    progress.stage(worker, &format!("{prefix}: start"));
    let outcome: Result<RunResult, String> = std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))
        .and_then(|()| {
            let req = Request {
                catalog,
                target: job.target,
                submission_path: job.submission_path.as_deref(),
                kernel_src: None,
                out: &staging,
                overlay: None,
                only: vec![],
                // The reference's tree stays: every target's class needs it.
                discard_workspace: job.submission_path.is_some() && !opts.keep_workspaces,
                allow_unsandboxed: opts.no_sandbox,
                build_timeout: None,
                // The students that follow read what the reference's build
                // puts in the compiler cache.
                fill_cache: job.submission_path.is_none(),
            };
            let mut on_stage = |stage: &str| progress.stage(worker, &format!("{prefix}: {stage}"));
            // One student's bug in kgrade must not stop the class. kgrade
            // unwinds in every profile; only the guest aborts (Cargo.toml).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pipeline::run(&req, &mut on_stage)
            }))
            .map_err(|p| format!("internal error: {}", panic_message(p.as_ref())))
            .and_then(|r| r.map_err(|e| e.to_string()))
        });
    // The initramfs can be rebuilt from the plan; a class of them is not worth the disk.
    let _ = std::fs::remove_file(staging.join("initramfs.cpio"));
    let mut done = Done {
        key: job.key.clone(),
        target: job.target.name.clone(),
        submission_digest: job.submission_digest.clone(),
        seconds: started.elapsed().as_secs_f64(),
        error: outcome.as_ref().err().cloned(),
    };
    if staging.is_dir() {
        if let Err(e) = run_files::place(&staging, &job.dir, &done) {
            done.error = Some(format!(
                "cannot file the result in {}: {e}",
                job.dir.display()
            ));
        }
    }
    progress.stage(worker, &format!("{prefix}: filed"));
    (done, outcome.ok())
}
