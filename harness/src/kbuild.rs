//! Configuring and building the kernel out of tree, with ccache, one build at
//! a time on the machine (an flock shared by every kgrade process).

use crate::kconfig;
use crate::paths;
use crate::process::{self, ToolError};
use crate::target::{Catalog, Target};
use crate::workspace::Workspace;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kernel config lost wanted options after olddefconfig:\n  {}", .0.join("\n  "))]
    ConfigDropped(Vec<String>),
    #[error("kernel build failed; first errors:\n{first_errors}")]
    Failed { first_errors: String, log: PathBuf },
    #[error("cannot read config fragment: {0}")]
    Fragment(std::io::Error),
    #[error("config fragments {names}: {error}")]
    FragmentSyntax {
        names: String,
        error: kconfig::FragmentError,
    },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A built kernel.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: PathBuf,
    pub log: PathBuf,
}

fn make(target: &Target, ws: &Workspace) -> Command {
    let mut cmd = Command::new("flock");
    let lock = paths::build_lock();
    if let Some(dir) = lock.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let cc = format!("{}gcc", target.arch.cross_compile);
    let cc = if process::have("ccache") {
        format!("ccache {cc}")
    } else {
        cc
    };
    cmd.arg(lock)
        .arg("make")
        .arg("-C")
        .arg(&ws.src)
        .arg(format!("O={}", ws.build.display()))
        .arg(format!("ARCH={}", target.arch.make_arch))
        .arg(format!("CC={cc}"))
        .env("CCACHE_DIR", paths::cache_root().join("ccache"))
        // Paths relative to the workspace in ccache's keys: every submission's
        // workspace has the same layout, so a new one reuses the objects of
        // the last (a warm cold build instead of a full one).
        .env("CCACHE_BASEDIR", &ws.dir)
        .env("CCACHE_NOHASHDIR", "1")
        // Reproducible images: the same source gives the same kernel.
        .env("KBUILD_BUILD_TIMESTAMP", "2000-01-01")
        .env("KBUILD_BUILD_USER", "kgrade")
        .env("KBUILD_BUILD_HOST", "kgrade");
    if !target.arch.cross_compile.is_empty() {
        cmd.arg(format!("CROSS_COMPILE={}", target.arch.cross_compile));
    }
    cmd
}

/// `tinyconfig` + fragments + `olddefconfig`, verified. Skipped when the
/// fragments are unchanged since the last configure of this build dir.
pub fn configure(catalog: &Catalog, target: &Target, ws: &Workspace) -> Result<(), BuildError> {
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
    let stamp = ws.build.join(".kgrade-fragments");
    let config = ws.build.join(".config");
    if config.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_text.as_str())
    {
        return Ok(());
    }
    let declared = if wanted.values().any(|w| w.if_present) {
        kconfig::declared_symbols(&ws.src, kconfig::srcarch(&target.arch.make_arch)).map_err(
            |source| BuildError::Io {
                path: ws.src.clone(),
                source,
            },
        )?
    } else {
        Default::default()
    };
    let wants = kconfig::applicable(&wanted, |s| declared.contains(s));
    let wanted_text = kconfig::fragment_text(&wants);
    std::fs::create_dir_all(&ws.build).map_err(|source| BuildError::Io {
        path: ws.build.clone(),
        source,
    })?;
    process::run_ok(make(target, ws).arg("tinyconfig"))?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .map_err(|source| BuildError::Io {
            path: config.clone(),
            source,
        })?;
    f.write_all(wanted_text.as_bytes())
        .map_err(|source| BuildError::Io {
            path: config.clone(),
            source,
        })?;
    drop(f);
    process::run_ok(make(target, ws).arg("olddefconfig"))?;
    let final_text = std::fs::read_to_string(&config).map_err(|source| BuildError::Io {
        path: config.clone(),
        source,
    })?;
    let lost = kconfig::dropped(&wants, &final_text);
    if !lost.is_empty() {
        return Err(BuildError::ConfigDropped(lost));
    }
    std::fs::write(&stamp, stamp_text).map_err(|source| BuildError::Io {
        path: stamp,
        source,
    })?;
    Ok(())
}

/// Builds the kernel image; the whole log is kept in `log`.
pub fn build(target: &Target, ws: &Workspace, log: &Path) -> Result<Built, BuildError> {
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let log_file = std::fs::File::create(log).map_err(|source| BuildError::Io {
        path: log.into(),
        source,
    })?;
    let err_file = log_file.try_clone().map_err(|source| BuildError::Io {
        path: log.into(),
        source,
    })?;
    let mut cmd = make(target, ws);
    cmd.arg(format!("-j{jobs}"))
        .arg(&target.arch.make_target)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    let status = cmd.status().map_err(|source| ToolError::Spawn {
        program: "make".into(),
        source,
    })?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if !status.success() {
        return Err(BuildError::Failed {
            first_errors: first_errors(&text),
            log: log.into(),
        });
    }
    Ok(Built {
        image: ws.build.join(&target.arch.image),
        log: log.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
