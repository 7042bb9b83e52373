//! One run, stage after stage: source -> workspace -> config -> build ->
//! syscalls -> plan -> guest + initramfs -> boot -> console -> verdicts.
//!
//! Problems with the submission become verdicts in the result; only problems
//! with this machine (no QEMU, no kernel source, a full disk) are errors.

use crate::boots::{self, BootError};
use crate::guest::{self, GuestError};
use crate::kbuild::{self, BuildError, BuildPolicy, Trust};
use crate::paths;
use crate::qemu::{self, QemuError};
use crate::report::{KernelInfo, RunResult};
use crate::source::{self, KernelSource, SourceError};
use crate::submission::{self, PatchFile, Submission, SubmissionError};
use crate::syscalls;
use crate::target::{Catalog, Target};
use crate::verdict::{self, Verdict};
use crate::workspace::{self, Workspace, WorkspaceError, WorkspaceLock};
use kgrade_protocol::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("no reference solution for {assignment} in {looked}")]
    NoReference { assignment: String, looked: String },
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("this machine failed the build: {0}")]
    Machine(String),
    #[error("{0}")]
    Other(String),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InfraError + '_ {
    move |source| InfraError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to run.
#[derive(Clone)]
pub struct Request<'a> {
    pub catalog: &'a Catalog,
    pub target: &'a Target,
    /// A submission path; `None` grades the reference solution.
    pub submission: Option<&'a Path>,
    pub kernel_src: Option<&'a Path>,
    /// Where result.json and the logs go.
    pub out: &'a Path,
    /// A patch applied over the submission and removed afterwards (mutants).
    pub overlay: Option<&'a PatchFile>,
    /// Case names to run; empty runs all.
    pub only: Vec<String>,
    /// Remove the patched tree and build directory when the run is over.
    pub discard_workspace: bool,
    /// Grade a submission even where the build sandbox cannot start.
    pub allow_unsandboxed: bool,
    /// Overrides the assignment's build time limit.
    pub build_timeout: Option<Duration>,
}

/// Calls [`workspace::discard`] when dropped, whichever way the run ends.
struct DiscardOnDrop(PathBuf);

impl Drop for DiscardOnDrop {
    fn drop(&mut self) {
        workspace::discard(&self.0);
    }
}

/// The reference solution's directory for the tree actually built: a variant
/// for the exact `major.minor` wins over the series' own.
pub fn reference_dir(
    root: &Path,
    assignment: &str,
    source: &KernelSource,
    series: &str,
) -> Result<PathBuf, InfraError> {
    let base = root.join("kernel-patches").join(assignment);
    let candidates = [base.join(source.major_minor()), base.join(series)];
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .ok_or_else(|| InfraError::NoReference {
            assignment: assignment.into(),
            looked: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Workspaces are keyed by the pristine tree and the exact patches applied.
fn workspace_key(src: &KernelSource, sub: &Submission) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(src.tree.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(sub.digest().as_bytes());
    format!("{}-{}", src.version, &source::hex(&h.finalize())[..16])
}

/// The stages of a run, in order: one vocabulary for the progress display
/// and for `timings_s` in result.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Source,
    Submission,
    Patch,
    Wait,
    Config,
    Build,
    Syscalls,
    Guest,
    Boot,
}

impl Stage {
    /// What the progress display says while the stage runs.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Source => "kernel source",
            Stage::Submission => "submission",
            Stage::Patch => "apply patches",
            Stage::Wait => "wait for the build lock",
            Stage::Config => "configure kernel",
            Stage::Build => "build kernel",
            Stage::Syscalls => "find syscalls",
            Stage::Guest => "build guest",
            Stage::Boot => "boot and test",
        }
    }

    /// Its entry in `timings_s`: reading the submission counts with
    /// patching, finding the syscalls with the guest.
    pub fn timing_key(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Submission | Stage::Patch => "patch",
            Stage::Wait => "wait",
            Stage::Config => "config",
            Stage::Build => "build",
            Stage::Syscalls | Stage::Guest => "guest",
            Stage::Boot => "boot",
        }
    }
}

/// Seconds per stage: a stage runs from when it is entered to when the next
/// one is (or the run ends).
#[derive(Default)]
struct Timer {
    seconds: BTreeMap<String, f64>,
    current: Option<(Stage, Instant)>,
}

impl Timer {
    fn enter(&mut self, stage: Stage, progress: &mut dyn FnMut(&str)) {
        self.close();
        progress(stage.label());
        self.current = Some((stage, Instant::now()));
    }

