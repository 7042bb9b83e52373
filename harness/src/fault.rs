//! Whose fault a failed step is: the submission's (a verdict) or this
//! machine's (an error, retried by `--resume`, the gradebook cell left
//! empty). One table, consulted for every build and configure step.

use crate::sandbox::{Ended, Finished};
use std::path::Path;
use std::time::Duration;

/// Who a failure belongs to, and why, in words for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Submission(String),
    Machine(String),
}

/// How a sign of a machine failure is confirmed: a student's build can
/// print any text, so no line alone turns its failure into an error.
#[derive(Debug, Clone, Copy)]
enum Confirm {
    /// The kernel's OOM killer ran during the step.
    OomKill,
    /// The tool is not on this machine's PATH.
    Missing(&'static str),
    /// It is the step's first line: printed before make ran anything.
    FirstLine,
}

/// Output that means the machine failed, with how it is confirmed.
const MACHINE_SIGNS: &[(&str, Confirm, &str)] = &[
    (
        "Killed signal terminated program",
        Confirm::OomKill,
        "the compiler was killed by the OOM killer",
    ),
    ("bwrap: ", Confirm::FirstLine, "the sandbox failed"),
    ("setpriv: ", Confirm::FirstLine, "the sandbox failed"),
    (
        "make: ccache:",
        Confirm::Missing("ccache"),
        "ccache is missing",
    ),
    (
        "flex: not found",
        Confirm::Missing("flex"),
        "flex is missing",
    ),
    (
        "bison: not found",
        Confirm::Missing("bison"),
        "bison is missing",
    ),
    ("bc: not found", Confirm::Missing("bc"), "bc is missing"),
    (
        "gcc: not found",
        Confirm::Missing("gcc"),
        "a compiler is missing",
    ),
];

/// Free space below this on the workspace's filesystem makes any failure
/// the machine's: a student cannot be judged on a full disk.
const LOW_DISK: u64 = 512 << 20;

/// What the machine looked like around a step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    pub free_disk: Option<u64>,
    /// OOM kills on the whole machine while the step ran.
    pub oom_kills: u64,
}

impl Machine {
    /// The machine now, for the step that just ended; `oom_before` from
    /// [`oom_kills`] before it started.
    pub fn after(workspace: &Path, oom_before: u64) -> Machine {
        Machine {
            free_disk: free_bytes(workspace),
            oom_kills: oom_kills().saturating_sub(oom_before),
        }
    }
}

/// `None` when the step succeeded; otherwise whose fault it was.
pub fn judge_build(done: &Finished, machine: &Machine, wall: Duration) -> Option<Fault> {
    match &done.ended {
        Ended::Exited(s) if s.success() => None,
        Ended::TimedOut(_) => Some(Fault::Submission(format!(
            "build exceeded its time limit of {} s",
            wall.as_secs()
        ))),
        Ended::OutputExceeded(cap) => Some(Fault::Submission(format!(
            "build output exceeded {} MiB",
            cap >> 20
        ))),
        Ended::DiskExceeded { cap, .. } => Some(Fault::Submission(format!(
            "build used more than {} MiB of disk",
            cap >> 20
        ))),
        Ended::Exited(status) => Some(judge_exit(&done.output, machine, status)),
    }
}

fn judge_exit(output: &str, machine: &Machine, status: &std::process::ExitStatus) -> Fault {
    if let Some(free) = machine.free_disk.filter(|f| *f < LOW_DISK) {
        return Fault::Machine(format!("the disk is full ({} MiB free)", free >> 20));
    }
    let first = output.lines().next().unwrap_or("");
    for (sign, confirm, why) in MACHINE_SIGNS {
        let Some(line) = output.lines().find(|l| l.contains(sign)) else {
            continue;
        };
        let confirmed = match confirm {
            Confirm::OomKill => machine.oom_kills > 0,
            Confirm::Missing(tool) => !crate::process::have(tool),
            Confirm::FirstLine => first.starts_with(sign),
        };
        if confirmed {
            return Fault::Machine(format!("{why}: {}", truncate(line.trim(), 300)));
        }
    }
    Fault::Submission(format!("make failed ({status})"))
}

/// The kernel's count of OOM kills since boot (0 where /proc says nothing).
pub fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills the struct we own from a NUL-terminated path.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(output: &str) -> Finished {
        Finished {
            ended: Ended::Exited(std::process::ExitStatus::from_raw(2 << 8)),
            output: output.into(),
        }
    }

    const ROOMY: Machine = Machine {
        free_disk: Some(100 << 30),
        oom_kills: 0,
    };

    #[test]
    fn a_compiler_error_is_the_submissions() {
        let f = judge_build(
            &failed("kernel/tracker.c:3:1: error: expected ';'\nmake: *** Error 2\n"),
            &ROOMY,
            Duration::from_secs(60),
        );
        assert!(matches!(f, Some(Fault::Submission(_))), "{f:?}");
    }

    #[test]
    fn machine_failures_count_only_when_the_machine_confirms_them() {
        let oom = "x86_64-linux-gnu-gcc: fatal error: Killed signal terminated program cc1\n";
        let bwrap = "bwrap: Creating new namespace failed: Operation not permitted\n";
        let killed = Machine {
            oom_kills: 1,
            ..ROOMY
        };
        for (out, machine) in [(oom, &killed), (bwrap, &ROOMY)] {
            let f = judge_build(&failed(out), machine, Duration::from_secs(60));
            assert!(matches!(f, Some(Fault::Machine(_))), "{out}: {f:?}");
        }
        // The same words printed by a student's Makefile are the student's.
        for out in [
            oom.to_string(),
            format!("make: Entering directory '/kgrade/src'\n{bwrap}"),
            "/bin/sh: 1: flex: not found\n".to_string(),
            "fork.o: No space left on device\n".to_string(),
        ] {
            let f = judge_build(&failed(&out), &ROOMY, Duration::from_secs(60));
            assert!(matches!(f, Some(Fault::Submission(_))), "{out}: {f:?}");
        }
        let full = Machine {
            free_disk: Some(1 << 20),
            oom_kills: 0,
        };
        let f = judge_build(&failed("error: x\n"), &full, Duration::from_secs(60));
        assert!(matches!(f, Some(Fault::Machine(why)) if why.contains("disk is full")));
    }

    #[test]
    fn limits_are_the_submissions_with_the_limit_named() {
        let mut done = failed("");
        done.ended = Ended::TimedOut(Duration::from_secs(900));
        assert_eq!(
            judge_build(&done, &ROOMY, Duration::from_secs(900)),
            Some(Fault::Submission(
                "build exceeded its time limit of 900 s".into()
            ))
        );
        done.ended = Ended::OutputExceeded(256 << 20);
        assert_eq!(
            judge_build(&done, &ROOMY, Duration::from_secs(900)),
            Some(Fault::Submission("build output exceeded 256 MiB".into()))
        );
    }
}
