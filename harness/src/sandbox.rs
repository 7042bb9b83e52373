//! The sandbox every step that runs or reads student-controlled code goes
//! through: copying and patching the tree, and every `make` of it.
//!
//! bubblewrap gives each step its own mount, pid, network, IPC and UTS
//! namespaces: the toolchain read-only, only the mounts the step names, no
//! network, a scrubbed environment, and every process it started gone when it
//! ends. When kgrade runs as root, bwrap keeps root only to set the namespaces
//! up and `setpriv` drops the step to the real `nobody` (a user namespace
//! would map the step back onto root, the owner of every host file); as
//! another user, a user namespace maps that user to `nobody` inside.
//! Limits: wall-clock, output, disk, and per-process rlimits (address space,
//! processes, file size): cgroups are not everywhere (v1, hybrid, delegated
//! or not), rlimits are.

use crate::ioerr::IoError;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The unprivileged user steps run as when kgrade is root.
pub const NOBODY: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the build sandbox cannot start: {0}. Install bubblewrap (`apt-get install bubblewrap`) and allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`), or pass --no-sandbox to grade without it (unsafe for untrusted submissions)")]
    Unavailable(String),
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Whether steps run inside bubblewrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    Bwrap {
        as_root: bool,
    },
    /// Trusted input (the reference, mutants), or `--no-sandbox`.
    Off,
}

/// A host directory or file seen at a fixed path inside the sandbox.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

impl Mount {
    pub fn ro(host: impl Into<PathBuf>, inside: &str) -> Mount {
        Mount {
            host: host.into(),
            inside: inside.into(),
            writable: false,
        }
    }
    pub fn rw(host: impl Into<PathBuf>, inside: &str) -> Mount {
        Mount {
            host: host.into(),
            inside: inside.into(),
            writable: true,
        }
    }
}

/// What one step may use.
#[derive(Debug, Clone)]
pub struct Limits {
    pub wall: Duration,
    /// Output kept: this much of the head and of the tail.
    pub log_keep: usize,
    /// Output beyond this ends the step.
    pub output_cap: u64,
    /// Bytes the writable mounts may hold together; checked every few seconds.
    pub disk_cap: Option<u64>,
    pub address_space: u64,
    pub processes: u64,
    pub file_size: u64,
}

impl Limits {
    /// For short steps: copying and patching a tree.
    pub fn short(wall: Duration) -> Limits {
        Limits {
            wall,
            log_keep: 64 << 10,
            output_cap: 16 << 20,
            disk_cap: None,
            address_space: 2 << 30,
            processes: 256,
            file_size: 256 << 20,
        }
    }

    /// For a kernel build.
    pub fn build(wall: Duration, disk_cap: u64) -> Limits {
        Limits {
            wall,
            log_keep: 512 << 10,
            output_cap: 256 << 20,
            disk_cap: Some(disk_cap),
            address_space: 4 << 30,
            processes: 4096,
            file_size: 1 << 30,
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Exited(ExitStatus),
    TimedOut(Duration),
    OutputExceeded(u64),
    DiskExceeded { used: u64, cap: u64 },
}

impl Ended {
    pub fn success(&self) -> bool {
        matches!(self, Ended::Exited(s) if s.success())
    }
}

/// A finished step: how it ended and its output, capped.
#[derive(Debug, Clone)]
pub struct Finished {
    pub ended: Ended,
    /// stdout and stderr interleaved; head and tail kept when it was long.
    pub output: String,
}

/// One step: a program, its arguments (paths as seen inside), the mounts and
/// the environment it gets (nothing else of kgrade's).
pub struct Step<'a> {
    pub program: &'a str,
    pub args: Vec<OsString>,
    pub mounts: Vec<Mount>,
    pub cwd: PathBuf,
    pub env: Vec<(String, OsString)>,
    pub limits: Limits,
}

impl Sandbox {
    /// The sandbox if this machine can start it; why not otherwise. Probed
    /// once per process.
    pub fn probe() -> Result<Sandbox, SandboxError> {
        static PROBE: OnceLock<Result<Sandbox, String>> = OnceLock::new();
        PROBE
            .get_or_init(probe_bwrap)
            .clone()
            .map_err(SandboxError::Unavailable)
    }

    /// The sandbox for a run: required for untrusted input unless the grader
    /// said `--no-sandbox`.
    pub fn for_run(trusted: bool, allow_unsandboxed: bool) -> Result<Sandbox, SandboxError> {
        match Sandbox::probe() {
            Ok(s) => Ok(s),
            Err(_) if trusted || allow_unsandboxed => Ok(Sandbox::Off),
            Err(e) => Err(e),
        }
    }

    pub fn is_on(&self) -> bool {
        matches!(self, Sandbox::Bwrap { .. })
    }

    /// Where a mount is seen by the step: its inside path in the sandbox,
    /// its host path without one.
    pub fn path(&self, m: &Mount) -> PathBuf {
        if self.is_on() {
            m.inside.clone()
        } else {
            m.host.clone()
        }
    }

    /// Makes a directory (created if needed) writable by the step's user;
    /// only the directory itself, never what is in it.
    pub fn own(&self, dir: &Path) -> Result<(), SandboxError> {
        self.own_with(dir, false)
    }

    /// As [`Sandbox::own`], and hands over a tree filled by root (a seeded or
    /// older cache) whole, once. Never for a source tree: its files are links
    /// to the pristine tree.
    pub fn own_tree(&self, dir: &Path) -> Result<(), SandboxError> {
        self.own_with(dir, true)
    }

    fn own_with(&self, dir: &Path, whole: bool) -> Result<(), SandboxError> {
        let fail = |source| {
            SandboxError::Io(IoError {
                path: dir.into(),
                source,
            })
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        if let Sandbox::Bwrap { as_root: true } = self {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(dir).map(|m| m.uid()).ok();
            if owner != Some(NOBODY) {
                if whole {
                    chown_tree(dir).map_err(fail)?;
                } else {
                    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    /// Runs one step to its end or its limit.
    pub fn run(&self, step: &Step) -> Result<Finished, SandboxError> {
        let mut cmd = match self {
            Sandbox::Bwrap { as_root } => bwrap_command(step, *as_root),
            Sandbox::Off => {
                let mut c = Command::new(step.program);
                c.args(&step.args).current_dir(&step.cwd);
                c
            }
        };
        cmd.env_clear();
        for (k, v) in &step.env {
            cmd.env(k, v);
        }
        supervise(cmd, step)
    }
}

/// Everything a compiler, make, perl and the kernel's scripts read outside
/// /usr: the dynamic loader's cache and the `alternatives` links (awk, cc).
const ETC: &[&str] = &[
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
];

fn bwrap_command(step: &Step, as_root: bool) -> Command {
    let mut c = Command::new("bwrap");
    if as_root {
        // Real root sets the namespaces up; setpriv then drops to nobody.
        c.args([
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]);
    } else {
        c.args(["--unshare-all", "--uid", "65534", "--gid", "65534"]);
    }
    c.args(["--die-with-parent", "--new-session", "--hostname", "kgrade"]);
    c.args(["--ro-bind", "/usr", "/usr"]);
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(top);
        match std::fs::read_link(&host) {
            Ok(target) => {
                c.arg("--symlink").arg(target).arg(&host);
            }
            Err(_) if host.is_dir() => {
                c.arg("--ro-bind").arg(&host).arg(&host);
            }
            Err(_) => {}
        }
    }
    // Directories bwrap makes for mount points are 0700 unless told.
    c.args(["--perms", "0755", "--dir", "/etc"]);
    for etc in ETC {
        c.args(["--ro-bind-try", etc, etc]);
    }
    c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    c.args(["--perms", "0755", "--dir", "/kgrade"]);
    for m in &step.mounts {
        c.arg(if m.writable { "--bind" } else { "--ro-bind" })
            .arg(&m.host)
            .arg(&m.inside);
    }
    c.arg("--chdir").arg(&step.cwd).arg("--");
    if as_root {
        c.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]);
    }
    c.arg(step.program).args(&step.args);
    c
}

fn probe_bwrap() -> Result<Sandbox, String> {
    if !crate::process::have("bwrap") {
        return Err("`bwrap` is not installed".into());
    }
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let sandbox = Sandbox::Bwrap { as_root };
    let step = Step {
        program: "id",
        args: vec!["-u".into()],
        mounts: vec![],
        cwd: "/".into(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        limits: Limits::short(Duration::from_secs(30)),
    };
    match sandbox.run(&step) {
        Ok(f) if f.ended.success() && f.output.trim() == NOBODY.to_string() => Ok(sandbox),
        Ok(f) => Err(format!(
            "a trial step failed: {}",
            f.output.lines().next().unwrap_or("no output").trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The head and tail of a step's output, and how much there was.
struct CappedLog {
    keep: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl CappedLog {
    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.keep {
            let n = (self.keep - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.keep);
        self.tail.drain(..excess);
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        let kept = (self.head.len() + self.tail.len()) as u64;
        if self.total > kept {
            s.push_str(&format!(
                "\n[kgrade: {} bytes of output cut here; {} in all]\n",
                self.total - kept,
                self.total
            ));
        }
        let (a, b) = self.tail.as_slices();
        s.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        s
    }
}

fn pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        Ok((
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

fn set_limits(limits: &Limits) -> impl FnMut() -> std::io::Result<()> {
    let rl = [
        (libc::RLIMIT_AS, limits.address_space),
        (libc::RLIMIT_NPROC, limits.processes),
        (libc::RLIMIT_FSIZE, limits.file_size),
        (libc::RLIMIT_CORE, 0),
    ];
    move || {
        for (resource, value) in rl {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            // SAFETY: setrlimit in the child before exec; no allocation.
            if unsafe { libc::setrlimit(resource, &lim) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // The step dies with kgrade, whichever way kgrade ends.
        // SAFETY: prctl in the child before exec.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        Ok(())
    }
}

fn spawn(mut cmd: Command, step: &Step) -> Result<(Child, std::fs::File), SandboxError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let spawn_err = |source| SandboxError::Spawn {
        program: program.clone(),
        source,
    };
    let (reader, writer) = pipe().map_err(spawn_err)?;
    let writer2 = writer.try_clone().map_err(spawn_err)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0);
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe { cmd.pre_exec(set_limits(&step.limits)) };
    let child = cmd.spawn().map_err(spawn_err)?;
    // The parent's copies of the write end went with `cmd`.
    drop(cmd);
    Ok((child, reader))
}

fn supervise(cmd: Command, step: &Step) -> Result<Finished, SandboxError> {
    let limits = &step.limits;
    let (mut child, mut reader) = spawn(cmd, step)?;
    let log = Arc::new(Mutex::new(CappedLog {
        keep: limits.log_keep,
        head: Vec::new(),
        tail: Default::default(),
        total: 0,
    }));
    let flooded = Arc::new(AtomicBool::new(false));
    let cap = limits.output_cap;
    let reader_thread = {
        let (log, flooded) = (log.clone(), flooded.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                l.push(&buf[..n]);
                if l.total > cap {
                    flooded.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let writable: Vec<PathBuf> = step
        .mounts
        .iter()
        .filter(|m| m.writable)
        .map(|m| m.host.clone())
        .collect();
    let start = Instant::now();
    let mut last_disk_check = start;
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ended::Exited(status),
            Ok(None) => {}
            Err(source) => {
                kill(&mut child);
                return Err(SandboxError::Spawn {
                    program: step.program.into(),
                    source,
                });
            }
        }
        if start.elapsed() > limits.wall {
            kill(&mut child);
            break Ended::TimedOut(limits.wall);
        }
        if flooded.load(Ordering::Relaxed) {
            kill(&mut child);
            break Ended::OutputExceeded(cap);
        }
        if let Some(cap) = limits.disk_cap {
            if last_disk_check.elapsed() > Duration::from_secs(3) {
                last_disk_check = Instant::now();
                let used: u64 = writable.iter().map(|p| disk_usage(p)).sum();
                if used > cap {
                    kill(&mut child);
                    break Ended::DiskExceeded { used, cap };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the step left running dies with its process group (and, in
    // bwrap, with its pid namespace when bwrap exits).
    kill_group(&child);
    let _ = reader_thread.join();
    let log = log.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Finished {
        ended,
        output: log.text(),
    })
}

fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling the process group the child leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

fn kill(child: &mut Child) {
    kill_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Hands every directory of a hard-link farm to `nobody`, leaving its files
/// (links to the pristine tree) root's and read-only to the steps. Refuses a
/// tree whose files nobody could write.
pub fn own_dirs_only(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::os::unix::fs::lchown(&d, Some(NOBODY), Some(NOBODY))?;
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_dir() {
                stack.push(e.path());
            } else if !meta.is_symlink() && (meta.uid() == NOBODY || meta.mode() & 0o002 != 0) {
                return Err(std::io::Error::other(format!(
                    "{} would be writable by the sandbox",
                    e.path().display()
                )));
            }
        }
    }
    Ok(())
}

fn chown_tree(dir: &Path) -> std::io::Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::os::unix::fs::lchown(&d, Some(NOBODY), Some(NOBODY))?;
        if !std::fs::symlink_metadata(&d)?.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&d)? {
            stack.push(e?.path());
        }
    }
    Ok(())
}

/// Bytes of disk a directory tree holds (allocated blocks), symlinks not
/// followed.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// Reads a file a student's step may have written or replaced: a regular
/// file reached through no symbolic link below `root`, at most `cap` bytes.
pub fn read_untrusted(root: &Path, rel: &str, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut cur = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            return Err(std::io::Error::other("`..` in path"));
        }
        cur.push(part);
        let meta = std::fs::symlink_metadata(&cur)?;
        if meta.file_type().is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link",
                cur.display()
            )));
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&cur)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            cur.display()
        )));
    }
    let mut out = Vec::new();
    file.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "{} is larger than {cap} bytes",
            cur.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(program: &'static str, args: &[&str], limits: Limits) -> Step<'static> {
        Step {
            program,
            args: args.iter().map(OsString::from).collect(),
            mounts: vec![],
            cwd: "/".into(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            limits,
        }
    }

    #[test]
    fn the_log_keeps_head_and_tail_and_says_what_was_cut() {
        let mut log = CappedLog {
            keep: 4,
            head: vec![],
            tail: Default::default(),
            total: 0,
        };
        log.push(b"abcdef");
        log.push(b"ghijkl");
        let text = log.text();
        assert!(text.starts_with("abcd"), "{text}");
        assert!(text.ends_with("ijkl"), "{text}");
        assert!(
            text.contains("4 bytes of output cut here; 12 in all"),
            "{text}"
        );
    }

    #[test]
    fn a_step_over_its_time_is_stopped_with_its_children() {
        let started = Instant::now();
        let f = Sandbox::Off
            .run(&step(
                "sh",
                &["-c", "sleep 30 & sleep 30"],
                Limits::short(Duration::from_millis(300)),
            ))
            .unwrap();
        assert_eq!(f.ended, Ended::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_flood_is_stopped_and_capped() {
        let mut limits = Limits::short(Duration::from_secs(20));
        limits.output_cap = 1 << 20;
        let f = Sandbox::Off
            .run(&step("sh", &["-c", "yes flood"], limits))
            .unwrap();
        assert_eq!(f.ended, Ended::OutputExceeded(1 << 20));
        assert!(f.output.len() < 200 << 10, "{}", f.output.len());
        assert!(f.output.contains("bytes of output cut here"));
    }

    #[test]
    fn the_environment_is_only_what_the_step_gets() {
        std::env::set_var("KGRADE_TEST_SECRET", "hunter2");
        let f = Sandbox::Off
            .run(&step("env", &[], Limits::short(Duration::from_secs(10))))
            .unwrap();
        assert!(f.ended.success());
        assert!(!f.output.contains("hunter2"), "{}", f.output);
        assert!(f.output.contains("PATH=/usr/bin:/bin"), "{}", f.output);
    }

    #[test]
    fn untrusted_reads_refuse_links_and_big_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/t.tbl"), "451 common x sys_x\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("a/l.tbl")).unwrap();
        std::os::unix::fs::symlink(d.path().join("a"), d.path().join("via")).unwrap();
        assert!(read_untrusted(d.path(), "a/t.tbl", 1 << 20).is_ok());
        assert!(read_untrusted(d.path(), "a/l.tbl", 1 << 20).is_err());
        assert!(read_untrusted(d.path(), "via/t.tbl", 1 << 20).is_err());
        assert!(read_untrusted(d.path(), "a/t.tbl", 4).is_err());
        assert!(read_untrusted(d.path(), "../etc/hostname", 1 << 20).is_err());
    }

    /// Needs bwrap and user namespaces: skipped (with a note) where absent.
    #[test]
    fn inside_the_sandbox_nothing_of_the_host_is_visible_or_writable() {
        let Ok(sb) = Sandbox::probe() else {
            eprintln!("no sandbox on this machine; skipped");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        sb.own(&ws).unwrap();
        let mut s = step(
            "sh",
            &[
                "-c",
                "id -u; echo x > /kgrade/ws/ok; echo x > /usr/evil 2>/dev/null && echo WROTE-USR; \
                 ls /root 2>/dev/null && echo SAW-ROOT; cat /etc/hostname 2>/dev/null && echo SAW-ETC; \
                 (exec 3<>/dev/tcp/1.1.1.1/80) 2>/dev/null && echo NET; \
                 ip -o link 2>/dev/null | grep -v ' lo:' | grep -q . && echo NIC; true",
            ],
            Limits::short(Duration::from_secs(20)),
        );
        s.mounts.push(Mount::rw(&ws, "/kgrade/ws"));
        let f = sb.run(&s).unwrap();
        assert!(f.ended.success(), "{}", f.output);
        assert_eq!(f.output.lines().next(), Some("65534"), "{}", f.output);
        for bad in ["WROTE-USR", "SAW-ROOT", "SAW-ETC", "NET", "NIC"] {
            assert!(!f.output.contains(bad), "{bad}: {}", f.output);
        }
        assert!(ws.join("ok").is_file());
    }
}
