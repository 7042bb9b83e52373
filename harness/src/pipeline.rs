//! One run, stage after stage: source -> workspace -> config -> build ->
//! syscalls -> plan -> guest + initramfs -> boot -> console -> verdicts.
//!
//! Problems with the submission become verdicts in the result; only problems
//! with this machine (no QEMU, no kernel source, a full disk) are errors.

use crate::boots::{self, BootError};
use crate::guest::{self, GuestError};
use crate::ioerr::{io, IoError};
use crate::kbuild::{self, BuildError, BuildPolicy, CompilerCache, Trust};
use crate::paths;
use crate::qemu::{self, QemuError};
use crate::report::{KernelInfo, RunResult};
use crate::sandbox::Sandbox;
use crate::source::{self, KernelSource, SourceError};
use crate::submission::{self, PatchFile, Submission, SubmissionError};
use crate::syscalls;
use crate::target::{Catalog, Target};
use crate::verdict::{self, Stopped};
use crate::workspace::{self, Workspace, WorkspaceError, WorkspaceLock};
use kgrade_protocol::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What stops a run that is not the submission's doing: this machine, its
/// tools or the project's own files.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The kernel source could not be found, fetched or unpacked.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The guest /init could not be found or built.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// QEMU could not be started or run.
    #[error(transparent)]
    Qemu(#[from] QemuError),
    /// The boots could not be run or recorded.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The assignment has no reference solution for this kernel.
    #[error("no reference solution for {assignment} in {looked}")]
    NoReference {
        /// The assignment.
        assignment: String,
        /// The directories looked in.
        looked: String,
    },
    /// The build sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// The build failed for a reason of this machine's (full disk, OOM
    /// killer, a missing tool).
    #[error("this machine failed the build: {0}")]
    Machine(String),
    /// The reference solution could not be read.
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    /// The workspace could not be prepared (not a patch of the submission's).
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The guest ran on another kernel than the one just built.
    #[error(
        "the booted kernel is not the one this run built: the build wrote \
         UTS_VERSION \"{built}\", the guest saw \"{booted}\""
    )]
    OtherKernel {
        /// What the build wrote.
        built: String,
        /// What the guest's uname said.
        booted: String,
    },
    /// The mutant overlay could not be taken off the workspace.
    #[error("cannot remove {name}: {source}")]
    Overlay {
        /// The overlay's name.
        name: String,
        /// Why not.
        source: WorkspaceError,
    },
    /// The kernel build failed for a reason not the submission's.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The tree has none of the arch's syscall tables.
    #[error(transparent)]
    Syscalls(#[from] syscalls::NoTable),
    /// Anything else, as a message.
    #[error("{0}")]
    Other(String),
    /// I/O on a file of the run.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What to run.
#[derive(Clone)]
pub struct Request<'a> {
    /// The catalogue of assignments and targets.
    pub catalog: &'a Catalog,
    /// The target to grade on.
    pub target: &'a Target,
    /// A submission path; `None` grades the reference solution.
    pub submission_path: Option<&'a Path>,
    /// A kernel tree or tarball instead of the series' own.
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
    /// A trusted build puts its objects into the shared compiler cache for
    /// the builds that follow (a class's students, mutants); otherwise it
    /// compiles with gcc alone unless the cache already holds this tree
    /// ([`kbuild::CompilerCache`]).
    pub fill_cache: bool,
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
pub fn reference_patches_dir(
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

/// A target's workspace for these patches: keyed by the pristine tree and
/// the exact patches applied.
fn workspace_dir(target: &Target, src: &KernelSource, sub: &Submission) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(src.tree.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(sub.digest().as_bytes());
    paths::cache_root()
        .join("workspaces")
        .join(paths::component(&target.name))
        .join(format!(
            "{}-{}",
            src.version,
            &source::hex(&h.finalize())[..16]
        ))
}

/// The stages of a run, in order: one vocabulary for the progress display
/// and for `timings_s` in result.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Finding (or fetching) the kernel source.
    Source,
    /// Reading the submission.
    Submission,
    /// Copying the tree and applying the patches.
    Patch,
    /// Waiting for the machine-wide build lock.
    Wait,
    /// Configuring the kernel.
    Config,
    /// Building the kernel.
    Build,
    /// Finding the syscalls in the patched tree.
    Syscalls,
    /// Building (or finding) the guest /init.
    Guest,
    /// Booting the kernel and running the tests.
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
struct Timer<'a> {
    progress: &'a mut dyn FnMut(&str),
    seconds: BTreeMap<String, f64>,
    current: Option<(Stage, Instant)>,
}

impl<'a> Timer<'a> {
    fn new(progress: &'a mut dyn FnMut(&str)) -> Self {
        Timer {
            progress,
            seconds: BTreeMap::new(),
            current: None,
        }
    }

    /// Shows `stage` in the progress display and times it from now.
    fn enter(&mut self, stage: Stage) {
        self.close();
        (self.progress)(stage.label());
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

/// Runs one target on one submission: resolves the kernel source, runs the
/// [`stages`], and builds and writes the one `RunResult`.
pub fn run(req: &Request, progress: &mut dyn FnMut(&str)) -> Result<RunResult, InfraError> {
    let target = req.target;
    std::fs::create_dir_all(req.out).map_err(io(req.out))?;
    let mut timer = Timer::new(progress);
    timer.enter(Stage::Source);
    let src = source::resolve(
        &target.series_name,
        &target.series,
        req.kernel_src,
        &paths::cache_root(),
    )?;
    let ended = stages(req, &src, &mut timer)?;
    let result = run_result(target, &src, ended, timer.into_seconds());
    result.write(req.out).map_err(io(req.out))?;
    Ok(result)
}

/// The run's stages in order, each a function from the last one's typed
/// output to the next one's input. A stage stops the run with a [`Halt`]:
/// a verdict when the submission is at fault, an error when this machine is.
fn stages(req: &Request, src: &KernelSource, timer: &mut Timer) -> Result<Ended, InfraError> {
    timer.enter(Stage::Submission);
    let sub = match read_submission(req, src) {
        Ok(sub) => sub,
        Err(halt) => return halt.ended(submitted_path(req)),
    };
    let mut patched = None;
    let outcome = (|| {
        timer.enter(Stage::Patch);
        let patched = patched.insert(patch(req, src, &sub)?);
        timer.enter(Stage::Wait);
        let locked = wait_for_build_lock(patched)?;
        timer.enter(Stage::Config);
        let configured = configure(req, locked)?;
        timer.enter(Stage::Build);
        let built = build(req, configured)?;
        timer.enter(Stage::Syscalls);
        let wired = find_syscalls(req, built)?;
        timer.enter(Stage::Guest);
        let ready = build_guest(req, wired)?;
        timer.enter(Stage::Boot);
        boot(req, ready)
    })();
    // The overlay comes off however the stages after patching ended.
    if let Some(patched) = patched {
        patched.remove_overlay(req, src)?;
    }
    match outcome {
        Ok(judged) => Ok(Ended::Judged {
            origin: sub.origin,
            judged,
        }),
        Err(halt) => halt.ended(sub.origin),
    }
}

/// How the stages ended: the submission's origin with the verdict's grounds.
enum Ended {
    Judged { origin: String, judged: Judged },
    Stopped { origin: String, stop: Stopped },
}

/// What stops the stages early.
enum Halt {
    /// The submission's doing: the run ends with a verdict.
    Stopped(Stopped),
    /// This machine's: the run ends with an error.
    Infra(InfraError),
}

impl Halt {
    fn ended(self, origin: String) -> Result<Ended, InfraError> {
        match self {
            Halt::Stopped(stop) => Ok(Ended::Stopped { origin, stop }),
            Halt::Infra(e) => Err(e),
        }
    }
}

impl From<IoError> for Halt {
    fn from(e: IoError) -> Halt {
        Halt::Infra(e.into())
    }
}

impl From<InfraError> for Halt {
    fn from(e: InfraError) -> Halt {
        Halt::Infra(e)
    }
}

/// Patching stops at the submission's fault when a patch does not apply,
/// is refused or breaks a limit; anything else is this machine's.
impl From<WorkspaceError> for Halt {
    fn from(e: WorkspaceError) -> Halt {
        Halt::Stopped(match e {
            WorkspaceError::DoesNotApply {
                patch,
                output,
                rejects,
            } => Stopped::DoesNotApply {
                patch,
                output,
                rejects,
            },
            WorkspaceError::Submission(SubmissionError::Unsafe(why)) => Stopped::Refused(why),
            WorkspaceError::PatchLimit { patch, why } => Stopped::PatchLimit { patch, why },
            other => return Halt::Infra(InfraError::Workspace(other)),
        })
    }
}

/// A build stops at the submission's fault when the tree does not
/// configure or build; `Machine` and the rest are this machine's.
impl From<BuildError> for Halt {
    fn from(e: BuildError) -> Halt {
        Halt::Stopped(match e {
            BuildError::Failed {
                reason,
                first_errors,
            } => Stopped::BuildFailed {
                reason,
                first_errors,
            },
            BuildError::ConfigDropped(lost) => Stopped::ConfigDropped(lost),
            // `make tinyconfig` / `olddefconfig` refusing the patched tree (a
            // student's Kconfig with a syntax error) is the submission's doing.
            BuildError::ConfigFailed {
                reason,
                first_errors,
            } => Stopped::ConfigFailed {
                reason,
                first_errors,
            },
            BuildError::Machine(why) => return Halt::Infra(InfraError::Machine(why)),
            other => return Halt::Infra(InfraError::Build(other)),
        })
    }
}

/// The submission as given on the command line (empty for the reference).
fn submitted_path(req: &Request) -> String {
    req.submission_path
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The submission read (stage `Submission`).
struct Loaded {
    sub: Submission,
    /// Where it came from, with the overlay's name: result.json's `submission`.
    origin: String,
    /// The reference and mutants are ours; anything else is a student's.
    trusted: bool,
}

fn read_submission(req: &Request, src: &KernelSource) -> Result<Loaded, Halt> {
    let target = req.target;
    let loaded = match req.submission_path {
        Some(path) => submission::load(path),
        None => submission::load(&reference_patches_dir(
            &req.catalog.root,
            &target.assignment.name,
            src,
            &target.series_name,
        )?),
    };
    let sub = match loaded {
        Ok(sub) => sub,
        Err(SubmissionError::Unsafe(why)) => return Err(Halt::Stopped(Stopped::Refused(why))),
        Err(e) if req.submission_path.is_some() => {
            return Err(Halt::Stopped(Stopped::Unreadable(e.to_string())))
        }
        Err(e) => return Err(Halt::Infra(InfraError::Submission(e))),
    };
    let origin = match req.overlay {
        Some(o) => format!("{} + {}", sub.origin, o.name),
        None => sub.origin.clone(),
    };
    Ok(Loaded {
        sub,
        origin,
        trusted: req.submission_path.is_none(),
    })
}

/// The patched tree (stage `Patch`), held for the rest of the run.
struct Patched {
    ws: Workspace,
    policy: BuildPolicy,
    /// [`cache_tree_key`] of this run.
    tree: String,
    /// The build dir held nothing before this run's build.
    fresh_build: bool,
    // Declared after `ws` and before the lock, so the tree is removed
    // after use but before the lock goes.
    _discard: Option<DiscardOnDrop>,
    _lock: WorkspaceLock,
}

fn patch(req: &Request, src: &KernelSource, sub: &Loaded) -> Result<Patched, Halt> {
    let target = req.target;
    let sandbox = Sandbox::for_run(sub.trusted, req.allow_unsandboxed).map_err(InfraError::from)?;
    let ws_dir = workspace_dir(target, src, &sub.sub);
    let lock = WorkspaceLock::acquire(&ws_dir).map_err(io(&ws_dir))?;
    let discard = req.discard_workspace.then(|| DiscardOnDrop(ws_dir.clone()));
    let ws = Workspace::prepare(&ws_dir, &src.tree, &sub.sub, &sandbox)?;
    let trust = if sub.trusted {
        Trust::Trusted
    } else {
        Trust::Untrusted
    };
    let tree = cache_tree_key(target, src);
    let cache = CompilerCache::choose(trust, req.fill_cache, kbuild::tree_cached(&tree));
    // A build asked to fill the cache starts from nothing, or from a seed
    // whose objects all went into it: objects make keeps without compiling
    // never reach the cache. (One that fills only because the tree is
    // cached already keeps its build dir: hits are cheap, a rebuild is not.)
    let must_fill = req.fill_cache && trust == Trust::Trusted;
    if must_fill && !ws.build_is_empty() && !ws.objects_cached() {
        ws.reset_build()?;
    }
    seed_build(req, src, &sub.sub, &ws_dir, &ws, must_fill)?;
    if cache != CompilerCache::Fill {
        ws.set_objects_cached(false)?;
    }
    let fresh_build = ws.build_is_empty();
    if let Some(overlay) = req.overlay {
        ws.add_overlay(overlay, &src.tree)?;
    }
    let policy = BuildPolicy {
        trust,
        wall: req
            .build_timeout
            .unwrap_or(Duration::from_secs(target.assignment.build_timeout_s)),
        cache,
    };
    Ok(Patched {
        ws,
        policy,
        tree,
        fresh_build,
        _discard: discard,
        _lock: lock,
    })
}

/// Names a kernel tree, arch and compiler for the compiler cache's record
/// of which trees a trusted build filled it with.
fn cache_tree_key(target: &Target, src: &KernelSource) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match &src.tarball_sha256 {
        Some(sha) => h.update(sha.as_bytes()),
        None => h.update(src.tree.to_string_lossy().as_bytes()),
    }
    h.update([0]);
    h.update(target.arch.cross_compile.as_bytes());
    format!(
        "{}-{}-{}",
        target.arch_name,
        src.version,
        &source::hex(&h.finalize())[..16]
    )
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
    cached_only: bool,
) -> Result<(), InfraError> {
    let target = req.target;
    let Ok(ours) = sub.touched_paths() else {
        return Ok(());
    };
    let same_first = std::iter::once(target).chain(req.catalog.targets.iter().filter(|t| {
        t.assignment.name != target.assignment.name
            && t.series_name == target.series_name
            && t.arch_name == target.arch_name
    }));
    for seed_target in same_first {
        let Ok(dir) = reference_patches_dir(
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
        let seed = workspace_dir(seed_target, src, &reference);
        if seed == ws_dir {
            continue;
        }
        let Ok(mut touched) = reference.touched_paths() else {
            continue;
        };
        touched.extend(ours.iter().cloned());
        touched.sort();
        touched.dedup();
        let seeded = ws.seed_build(&seed, &touched, cached_only).map_err(|e| {
            InfraError::Other(format!("seeding the build from {}: {e}", seed.display()))
        })?;
        if seeded {
            break;
        }
    }
    Ok(())
}

/// The machine-wide build lock taken (stage `Wait`): the build's time
/// limit starts now.
struct Locked<'p> {
    patched: &'p Patched,
    lock: paths::FileLock,
    deadline: Instant,
}

impl Patched {
    fn remove_overlay(&self, req: &Request, src: &KernelSource) -> Result<(), InfraError> {
        let Some(overlay) = req.overlay else {
            return Ok(());
        };
        self.ws
            .remove_overlay(overlay, &src.tree)
            .map_err(|source| InfraError::Overlay {
                name: overlay.name.clone(),
                source,
            })
    }
}

fn wait_for_build_lock(patched: &Patched) -> Result<Locked<'_>, Halt> {
    let lock = kbuild::lock()?;
    Ok(Locked {
        patched,
        lock,
        deadline: Instant::now() + patched.policy.wall,
    })
}

/// The kernel configured (stage `Config`), the build lock still held.
struct Configured<'p>(Locked<'p>);

fn configure<'p>(req: &Request, locked: Locked<'p>) -> Result<Configured<'p>, Halt> {
    let p = locked.patched;
    kbuild::configure(req.catalog, req.target, &p.ws, &p.policy, locked.deadline)?;
    Ok(Configured(locked))
}

