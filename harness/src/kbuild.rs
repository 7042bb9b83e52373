//! Configuring and building the kernel out of tree, in the sandbox, with
//! ccache, one build at a time on the machine (a lock shared by every kgrade
//! process, taken before the clock of the build's time limit starts).
//!
//! ccache: trusted builds (the reference, mutants) fill the shared cache;
//! a student's build reads it through a read-only mount and adds nothing, so
//! no submission can plant an object another run would link. A build goes
//! through the cache only where a later build can gain from it
//! ([`CompilerCache`]): a miss costs far more CPU than gcc alone.

use crate::fault::{self, Fault};
use crate::ioerr::{io, IoError};
use crate::kconfig;
use crate::paths;
use crate::sandbox::{self, Limits, Mount, Step};
use crate::target::{Catalog, Target};
use crate::workspace::{self, Workspace};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Disk a build may use (build dir and its /tmp): a tinyconfig build needs
/// a few hundred MB.
const DISK_CAP: u64 = 6 << 30;
/// A generated `.config` is tens of KB.
const CONFIG_CAP: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kernel config lost wanted options after olddefconfig:\n  {}", .0.join("\n  "))]
    ConfigDropped(Vec<String>),
    /// The submission's fault: it does not build, or broke a limit.
    #[error("kernel build failed: {reason}")]
    Failed {
        reason: String,
        first_errors: String,
    },
    /// `make tinyconfig` / `olddefconfig` refused the patched tree.
    #[error("the kernel configuration failed: {reason}")]
    ConfigFailed {
        reason: String,
        first_errors: String,
    },
    /// This machine's fault (full disk, OOM killer, missing tool).
    #[error("{0}")]
    Machine(String),
    #[error("cannot read config fragment: {0}")]
    Fragment(std::io::Error),
    #[error("config fragments {names}: {error}")]
    FragmentSyntax {
        names: String,
        error: kconfig::FragmentError,
    },
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A built kernel.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: PathBuf,
    /// Its UTS_VERSION (`#12 SMP 2000-01-01`), when the build wrote one.
    pub uts_version: Option<String>,
}

/// Whose code a build compiles: decides what it may write of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The reference solution and mutants.
    Trusted,
    /// A student's submission.
    Untrusted,
}

/// How a build uses the shared compiler cache (ccache, preprocessor mode).
///
/// Measured on 74 files of a 6.1 x86_64 tinyconfig build, one at a time,
/// empty cache, CPU seconds: gcc 15.5-17.2, ccache 24.8-25.2 (1.5x; without
/// its second preprocessor run 21.3-21.8, depend mode 17.7-18.4). A miss
/// pays off only when a later build hits: a student whose patch rewrites
/// headers ~400 objects include (a syscall numbered otherwise than in the
/// reference) then rebuilds those from the cache in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompilerCache {
    /// Reads and writes the cache: a trusted build whose objects the
    /// builds that follow will look for (a class's reference, mutants).
    Fill,
    /// Reads it only: a student's build, where a trusted build of the same
    /// tree and arch filled it.
    Read,
    /// gcc alone (ccache passes the command straight through, so the
    /// command lines, and with them kbuild's records, stay the same).
    Off,
}

impl CompilerCache {
    /// `fill`: the caller wants this build's objects cached for later
    /// builds; `tree_cached`: a trusted build of this tree and arch filled
    /// the cache before.
    pub fn choose(trust: Trust, fill: bool, tree_cached: bool) -> CompilerCache {
        match trust {
            Trust::Trusted if fill || tree_cached => CompilerCache::Fill,
            Trust::Untrusted if tree_cached => CompilerCache::Read,
            _ => CompilerCache::Off,
        }
    }
}

/// How long configure + build may take, who the code is from, and how it
/// uses the compiler cache.
#[derive(Debug, Clone, Copy)]
pub struct BuildPolicy {
    pub trust: Trust,
    pub wall: Duration,
    pub cache: CompilerCache,
}