    fn close(&mut self) {
        if let Some((stage, since)) = self.current.take() {
            *self
                .seconds
                .entry(stage.timing_key().to_string())
                .or_default() += since.elapsed().as_secs_f64();
        }
    }

    fn into_seconds(mut self) -> BTreeMap<String, f64> {
        self.close();
        self.seconds
    }
}

/// Runs one target on one submission.
pub fn run(req: &Request, progress: &mut dyn FnMut(&str)) -> Result<RunResult, InfraError> {
    let root = &req.catalog.root;
    let target = req.target;
    let cache = paths::cache_root();
    std::fs::create_dir_all(req.out).map_err(io(req.out))?;
    let mut timer = Timer::default();
    timer.enter(Stage::Source, progress);
    let src = source::resolve(&target.series_name, &target.series, req.kernel_src, &cache)?;
    let mut result = RunResult {
        target: target.name.clone(),
        verdict: Verdict::Fail,
        reason: String::new(),
        submission: String::new(),
        kernel: Some(KernelInfo {
            version: src.version.clone(),
            canonical: target.series.canonical.version.clone(),
            substitute: src.substitute,
            origin: src.origin.clone(),
            tree: src.tree.display().to_string(),
            tarball_sha256: src.tarball_sha256.clone(),
        }),
        syscalls: BTreeMap::new(),
        missing_syscalls: vec![],
        wrong_syscall_numbers: vec![],
        tests: vec![],
        timings_s: BTreeMap::new(),
        details: String::new(),
        accel: String::new(),
        boots: vec![],
    };
    let finish = |mut r: RunResult,
                  timer: Timer,
                  verdict: Verdict,
                  reason: String|
     -> Result<RunResult, InfraError> {
        r.verdict = verdict;
        r.reason = reason;
        r.timings_s = timer.into_seconds();
        r.write(req.out).map_err(io(req.out))?;
        Ok(r)
    };

    timer.enter(Stage::Submission, progress);
    let loaded = match req.submission {
        Some(path) => submission::load(path),
        None => reference_dir(root, &target.assignment.name, &src, &target.series_name)
            .map_err(|e| SubmissionError::Unreadable {
                path: PathBuf::new(),
                message: e.to_string(),
            })
            .and_then(|d| submission::load(&d)),
    };
    let sub: Submission = match loaded {
        Ok(s) => s,
        Err(SubmissionError::Unsafe(why)) => {
            result.submission = req
                .submission
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return finish(result, timer, Verdict::Rejected, format!("refused: {why}"));
        }
        Err(e) if req.submission.is_some() => {
            result.submission = req
                .submission
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return finish(result, timer, Verdict::PatchFailed, e.to_string());
        }
        Err(e) => return Err(InfraError::Other(e.to_string())),
    };
    result.submission = match req.overlay {
        Some(o) => format!("{} + {}", sub.origin, o.name),
        None => sub.origin.clone(),
    };

    // The reference and mutants are ours; anything else is a student's.
    let trusted = req.submission.is_none();
    let sandbox = crate::sandbox::Sandbox::for_run(trusted, req.allow_unsandboxed)?;
    timer.enter(Stage::Patch, progress);
    let ws_dir = cache
        .join("workspaces")
        .join(paths::component(&target.name))
        .join(workspace_key(&src, &sub));
    let _lock = WorkspaceLock::acquire(&ws_dir).map_err(io(&ws_dir))?;
    // Declared after the lock, so dropped (the tree removed) before it.
    let _discard = req.discard_workspace.then(|| DiscardOnDrop(ws_dir.clone()));
    let ws = match Workspace::prepare(&ws_dir, &src.tree, &sub, &sandbox) {
        Ok(ws) => ws,
        Err(e) => return patch_verdict(e, result, timer, finish),
    };
    seed_build(req, &src, &sub, &ws_dir, &ws)?;
    if let Some(overlay) = req.overlay {
        if let Err(e) = ws.add_overlay(overlay, &src.tree) {
            return patch_verdict(e, result, timer, finish);
        }
    }
    let policy = BuildPolicy {
        trust: if trusted {
            Trust::Trusted
        } else {
            Trust::Untrusted
        },
        wall: req
            .build_timeout
            .unwrap_or(Duration::from_secs(target.assignment.build_timeout_s)),
    };
    let outcome = build_and_boot(req, &policy, &ws, &mut result, &mut timer, progress);
    if let Some(overlay) = req.overlay {
        ws.remove_overlay(overlay, &src.tree)
            .map_err(|e| InfraError::Other(format!("cannot remove {}: {e}", overlay.name)))?;
    }
    let (verdict, reason) = outcome?;
    finish(result, timer, verdict, reason)
}