/// The kernel built (stage `Build`); the build lock is released.
struct Built<'p> {
    patched: &'p Patched,
    kernel: kbuild::Built,
}

fn build<'p>(req: &Request, configured: Configured<'p>) -> Result<Built<'p>, Halt> {
    let Locked {
        patched,
        lock,
        deadline,
    } = configured.0;
    let built = kbuild::build(
        req.target,
        &patched.ws,
        &patched.policy,
        &req.out.join("build.log"),
        deadline,
    );
    drop(lock);
    let kernel = built?;
    // Every object is in the cache when this build filled it and the ones
    // it kept were there already.
    let cached = patched.policy.cache == CompilerCache::Fill
        && (patched.fresh_build || patched.ws.objects_cached());
    patched.ws.set_objects_cached(cached)?;
    if cached {
        kbuild::mark_tree_cached(&patched.tree)?;
    }
    if patched.policy.trust == Trust::Trusted && req.overlay.is_none() {
        patched.ws.mark_seed();
    }
    Ok(Built { patched, kernel })
}

/// The syscalls found in the patched tree and the plan for the guest
/// (stage `Syscalls`).
struct Wired {
    image: PathBuf,
    /// The UTS_VERSION its build wrote: what the guest must see.
    uts_version: Option<String>,
    missing: Vec<String>,
    /// Where the wiring departs from numbers the handout fixes.
    wrong: Vec<String>,
    plan: Plan,
}