fn ccache_dir() -> PathBuf {
    paths::cache_root().join("ccache-shared")
}

/// Says that a trusted build of `tree` (a key naming the kernel tree, arch
/// and compiler) filled the compiler cache. Kept in the cache's own
/// directory, so it travels with it (CI restores the cache alone).
fn tree_mark(tree: &str) -> PathBuf {
    ccache_dir()
        .join("kgrade-trees")
        .join(paths::component(tree))
}

/// Whether a trusted build of `tree` filled the compiler cache.
pub fn tree_cached(tree: &str) -> bool {
    tree_mark(tree).exists()
}

/// Records that a trusted build of `tree` filled the compiler cache.
pub fn mark_tree_cached(tree: &str) -> Result<(), BuildError> {
    let mark = tree_mark(tree);
    let dir = mark.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    Ok(std::fs::write(&mark, "").map_err(io(&mark))?)
}

/// The machine-wide build lock, held for configure and build together.
pub fn lock() -> Result<paths::FileLock, BuildError> {
    let lock = paths::build_lock();
    let dir = lock.parent().unwrap_or(Path::new("/"));
    Ok(paths::FileLock::acquire_file(&lock).map_err(io(dir))?)
}

fn ccache_mount(policy: &BuildPolicy) -> Mount {
    Mount {
        host: ccache_dir(),
        inside: "/kgrade/ccache".into(),
        // Only a trusted build writes; `choose` never gives one of a
        // student's Fill, and this says it once more.
        writable: policy.trust == Trust::Trusted && policy.cache == CompilerCache::Fill,
    }
}

/// The variable that tells ccache how to use the cache, if any.
fn ccache_mode(policy: &BuildPolicy) -> Option<&'static str> {
    match policy.cache {
        CompilerCache::Fill if policy.trust == Trust::Trusted => None,
        CompilerCache::Off => Some("CCACHE_DISABLE"),
        _ => Some("CCACHE_READONLY"),
    }
}

/// Everything a `make` of this workspace sees and runs with.
fn make_step(
    target: &Target,
    ws: &Workspace,
    policy: &BuildPolicy,
    args: &[&str],
    wall: Duration,
) -> Step<'static> {
    let sb = &ws.sandbox;
    let (src, build, tmp, ccache) = (
        ws.src_mount(false),
        ws.build_mount(),
        ws.tmp_mount(),
        ccache_mount(policy),
    );
    let cc = format!("{}gcc", target.arch.cross_compile);
    let cc = if crate::process::have("ccache") {
        format!("ccache {cc}")
    } else {
        cc
    };
    let mut argv: Vec<OsString> = vec![
        "-C".into(),
        sb.path(&src).into(),
        format!("O={}", sb.path(&build).display()).into(),
        format!("ARCH={}", target.arch.make_arch).into(),
        format!("CC={cc}").into(),
    ];
    if !target.arch.cross_compile.is_empty() {
        argv.push(format!("CROSS_COMPILE={}", target.arch.cross_compile).into());
    }
    argv.extend(args.iter().map(OsString::from));
    let mut env = workspace::base_env();
    env.extend([
        ("CCACHE_DIR".into(), sb.path(&ccache).into()),
        ("CCACHE_NOHASHDIR".into(), "1".into()),
        ("CCACHE_TEMPDIR".into(), "/tmp".into()),
        ("CCACHE_UMASK".into(), "022".into()),
        // ccache's default (preprocessor) mode, on purpose, although its
        // miss costs more CPU than gcc alone (kernel/fork.c, 8 interleaved
        // cold compiles: gcc 0.85 s, this mode 1.14 s, depend mode 0.84 s).
        // Depend mode keys an object on the headers the compiler's -MMD
        // list names, and an assembler `.incbin` is not among them: x86's
        // arch/x86/boot/compressed/piggy.S pulls in the compressed kernel,
        // so when two builds' compressed kernels had the same size, depend
        // mode served the older piggy.o and the bzImage booted an older
        // kernel (measured: 7 of 93 x86 mutant runs booted another
        // mutant's kernel). This mode sees `.incbin` in the preprocessed
        // text and never caches such a file. It also hits where a header
        // changed bytes but not meaning (a syscall numbered otherwise
        // than in the reference rewrites unistd_64.h, included by ~400
        // objects).
        // The cache shares the build's 6 GiB disk cap (a trusted build can
        // write to it): ccache keeps it under 2 GiB itself.
        ("CCACHE_MAXSIZE".into(), "2G".into()),
        // Reproducible images: the same source gives the same kernel.
        ("KBUILD_BUILD_TIMESTAMP".into(), "2000-01-01".into()),
        ("KBUILD_BUILD_USER".into(), "kgrade".into()),
        ("KBUILD_BUILD_HOST".into(), "kgrade".into()),
    ]);
    if !sb.is_on() {
        // Without the sandbox's fixed paths, keys relative to the workspace
        // let a new workspace reuse the last one's objects.
        env.push(("CCACHE_BASEDIR".into(), ws.dir.clone().into()));
        env.push(("TMPDIR".into(), ws.tmp.clone().into()));
    }
    env.extend(ccache_mode(policy).map(|v| (v.into(), "1".into())));
    Step {
        program: "make",
        args: argv,
        cwd: sb.path(&build),
        mounts: vec![src, build, tmp, ccache],
        env,
        limits: Limits::build(wall, DISK_CAP),
    }
}