/// A new workspace's build starts from a finished trusted build of the same
/// tree and arch, when there is one, instead of from nothing: only what
/// either patch set touches is rebuilt (issue: a student rebuild near the
/// floor), and kbuild's own CONFIG tracking rebuilds what a different
/// fragment changes. The assignment's own reference comes first (same
/// config, fewest differences), then another assignment's reference on the
/// same tree and arch (a reference of its own is built from it in seconds
/// instead of minutes, cold).
fn seed_build(
    req: &Request,
    src: &KernelSource,
    sub: &Submission,
    ws_dir: &Path,
    ws: &Workspace,
) -> Result<(), InfraError> {
    let target = req.target;
    let Ok(ours) = sub.touched_paths() else {
        return Ok(());
    };
    let same_first = std::iter::once(target).chain(req.catalog.targets.iter().filter(|t| {
        t.name != target.name
            && t.assignment.name != target.assignment.name
            && t.series_name == target.series_name
            && t.arch_name == target.arch_name
    }));
    for seed_target in same_first {
        let Ok(dir) = reference_dir(
            &req.catalog.root,
            &seed_target.assignment.name,
            src,
            &seed_target.series_name,
        ) else {
            continue;
        };
        let Ok(reference) = submission::load(&dir) else {
            continue;
        };
        let seed = ws_dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(ws_dir)
            .join(paths::component(&seed_target.name))
            .join(workspace_key(src, &reference));
        if seed == ws_dir {
            continue;
        }
        let Ok(mut touched) = reference.touched_paths() else {
            continue;
        };
        touched.extend(ours.iter().cloned());
        let seeded = ws.seed_build(&seed, &touched).map_err(|e| {
            InfraError::Other(format!("seeding the build from {}: {e}", seed.display()))
        })?;
        if seeded {
            break;
        }
    }
    Ok(())
}

fn patch_verdict(
    e: WorkspaceError,
    mut result: RunResult,
    timer: Timer,
    finish: impl Fn(RunResult, Timer, Verdict, String) -> Result<RunResult, InfraError>,
) -> Result<RunResult, InfraError> {
    match e {
        WorkspaceError::DoesNotApply {
            patch,
            output,
            rejects,
        } => {
            result.details = format!("{output}\n{rejects}");
            finish(
                result,
                timer,
                Verdict::PatchFailed,
                format!("{patch} does not apply"),
            )
        }
        WorkspaceError::Submission(SubmissionError::Unsafe(why)) => {
            finish(result, timer, Verdict::Rejected, format!("refused: {why}"))
        }
        WorkspaceError::PatchLimit { patch, why } => finish(
            result,
            timer,
            Verdict::PatchFailed,
            format!("{patch}: patching stopped at a limit ({why})"),
        ),
        other => Err(InfraError::Other(other.to_string())),
    }
}