fn find_syscalls(req: &Request, built: Built) -> Result<Wired, Halt> {
    let target = req.target;
    let assignment = &target.assignment;
    let map = syscalls::discover(
        &built.patched.ws.src,
        &target.arch.syscall_tables,
        &target.arch.syscall_abis,
        &assignment.syscalls,
    )
    .map_err(InfraError::from)?;
    let wrong = assignment
        .fixed_for(&target.series_name)
        .map(|fixed| syscalls::fixed_number_errors(&map, fixed))
        .unwrap_or_default();
    Ok(Wired {
        image: built.kernel.image,
        uts_version: built.kernel.uts_version,
        missing: map.missing,
        wrong,
        plan: Plan {
            assignment: assignment.name.clone(),
            syscalls: map.numbers,
            params: assignment.params.clone(),
            only: req.only.clone(),
            case_timeout_ms: assignment.case_timeout_ms,
            nonce: String::new(),
        },
    })
}

/// The guest's /init ready to go into the initramfs (stage `Guest`).
struct Ready {
    wired: Wired,
    init: Vec<u8>,
}

fn build_guest(req: &Request, wired: Wired) -> Result<Ready, Halt> {
    let guest_bin = guest::build(&req.catalog.root, &req.target.arch).map_err(InfraError::from)?;
    let init = std::fs::read(&guest_bin).map_err(io(&guest_bin))?;
    Ok(Ready { wired, init })
}