/// Runs one `make` and judges how it ended ([`fault::judge_build`]).
fn run_make(
    target: &Target,
    ws: &Workspace,
    policy: &BuildPolicy,
    args: &[&str],
    deadline: Instant,
) -> Result<(sandbox::Finished, Option<Fault>), BuildError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let step = make_step(target, ws, policy, args, left.max(Duration::from_secs(1)));
    // The cache may have been filled by root (seeded, or an older kgrade).
    ws.sandbox.own_tree(&ccache_mount(policy).host)?;
    for m in step.mounts.iter().filter(|m| m.writable) {
        ws.sandbox.own(&m.host)?;
    }
    let oom_before = fault::oom_kills();
    let done = ws.sandbox.run(&step)?;
    let machine = fault::Machine::after(&ws.dir, oom_before);
    let verdict = fault::judge_build(&done, &machine, policy.wall);
    Ok((done, verdict))
}

/// `tinyconfig` + fragments + `olddefconfig`, verified. Skipped when the
/// fragments are unchanged since the last configure of this build dir.
pub fn configure(
    catalog: &Catalog,
    target: &Target,
    ws: &Workspace,
    policy: &BuildPolicy,
    deadline: Instant,
) -> Result<(), BuildError> {
    let paths: Vec<PathBuf> = target
        .fragments()
        .iter()
        .map(|f| catalog.fragment_path(f))
        .collect();
    let texts = kconfig::read_fragments(&paths).map_err(BuildError::Fragment)?;
    let wanted = kconfig::parse_fragments(&texts).map_err(|error| BuildError::FragmentSyntax {
        names: target.fragments().join(", "),
        error,
    })?;
    // The stamp names every option and whether it is conditional, so the
    // tree's Kconfig files are read only when the build dir must be
    // configured again (and only when some option is conditional).
    let mut stamp_text = kconfig::fragment_text(&kconfig::applicable(&wanted, |_| true));
    for (name, w) in &wanted {
        if w.if_present {
            stamp_text.push_str(&format!("{} {name}\n", kconfig::IF_PRESENT));
        }
    }
    // The stamp lives beside the build dir, where the build cannot write.
    let stamp = ws.dir.join(workspace::CONFIG_STAMP);
    let config_text = || sandbox::read_untrusted(&ws.build, ".config", CONFIG_CAP);
    if config_text().is_ok()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_text.as_str())
    {
        return Ok(());
    }
    let _ = std::fs::remove_file(&stamp);
    let declared = if wanted.values().any(|w| w.if_present) {
        kconfig::declared_symbols(&ws.src, kconfig::srcarch(&target.arch.make_arch))
            .map_err(io(&ws.src))?
    } else {
        Default::default()
    };
    let wants = kconfig::applicable(&wanted, |s| declared.contains(s));
    let wanted_text = kconfig::fragment_text(&wants);
    config_step(target, ws, policy, "tinyconfig", deadline)?;
    // Read (no links followed) and written anew: never appended to a file
    // the build could have replaced with a link.
    let mut config = config_text().map_err(io(&ws.build))?;
    config.extend_from_slice(wanted_text.as_bytes());
    let config_path = ws.build.join(".config");
    let _ = std::fs::remove_file(&config_path);
    std::fs::write(&config_path, &config).map_err(io(&config_path))?;
    config_step(target, ws, policy, "olddefconfig", deadline)?;
    let final_text = config_text().map_err(io(&ws.build))?;
    let lost = kconfig::dropped(&wants, &String::from_utf8_lossy(&final_text));
    if !lost.is_empty() {
        return Err(BuildError::ConfigDropped(lost));
    }
    std::fs::write(&stamp, stamp_text).map_err(io(&stamp))?;
    Ok(())
}