fn build_and_boot(
    req: &Request,
    policy: &BuildPolicy,
    ws: &Workspace,
    result: &mut RunResult,
    timer: &mut Timer,
    progress: &mut dyn FnMut(&str),
) -> Result<(Verdict, String), InfraError> {
    let target = req.target;
    let build_log = req.out.join("build.log");
    timer.enter(Stage::Wait, progress);
    let lock = kbuild::lock().map_err(|e| InfraError::Other(e.to_string()))?;
    // The time limit starts once the lock is ours.
    let deadline = Instant::now() + policy.wall;
    timer.enter(Stage::Config, progress);
    let built = kbuild::configure(req.catalog, target, ws, policy, deadline).and_then(|()| {
        timer.enter(Stage::Build, progress);
        kbuild::build(target, ws, policy, &build_log, deadline)
    });
    drop(lock);
    let built = match built {
        Ok(b) => {
            if policy.trust == Trust::Trusted && req.overlay.is_none() {
                ws.mark_seed();
            }
            b
        }
        Err(BuildError::Failed {
            reason,
            first_errors,
        }) => {
            let first = first_errors
                .lines()
                .find(|l| l.contains("error"))
                .map(|l| l.trim().to_string())
                .unwrap_or(reason);
            result.details = first_errors;
            return Ok((Verdict::BuildFailed, first));
        }
        Err(BuildError::ConfigDropped(lost)) => {
            result.details = lost.join("\n");
            return Ok((
                Verdict::BuildFailed,
                format!("kernel config dropped {}", lost.join(", ")),
            ));
        }
        // `make tinyconfig` / `olddefconfig` refusing the patched tree (a
        // student's Kconfig with a syntax error) is the submission's doing.
        Err(BuildError::ConfigFailed {
            reason,
            first_errors,
        }) => {
            let first = first_errors
                .lines()
                .next()
                .map(|l| l.trim().to_string())
                .unwrap_or(reason);
            result.details = first_errors;
            return Ok((
                Verdict::BuildFailed,
                format!("the kernel configuration failed: {first}"),
            ));
        }
        Err(BuildError::Machine(why)) => return Err(InfraError::Machine(why)),
        Err(e) => return Err(InfraError::Other(e.to_string())),
    };

    timer.enter(Stage::Syscalls, progress);
    let assignment = &target.assignment;
    let map = syscalls::discover(
        &ws.src,
        &target.arch.syscall_tables,
        &target.arch.syscall_abis,
        &assignment.syscalls,
    )
    .map_err(|e| InfraError::Other(e.to_string()))?;
    result.syscalls = map.numbers.clone();
    result.missing_syscalls = map.missing.clone();
    if let Some(fixed) = assignment.fixed_for(&target.series_name) {
        result.wrong_syscall_numbers = syscalls::fixed_number_errors(&map, fixed);
    }

    let plan = Plan {
        assignment: assignment.name.clone(),
        syscalls: map.numbers,
        params: assignment.params.clone(),
        only: req.only.clone(),
        case_timeout_ms: assignment.case_timeout_ms,
        nonce: String::new(),
    };

    timer.enter(Stage::Guest, progress);
    let guest_bin = guest::build(&req.catalog.root, &target.arch)?;
    let init = std::fs::read(&guest_bin).map_err(io(&guest_bin))?;

    timer.enter(Stage::Boot, progress);
    let reference = req.submission.is_none() && req.overlay.is_none();
    let booted = boots::run(
        &boots::Spec {
            arch: &target.arch,
            kernel: &built.image,
            init: &init,
            plan,
            out: req.out,
        },
        &mut |initrd| choose_accel(&target.arch, &built.image, initrd, req.out, reference),
    )?;
    result.accel = booted.accel;
    result.details = booted.details;
    result.boots = booted.boots;
    result.tests = booted.judgement.tests;
    Ok(verdict::fixed_numbers_verdict(
        booted.judgement.verdict,
        booted.judgement.reason,
        &result.wrong_syscall_numbers,
    ))
}

/// KVM only where it has been seen to work: the first reference run on a
/// host with /dev/kvm boots its kernel once under KVM, and the answer is kept.
/// A student's or a mutant's run never probes (its kernel is not trusted).
fn choose_accel(
    arch: &crate::arch::Arch,
    kernel: &Path,
    initrd: &Path,
    out: &Path,
    reference: bool,
) -> Result<String, QemuError> {
    let probe_cache = paths::cache_root().join("kvm-probe");
    let accel = qemu::choose_accel(arch, &probe_cache);
    if !reference
        || accel != "tcg"
        || std::env::var_os("KGRADE_ACCEL").is_some()
        || !qemu::kvm_probe_due(arch, &probe_cache)
    {
        return Ok(accel);
    }
    let log = out.join("kvm-probe.log");
    let spec = qemu::BootSpec {
        arch,
        kernel,
        initrd,
        timeout: Duration::from_secs(20),
        console_cap: 1 << 20,
        log: &log,
        accel: "kvm",
    };
    let works = qemu::probe_kvm(&spec, &probe_cache)?;
    Ok(if works { "kvm".into() } else { "tcg".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A student's kernel never boots under the KVM probe: only the reference
    /// run may (here the boot would fail at once: no such kernel).
    #[test]
    fn only_the_reference_run_may_probe_kvm() {
        let catalog = Catalog::load(&paths::project_root()).unwrap();
        let target = catalog.target("tracker/6.1/x86_64").unwrap();
        let out = tempfile::tempdir().unwrap();
        let (k, i) = (
            Path::new("/nonexistent/bzImage"),
            Path::new("/nonexistent/i"),
        );
        let accel = choose_accel(&target.arch, k, i, out.path(), false).unwrap();
        assert!(["tcg", "kvm"].contains(&accel.as_str()));
        assert!(!out.path().join("kvm-probe.log").exists());
    }
}