/// The kernel booted and its console judged (stage `Boot`).
struct Judged {
    syscalls: BTreeMap<String, u32>,
    missing: Vec<String>,
    wrong: Vec<String>,
    booted: boots::Booted,
}

fn boot(req: &Request, ready: Ready) -> Result<Judged, Halt> {
    let arch = &req.target.arch;
    let Ready { wired, init } = ready;
    let syscalls = wired.plan.syscalls.clone();
    let built_version = wired.uts_version;
    let reference = req.submission_path.is_none() && req.overlay.is_none();
    let booted = boots::run(
        &boots::Spec {
            arch,
            kernel: &wired.image,
            init: &init,
            plan: wired.plan,
            out: req.out,
        },
        &mut |initrd| choose_accel(arch, &wired.image, initrd, req.out, reference),
    )
    .map_err(InfraError::from)?;
    // A boot of any other image than the one this build linked (a stale
    // cached object, a race on the build dir) would grade the wrong code.
    if let Some(built) = built_version {
        if let Some(seen) = booted.kernel_versions.iter().find(|v| **v != built) {
            return Err(InfraError::OtherKernel {
                built,
                booted: seen.clone(),
            }
            .into());
        }
    }
    Ok(Judged {
        syscalls,
        missing: wired.missing,
        wrong: wired.wrong,
        booted,
    })
}