fn config_step(
    target: &Target,
    ws: &Workspace,
    policy: &BuildPolicy,
    what: &str,
    deadline: Instant,
) -> Result<(), BuildError> {
    let (done, verdict) = run_make(target, ws, policy, &[what], deadline)?;
    match verdict {
        None => Ok(()),
        Some(Fault::Machine(why)) => Err(BuildError::Machine(why)),
        Some(Fault::Submission(reason)) => Err(BuildError::ConfigFailed {
            reason,
            first_errors: first_errors(&done.output),
        }),
    }
}

/// Builds the kernel image; the log (head and tail when long) goes to `log`.
pub fn build(
    target: &Target,
    ws: &Workspace,
    policy: &BuildPolicy,
    log: &Path,
    deadline: Instant,
) -> Result<Built, BuildError> {
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let j = format!("-j{jobs}");
    let (done, verdict) = run_make(
        target,
        ws,
        policy,
        &[&j, &target.arch.make_target],
        deadline,
    )?;
    std::fs::write(log, &done.output).map_err(io(log))?;
    match verdict {
        None => {}
        Some(Fault::Machine(why)) => return Err(BuildError::Machine(why)),
        Some(Fault::Submission(reason)) => {
            return Err(BuildError::Failed {
                first_errors: first_errors(&done.output),
                reason,
            })
        }
    }
    let image = ws.build.join(&target.arch.image);
    // The image is the build's output: a link to a host file is no kernel.
    let regular = std::fs::symlink_metadata(&image)
        .map(|m| m.is_file())
        .unwrap_or(false);
    if !regular {
        return Err(BuildError::Failed {
            reason: format!("the build left no kernel image at {}", target.arch.image),
            first_errors: String::new(),
        });
    }
    Ok(Built {
        image,
        uts_version: uts_version(&ws.build),
    })
}

/// Lines of make's own output: `make[3]: ...` and kbuild's short log
/// (`  CC      kernel/fork.o`). Which of them surround an error depends on
/// what else `make -j` had running, and on what was already built.
fn is_make_noise(line: &str) -> bool {
    if line.starts_with("make") {
        return true;
    }
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    let word: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && rest[word.len()..].starts_with(' ')
}

/// `path:line: message`, as parsers and compilers report a place.
fn is_located(line: &str) -> bool {
    let mut parts = line.splitn(3, ':');
    let (Some(path), Some(num), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !path.is_empty()
        && !path.contains(' ')
        && !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit())
}

fn is_error(line: &str) -> bool {
    line.contains("error:") || line.contains("undefined reference") || line.contains("Error:")
}

/// The first compiler or linker errors of a build log, as the compiler
/// printed them (its `In function` context, the source line and caret, its
/// notes), without make's lines between them: what a student needs to see
/// first, and the same whatever else the build was doing.
pub fn first_errors(log: &str) -> String {
    let compiler: Vec<&str> = log.lines().filter(|l| !is_make_noise(l)).collect();
    let Some(first) = compiler.iter().position(|l| is_error(l)) else {
        // No compiler error: diagnostics of the `file:line:` kind (Kconfig's
        // parser), then make's own complaint (a missing file, a bad
        // Makefile), else the end of the log.
        let located: Vec<&str> = compiler
            .iter()
            .copied()
            .filter(|l| is_located(l) && !l.contains(":warning:"))
            .take(12)
            .collect();
        if !located.is_empty() {
            return located.join("\n");
        }
        let lines: Vec<&str> = log.lines().collect();
        let complaints: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| {
                l.starts_with("make")
                    && l.contains("***")
                    && !l.contains("] Error ")
                    && !l.contains("Waiting for unfinished jobs")
            })
            .take(8)
            .collect();
        if !complaints.is_empty() {
            return complaints.join("\n");
        }
        let start = lines.len().saturating_sub(15);
        return lines[start..].join("\n");
    };
    // Back to the start of this diagnostic: its "In function" / "In file
    // included from" / "from" lines.
    let mut start = first;
    while start > 0 {
        let prev = compiler[start - 1];
        let context = prev.contains(": In function")
            || prev.contains("In file included from")
            || prev.trim_start().starts_with("from ")
            || prev.contains(": At top level:")
            || prev.contains(": in function");
        if !context {
            break;
        }
        start -= 1;
    }
    compiler[start..]
        .iter()
        .take(24)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The UTS_VERSION the build dir's last link wrote (6.x keep it in
/// utsversion.h, 4.15 in compile.h). Read as untrusted text: the build wrote it.
pub fn uts_version(build: &Path) -> Option<String> {
    [
        "include/generated/utsversion.h",
        "include/generated/compile.h",
    ]
    .iter()
    .filter_map(|rel| sandbox::read_untrusted(build, rel, 64 << 10).ok())
    .find_map(|text| uts_version_in(&String::from_utf8_lossy(&text)))
}