/// The one `RunResult` of a run, from how its stages ended.
fn run_result(
    target: &Target,
    src: &KernelSource,
    ended: Ended,
    timings_s: BTreeMap<String, f64>,
) -> RunResult {
    let kernel = Some(KernelInfo {
        version: src.version.clone(),
        canonical: target.series.canonical.version.clone(),
        substitute: src.substitute,
        origin: src.origin.clone(),
        tree: src.tree.display().to_string(),
        tarball_sha256: src.tarball_sha256.clone(),
    });
    match ended {
        Ended::Stopped { origin, stop } => {
            let decision = verdict::stopped(stop);
            RunResult {
                target: target.name.clone(),
                verdict: decision.verdict,
                reason: decision.reason,
                submission_origin: origin,
                kernel,
                syscalls: BTreeMap::new(),
                missing_syscalls: vec![],
                wrong_syscall_numbers: vec![],
                tests: vec![],
                timings_s,
                details: decision.details,
                accel: String::new(),
                boots: vec![],
            }
        }
        Ended::Judged { origin, judged: j } => {
            let boots::Booted {
                judgement,
                boots,
                details,
                accel,
                kernel_versions: _,
            } = j.booted;
            let decision = verdict::booted(judgement.verdict, judgement.reason, details, &j.wrong);
            RunResult {
                target: target.name.clone(),
                verdict: decision.verdict,
                reason: decision.reason,
                submission_origin: origin,
                kernel,
                syscalls: j.syscalls,
                missing_syscalls: j.missing,
                wrong_syscall_numbers: j.wrong,
                tests: judgement.tests,
                timings_s,
                details: decision.details,
                accel,
                boots,
            }
        }
    }
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

    /// A stage's error stops the run with a verdict only when the
    /// submission is at fault; this machine's faults stay errors.
    #[test]
    fn only_the_submissions_faults_become_verdicts() {
        let stopped = |h: Halt| matches!(h, Halt::Stopped(_));
        assert!(stopped(Halt::from(BuildError::Failed {
            reason: "make exited 2".into(),
            first_errors: String::new(),
        })));
        assert!(stopped(Halt::from(BuildError::ConfigDropped(vec![]))));
        assert!(!stopped(Halt::from(BuildError::Machine(
            "disk full".into()
        ))));
        assert!(stopped(Halt::from(WorkspaceError::Submission(
            SubmissionError::Unsafe("../x".into())
        ))));
        assert!(!stopped(Halt::from(WorkspaceError::Copy("EIO".into()))));
    }

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