fn uts_version_in(header: &str) -> Option<String> {
    header.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("#define UTS_VERSION")?.trim();
        Some(rest.strip_prefix('"')?.strip_suffix('"')?.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_build_fills_the_cache_and_only_a_filled_tree_is_read() {
        use CompilerCache::*;
        let choose = CompilerCache::choose;
        assert_eq!(choose(Trust::Trusted, true, false), Fill);
        assert_eq!(choose(Trust::Trusted, false, true), Fill);
        assert_eq!(choose(Trust::Trusted, false, false), Off);
        assert_eq!(choose(Trust::Untrusted, true, true), Read);
        assert_eq!(choose(Trust::Untrusted, true, false), Off);
        assert_eq!(choose(Trust::Untrusted, false, false), Off);
        let policy = |trust, cache| BuildPolicy {
            trust,
            wall: Duration::from_secs(1),
            cache,
        };
        assert!(ccache_mount(&policy(Trust::Trusted, Fill)).writable);
        for (trust, cache) in [
            (Trust::Trusted, Off),
            (Trust::Untrusted, Read),
            (Trust::Untrusted, Fill),
        ] {
            assert!(
                !ccache_mount(&policy(trust, cache)).writable,
                "{trust:?} {cache:?}"
            );
        }
    }

    #[test]
    fn uts_version_is_read_from_either_generated_header() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(uts_version(d.path()), None);
        let gen = d.path().join("include/generated");
        std::fs::create_dir_all(&gen).unwrap();
        // 4.15: compile.h holds it among other defines.
        std::fs::write(
            gen.join("compile.h"),
            "#define UTS_MACHINE \"i386\"\n#define UTS_VERSION \"#3 SMP 2000-01-01\"\n",
        )
        .unwrap();
        assert_eq!(uts_version(d.path()).as_deref(), Some("#3 SMP 2000-01-01"));
        // 6.x: utsversion.h, read first.
        std::fs::write(
            gen.join("utsversion.h"),
            "#define UTS_VERSION \"#64 SMP 2000-01-01\"\n",
        )
        .unwrap();
        assert_eq!(uts_version(d.path()).as_deref(), Some("#64 SMP 2000-01-01"));
        assert_eq!(uts_version_in("#define UTS_VERSION broken"), None);
    }

    #[test]
    fn first_errors_picks_the_compiler_error() {
        let log = "  CC      kernel/fork.o\n  CC      kernel/tracker/tracker.o\n\
                   kernel/tracker/tracker.c: In function 'x':\n\
                   kernel/tracker/tracker.c:10:2: error: 'foo' undeclared\n\
                   make[3]: *** [scripts/Makefile.build:250: kernel/tracker/tracker.o] Error 1\n";
        let e = first_errors(log);
        assert!(e.contains("error: 'foo' undeclared"), "{e}");
        assert!(e.contains("In function"), "{e}");
        assert!(!e.contains("fork.o"), "{e}");
    }

    #[test]
    fn first_errors_are_the_same_whatever_make_ran_around_them() {
        let error = "../src/kernel/tracker/tracker.c: In function 'fetch':\n\
                     ../src/kernel/tracker/tracker.c:246:19: error: 'target_pid' undeclared\n\
                     \x20 246 |         out.pid = target_pid;\n\
                     \x20     |                   ^~~~~~~~~~\n\
                     ../src/kernel/tracker/tracker.c:246:19: note: each undeclared identifier is reported only once\n";
        let cold = format!(
            "  CC      init/main.o\n  CC      kernel/fork.o\n{error}  CC      kernel/time/alarmtimer.o\n\
             make[4]: *** [/w/src/scripts/Makefile.build:255: kernel/tracker/tracker.o] Error 1\n\
             make[3]: *** Waiting for unfinished jobs....\n  AR      arch/x86/built-in.a\n"
        );
        let warm = format!("  CC      kernel/tracker/tracker.o\n{error}  AR      lib/built-in.a\nmake: *** [Makefile:250: __sub-make] Error 2\n");
        let e = first_errors(&cold);
        assert_eq!(e, first_errors(&warm));
        assert!(
            e.starts_with("../src/kernel/tracker/tracker.c: In function"),
            "{e}"
        );
        assert!(e.contains("^~~~~~~~~~") && e.contains("note: each"), "{e}");
        assert!(
            !e.contains("make") && !e.contains("  CC ") && !e.contains("  AR "),
            "{e}"
        );
    }

    #[test]
    fn kconfig_errors_are_shown_without_its_warnings() {
        let log = "init/Kconfig:1964: unknown statement \"def_bol\"\n\
                   init/Kconfig:1968:warning: ignoring unsupported character ','\n\
                   init/Kconfig:1968: unknown statement \"anonymous\"\n\
                   make[4]: *** [/w/src/scripts/kconfig/Makefile:77: allnoconfig] Error 1\n";
        assert_eq!(
            first_errors(log),
            "init/Kconfig:1964: unknown statement \"def_bol\"\ninit/Kconfig:1968: unknown statement \"anonymous\""
        );
    }

    #[test]
    fn without_a_compiler_error_make_says_why() {
        let log = "  CC      kernel/fork.o\nmake[3]: *** No rule to make target 'kernel/tracker/x.o', needed by 'kernel/tracker/built-in.a'.  Stop.\nmake[2]: *** [scripts/Makefile.build:500: kernel/tracker] Error 2\n";
        let e = first_errors(log);
        assert!(e.contains("No rule to make target"), "{e}");
        assert!(!e.contains("Error 2"), "{e}");
        assert!(!is_make_noise("  246 |         out.pid = target_pid;"));
        assert!(!is_make_noise(
            "ld: kernel/tracker.o: undefined reference to `x'"
        ));
        assert!(is_make_noise("  HOSTCC  scripts/basic/fixdep"));
        assert!(is_make_noise("  LD      vmlinux.o"));
    }
}
