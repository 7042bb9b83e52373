//! The test runner: every case in its own process group with a time limit,
//! and the helpers cases use to run and judge processes of their own.

use crate::sys::{self, ChildEnd, Syscalls};
use kgrade_protocol::Plan;
use libc::{c_int, pid_t};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// What a case gets: the plan and the student's syscalls.
pub struct Ctx {
    pub plan: Plan,
    pub sys: Syscalls,
}

impl Ctx {
    pub fn new(plan: Plan) -> Ctx {
        let sys = Syscalls::new(&plan.syscalls);
        Ctx { plan, sys }
    }
}

/// A test case: Err carries the failure message (first line: the reason;
/// further lines: diagnostics).
pub type CaseFn = fn(&Ctx) -> Result<(), String>;

/// One assignment's implementation of its catalogue cases.
pub struct Assignment {
    pub name: &'static str,
    /// Rejects a plan whose spec parameters this assignment cannot use.
    pub check_plan: fn(&Plan) -> Result<(), String>,
    /// Case functions by full name (`suite.case`).
    pub cases: &'static [(&'static str, CaseFn)],
}

impl Assignment {
    pub fn case(&self, full_name: &str) -> Option<CaseFn> {
        self.cases
            .iter()
            .find(|(n, _)| *n == full_name)
            .map(|(_, f)| *f)
    }
}

pub use crate::ktap::Outcome;

/// Where a panic in a case process reports to (-1: not in a case process).
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Turns a panic in a case process into that case's failure (instead of an
/// abort, and instead of a multi-line message on the console). In /init
/// itself a panic is printed as one KTAP note.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = format!("panic: {info}");
        let fd = REPORT_FD.load(Ordering::SeqCst);
        if fd >= 0 {
            sys::write_all(fd, text.as_bytes());
            sys::write_all(fd, b"\n");
            sys::exit_now(1);
        }
        crate::ktap::emit(&crate::ktap::note(&text));
    }));
}

/// How long to wait for a SIGKILLed process to go: one stuck in the kernel
/// (a deadlocked student syscall) never does, and must not stall the run.
const KILL_GRACE: Duration = Duration::from_secs(2);
const POLL_MS: u64 = 10;
/// A case's message is cut here: it is one KTAP line plus a few diagnostics.
const MAX_MESSAGE: usize = 4096;

enum Ended {
    Child(ChildEnd),
    Timeout { reaped: bool },
    Lost(i32),
}

/// Runs one case in a forked child (its own process group) with a time
/// limit; a kernel splat (BUG, WARNING, lockdep) printed while it ran fails
/// it, with the splat's first lines.
pub fn run_case(ctx: &Ctx, case: CaseFn, timeout_ms: u64) -> Outcome {
    // Not being able to watch the log only loses the splat check.
    let kmsg = sys::kmsg_open_at_end().ok();
    let outcome = run_case_unwatched(ctx, case, timeout_ms);
    let Some(fd) = kmsg else {
        return outcome;
    };
    let splat = splat_lines(&kmsg_messages(fd));
    sys::close(fd);
    match (outcome, splat) {
        (outcome, None) => outcome,
        (Outcome::Pass, Some(lines)) => Outcome::Fail(format!(
            "the kernel reported a bug while this case ran:\n{lines}"
        )),
        (Outcome::Fail(m), Some(lines)) => Outcome::Fail(format!(
            "{m}\nthe kernel reported a bug while this case ran:\n{lines}"
        )),
    }
}

/// The messages of the kernel log records readable from `fd`.
fn kmsg_messages(fd: c_int) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = sys::read(fd, &mut buf);
        if n == -i64::from(libc::EPIPE) {
            // Records were overwritten while we read: go on with the next.
            continue;
        }
        if n <= 0 {
            return out;
        }
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        if let Some((_, body)) = text.split_once(';') {
            out.push(body.lines().next().unwrap_or("").to_string());
        }
    }
}

/// Lines that start a kernel splat: a bug the kernel found in the code the
/// case ran, even when the case's own checks passed.
const SPLATS: &[&str] = &[
    "BUG: ",
    "WARNING: ",
    "possible recursive locking detected",
    "inconsistent lock state",
    "possible circular locking dependency",
];
/// How many records of a splat the message carries (the call trace's top).
const SPLAT_LINES: usize = 16;

/// The first splat among `messages`, its first lines joined, if any.
fn splat_lines(messages: &[String]) -> Option<String> {
    let start = messages
        .iter()
        .position(|m| SPLATS.iter().any(|s| m.contains(s)))?;
    Some(
        messages[start..]
            .iter()
            .take(SPLAT_LINES)
            .map(|m| m.trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn run_case_unwatched(ctx: &Ctx, case: CaseFn, timeout_ms: u64) -> Outcome {
    let (rd, wr) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("runner: pipe failed: errno {e}")),
    };
    let pid = match sys::fork() {
        Ok(0) => {
            sys::close(rd);
            sys::setpgid(0, 0);
            REPORT_FD.store(wr, Ordering::SeqCst);
            let code = match case(ctx) {
                Ok(()) => 0,
                Err(msg) => {
                    // One write of at most a pipe buffer: never blocks.
                    let mut bytes = msg.into_bytes();
                    bytes.truncate(MAX_MESSAGE);
                    bytes.push(b'\n');
                    sys::write_all(wr, &bytes);
                    1
                }
            };
            sys::exit_now(code);
        }
        Ok(pid) => pid,
        Err(e) => {
            sys::close(rd);
            sys::close(wr);
            return Outcome::Fail(format!("runner: fork failed: errno {e}"));
        }
    };
    sys::close(wr);
    // Also from this side, so the group exists before we might kill it.
    sys::setpgid(pid, pid);
    sys::set_nonblocking(rd);

    let start = Instant::now();
    // An absurd limit from the plan must not overflow the clock.
    let deadline = start
        .checked_add(Duration::from_millis(timeout_ms))
        .unwrap_or(start + Duration::from_secs(24 * 3600));
    let mut message = Vec::new();
    let mut eof = false;
    let ended = loop {
        eof |= drain(rd, &mut message);
        match sys::try_wait(pid) {
            Ok(Some((_, end))) => break Ended::Child(end),
            Ok(None) => {}
            Err(e) => break Ended::Lost(e),
        }
        let now = Instant::now();
        if now >= deadline {
            sys::kill(-pid, libc::SIGKILL);
            sys::kill(pid, libc::SIGKILL);
            break Ended::Timeout {
                reaped: wait_gone(pid),
            };
        }
        let ms = (deadline - now).as_millis().min(u128::from(POLL_MS)) as c_int;
        if eof {
            // The pipe reports hang-up at once from now on: sleep instead.
            std::thread::sleep(Duration::from_millis(ms as u64));
        } else {
            sys::poll_readable(rd, ms.max(1));
        }
    };
    drain(rd, &mut message);
    sys::close(rd);
    clean_up_group(pid);
    classify(&ended, &message, timeout_ms)
}

/// Reads what is available; true at end of file.
fn drain(fd: c_int, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let n = sys::read(fd, &mut buf);
        if n == 0 {
            return true;
        }
        if n < 0 {
            return false;
        }
        if into.len() < MAX_MESSAGE * 2 {
            into.extend_from_slice(&buf[..n as usize]);
        }
    }
}

/// Waits a bounded time for a killed child; false if it would not go.
fn wait_gone(pid: pid_t) -> bool {
    let until = Instant::now() + KILL_GRACE;
    loop {
        match sys::try_wait(pid) {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= until => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Kills what is left of a case's process group and reaps it: orphaned
/// grandchildren are re-parented to /init.
fn clean_up_group(pgid: pid_t) {
    sys::kill(-pgid, libc::SIGKILL);
    let until = Instant::now() + KILL_GRACE;
    loop {
        while let Ok(Some(_)) = sys::try_wait(-1) {}
        // ESRCH: no process (not even a zombie) is left in the group.
        if sys::kill(-pgid, 0) < 0 || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    while let Ok(Some(_)) = sys::try_wait(-1) {}
}

/// Maps how a case process ended (and what it reported) to the outcome.
fn classify(ended: &Ended, message: &[u8], timeout_ms: u64) -> Outcome {
    let text = String::from_utf8_lossy(message);
    let text = text.trim_end();
    match ended {
        Ended::Child(ChildEnd::Exited(0)) => Outcome::Pass,
        Ended::Child(ChildEnd::Exited(1)) if !text.is_empty() => Outcome::Fail(text.to_string()),
        Ended::Child(ChildEnd::Exited(1)) => Outcome::Fail("failed without a message".into()),
        Ended::Child(ChildEnd::Exited(n)) => Outcome::Fail(format!("exited with status {n}")),
        Ended::Child(ChildEnd::Signaled(s)) => {
            let mut m = format!("crashed: killed by signal {s}");
            if !text.is_empty() {
                m.push('\n');
                m.push_str(text);
            }
            Outcome::Fail(m)
        }
        Ended::Timeout { reaped } => {
            let mut m = format!("TIMEOUT after {timeout_ms} ms");
            if !reaped {
                m.push_str("\nthe case process did not die after SIGKILL (stuck in the kernel?)");
            }
            Outcome::Fail(m)
        }
        Ended::Lost(e) => Outcome::Fail(format!("runner: waitpid failed: errno {e}")),
    }
}

// ---------------------------------------------------------------- checks

/// A failed check, small and `Copy` so that it can be made and reported
/// without allocating (while the heap is being measured, or in a child that
/// must only make raw syscalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The call or value checked, e.g. `register(self)`.
    pub what: &'static str,
    /// Which part of it, when not the return value (e.g. a struct field).
    pub detail: &'static str,
    pub expected: i64,
    pub got: i64,
}

/// `Step::expected` for "any non-negative result" (an fd, a successful call).
pub const SUCCESS: i64 = i64::MIN;

/// `got` must equal `expected`.
pub fn check(what: &'static str, got: i64, expected: i64) -> Result<(), Step> {
    if got == expected {
        Ok(())
    } else {
        Err(Step {
            what,
            detail: "",
            expected,
            got,
        })
    }
}

/// `got` must be a success (not a negative errno); returns it.
pub fn check_ok(what: &'static str, got: i64) -> Result<i64, Step> {
    if got >= 0 {
        Ok(got)
    } else {
        Err(Step {
            what,
            detail: "",
            expected: SUCCESS,
            got,
        })
    }
}

/// A failed libc call (errno e) as a step.
pub fn errno_step(what: &'static str, e: i32) -> Step {
    Step {
        what,
        detail: "",
        expected: SUCCESS,
        got: -i64::from(e),
    }
}

/// A syscall result with the errno's name where it has one: `-22 (EINVAL)`.
pub fn show(v: i64) -> String {
    let name = match v {
        -1 => "EPERM",
        -2 => "ENOENT",
        -3 => "ESRCH",
        -4 => "EINTR",
        -9 => "EBADF",
        -10 => "ECHILD",
        -11 => "EAGAIN",
        -12 => "ENOMEM",
        -14 => "EFAULT",
        -16 => "EBUSY",
        -17 => "EEXIST",
        -22 => "EINVAL",
        -23 => "ENFILE",
        -24 => "EMFILE",
        -38 => "ENOSYS",
        -95 => "EOPNOTSUPP",
        _ => return v.to_string(),
    };
    format!("{v} ({name})")
}

fn step_message(what: &str, expected: i64, got: i64) -> String {
    if expected == SUCCESS {
        format!("{what}: expected success, got {}", show(got))
    } else {
        format!("{what}: expected {}, got {}", show(expected), show(got))
    }
}

impl From<Step> for String {
    fn from(s: Step) -> String {
        if s.detail.is_empty() {
            step_message(s.what, s.expected, s.got)
        } else {
            step_message(&format!("{}: {}", s.what, s.detail), s.expected, s.got)
        }
    }
}

/// Calls `call` twice with the address of a `value` in a guarded slot, the
/// fence poisoned with two different bytes (a written byte can equal one of
/// them, not both); returns the first call's result and the bytes written
/// past the struct.
pub fn measure_overrun<T: Copy>(
    slot: &sys::GuardedSlot,
    value: &T,
    call: impl Fn(usize) -> i64,
) -> (i64, usize) {
    let mut first = None;
    let mut over = 0;
    for poison in [sys::FENCE_POISON, sys::FENCE_ALT] {
        let r = call(slot.fill(value, poison));
        first.get_or_insert(r);
        over = over.max(slot.overrun(poison));
    }
    (first.unwrap_or(0), over)
}

/// Why an overrun of `over` bytes past a `size`-byte `what` is wrong.
pub fn overrun_message(call: &str, what: &str, size: usize, over: usize, fence: usize) -> String {
    let amount = if over >= fence {
        format!("at least {over} bytes (up to the guard page)")
    } else {
        format!("{over} bytes")
    };
    format!(
        "{call} wrote {amount} past the end of {what} ({size} bytes): it must copy \
         exactly sizeof({what}) to user space; a larger kernel struct copied over it \
         overwrites whatever the caller keeps after it"
    )
}

/// A failed step as it crosses a pipe: fixed size, no allocation.
const STEP_BYTES: usize = 128;
const STEP_TEXT: usize = STEP_BYTES - 17;
/// Record tags on a helper child's report pipe.
const TAG_ARMED: u8 = b'A';
const TAG_STEP: u8 = b'S';

fn encode_step(s: &Step) -> [u8; STEP_BYTES + 1] {
    let mut b = [0u8; STEP_BYTES + 1];
    b[0] = TAG_STEP;
    b[1..9].copy_from_slice(&s.expected.to_le_bytes());
    b[9..17].copy_from_slice(&s.got.to_le_bytes());
    let sep: &[u8] = if s.detail.is_empty() { b"" } else { b": " };
    let mut n = 0;
    for part in [s.what.as_bytes(), sep, s.detail.as_bytes()] {
        let take = part.len().min(STEP_TEXT - n);
        b[18 + n..18 + n + take].copy_from_slice(&part[..take]);
        n += take;
    }
    b[17] = n as u8;
    b
}

/// Reads a helper child's report: (armed, failed step as a message).
fn decode_report(bytes: &[u8]) -> (bool, Option<String>) {
    let mut armed = false;
    let mut failure = None;
    let mut rest = bytes;
    while let Some((&tag, tail)) = rest.split_first() {
        match tag {
            TAG_ARMED => {
                armed = true;
                rest = tail;
            }
            TAG_STEP if tail.len() >= STEP_BYTES => {
                let expected = i64::from_le_bytes(tail[0..8].try_into().unwrap_or([0; 8]));
                let got = i64::from_le_bytes(tail[8..16].try_into().unwrap_or([0; 8]));
                let n = usize::from(tail[16]).min(STEP_TEXT);
                let what = String::from_utf8_lossy(&tail[17..17 + n]);
                failure = Some(step_message(&what, expected, got));
                rest = &tail[STEP_BYTES..];
            }
            _ => {
                failure = Some("garbled report from a helper process".into());
                break;
            }
        }
    }
    (armed, failure)
}

/// Handed to a helper child: lets it say it reached the action under test.
pub struct Probe {
    fd: c_int,
}

impl Probe {
    /// Marks that the child is about to do what should (or should not) get
    /// it killed, so a kill that came earlier is not mistaken for a pass.
    pub fn arm(&self) {
        sys::write_all(self.fd, &[TAG_ARMED]);
    }
}

/// How a helper child ended and what it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildReport {
    pub pid: pid_t,
    pub end: ChildEnd,
    pub armed: bool,
    pub failure: Option<String>,
}

impl ChildReport {
    /// The child ran every step and exited normally.
    pub fn expect_survived(&self, doing: &str) -> Result<(), String> {
        match (self.end, &self.failure) {
            (ChildEnd::Exited(0), _) => Ok(()),
            (ChildEnd::Exited(_), Some(f)) => Err(format!("helper process: {f}")),
            (ChildEnd::Exited(n), None) => Err(format!("helper process exited with status {n}")),
            (ChildEnd::Signaled(s), _) => Err(format!(
                "{} {}{doing}",
                killed_by(s),
                if self.armed { "while " } else { "before " }
            )),
        }
    }

    /// The child was killed by SIGKILL after it armed its probe.
    pub fn expect_sigkill(&self, doing: &str) -> Result<(), String> {
        match (self.end, &self.failure) {
            (ChildEnd::Signaled(libc::SIGKILL), _) if self.armed => Ok(()),
            (ChildEnd::Signaled(libc::SIGKILL), _) => {
                Err(format!("killed by SIGKILL too early, before {doing}"))
            }
            (ChildEnd::Signaled(s), _) => Err(format!("{} instead of SIGKILL", killed_by(s))),
            (ChildEnd::Exited(0), _) => Err(format!("not killed after {doing}")),
            (ChildEnd::Exited(_), Some(f)) => Err(format!("helper process: {f}")),
            (ChildEnd::Exited(n), None) => Err(format!("helper process exited with status {n}")),
        }
    }
}

fn killed_by(sig: i32) -> String {
    if sig == libc::SIGKILL {
        "killed by SIGKILL".into()
    } else {
        format!("killed by signal {sig}")
    }
}

/// Runs `f` in a forked child and waits for it. The child ends with
/// `_exit`: 0 when f succeeds, 1 after reporting the failed step.
pub fn in_child(f: impl FnOnce(&Probe) -> Result<(), Step>) -> Result<ChildReport, String> {
    spawn_reporting(
        || sys::fork().map_err(|e| format!("fork failed: errno {e}")),
        f,
    )
}

/// Like [`in_child`], but the child gets exactly `pid` (clone3 with set_tid);
/// f must make raw syscalls only (no allocation, no libc locks).
pub fn in_child_with_pid(
    pid: pid_t,
    f: impl FnOnce(&Probe) -> Result<(), Step>,
) -> Result<ChildReport, String> {
    spawn_reporting(
        || {
            sys::clone_with_pid(pid)
                .map_err(|e| format!("clone3 with set_tid {pid} failed: {}", show(-i64::from(e))))
        },
        f,
    )
}

fn spawn_reporting(
    spawn: impl FnOnce() -> Result<pid_t, String>,
    f: impl FnOnce(&Probe) -> Result<(), Step>,
) -> Result<ChildReport, String> {
    let (rd, wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
    let pid = match spawn() {
        Ok(0) => {
            sys::close(rd);
            let probe = Probe { fd: wr };
            let code = match f(&probe) {
                Ok(()) => 0,
                Err(step) => {
                    sys::write_all(wr, &encode_step(&step));
                    1
                }
            };
            sys::exit_now(code);
        }
        Ok(pid) => pid,
        Err(e) => {
            sys::close(rd);
            sys::close(wr);
            return Err(e);
        }
    };
    sys::close(wr);
    // A hanging child is the runner's business: it kills the whole group.
    let end = sys::wait(pid);
    sys::set_nonblocking(rd);
    let mut bytes = Vec::new();
    drain(rd, &mut bytes);
    sys::close(rd);
    let end = end.map_err(|e| format!("waitpid failed: errno {e}"))?;
    let (armed, failure) = decode_report(&bytes);
    Ok(ChildReport {
        pid,
        end,
        armed,
        failure,
    })
}

/// A child process that waits until released: a live "other process".
pub struct Sleeper {
    pid: pid_t,
    release: c_int,
    done: bool,
}

impl Sleeper {
    pub fn spawn() -> Result<Sleeper, String> {
        let (rd, wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        match sys::fork() {
            Ok(0) => {
                sys::close(wr);
                let mut b = [0u8; 1];
                // Returns at end of file: when the parent releases or dies.
                sys::read(rd, &mut b);
                sys::exit_now(0);
            }
            Ok(pid) => {
                sys::close(rd);
                Ok(Sleeper {
                    pid,
                    release: wr,
                    done: false,
                })
            }
            Err(e) => {
                sys::close(rd);
                sys::close(wr);
                Err(format!("fork failed: errno {e}"))
            }
        }
    }

    pub fn pid(&self) -> pid_t {
        self.pid
    }

    /// Lets it exit normally and reaps it.
    pub fn finish(mut self) -> Result<(), String> {
        self.done = true;
        // A byte, not just end of file: a later child may hold a copy of
        // the write end.
        sys::write_all(self.release, b"x");
        sys::close(self.release);
        match sys::wait(self.pid) {
            Ok(ChildEnd::Exited(0)) => Ok(()),
            Ok(ChildEnd::Exited(n)) => Err(format!("waiting child exited with status {n}")),
            Ok(ChildEnd::Signaled(s)) => Err(format!("waiting child {}", killed_by(s))),
            Err(e) => Err(format!("waitpid failed: errno {e}")),
        }
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(mut self) -> Result<(), String> {
        self.done = true;
        sys::kill(self.pid, libc::SIGKILL);
        sys::close(self.release);
        match sys::wait(self.pid) {
            Ok(ChildEnd::Signaled(libc::SIGKILL)) => Ok(()),
            Ok(end) => Err(format!("waiting child ended as {end:?}, not by SIGKILL")),
            Err(e) => Err(format!("waitpid failed: errno {e}")),
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        if !self.done {
            sys::kill(self.pid, libc::SIGKILL);
            sys::close(self.release);
            let _ = sys::wait(self.pid);
        }
    }
}

/// The pid of a child that has exited and been reaped: no process has it.
pub fn reaped_pid() -> Result<pid_t, String> {
    match sys::fork() {
        Ok(0) => sys::exit_now(0),
        Ok(pid) => {
            sys::wait(pid).map_err(|e| format!("waitpid failed: errno {e}"))?;
            Ok(pid)
        }
        Err(e) => Err(format!("fork failed: errno {e}")),
    }
}

/// A plan for unit tests: `assignment` with the spec parameters `params`
/// (a JSON object).
#[cfg(test)]
pub fn plan_with_params(assignment: &str, params: &str) -> Plan {
    Plan::from_json(&format!(
        r#"{{"assignment":"{assignment}","syscalls":{{}},"case_timeout_ms":1000,"params":{params}}}"#
    ))
    .expect("a valid test plan")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_how_the_case_ended() {
        let c = |e: Ended, m: &str| classify(&e, m.as_bytes(), 5000);
        assert_eq!(c(Ended::Child(ChildEnd::Exited(0)), ""), Outcome::Pass);
        assert_eq!(
            c(Ended::Child(ChildEnd::Exited(1)), "expected 0, got -22\n"),
            Outcome::Fail("expected 0, got -22".into())
        );
        assert_eq!(
            c(Ended::Child(ChildEnd::Exited(1)), ""),
            Outcome::Fail("failed without a message".into())
        );
        assert_eq!(
            c(Ended::Child(ChildEnd::Exited(3)), ""),
            Outcome::Fail("exited with status 3".into())
        );
        assert_eq!(
            c(Ended::Child(ChildEnd::Signaled(11)), ""),
            Outcome::Fail("crashed: killed by signal 11".into())
        );
        assert_eq!(
            c(Ended::Timeout { reaped: true }, "partial"),
            Outcome::Fail("TIMEOUT after 5000 ms".into())
        );
    }

    #[test]
    fn splats_are_found_and_cut() {
        let log: Vec<String> = [
            "tracker: registered",
            "BUG: sleeping function called from invalid context at mm/slab.h:723",
            "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 41, name: init",
            "Call Trace:",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = splat_lines(&log).unwrap();
        assert!(s.starts_with("BUG: sleeping function called"), "{s}");
        assert_eq!(s.lines().count(), 3);
        assert_eq!(splat_lines(&log[..1]), None);
        let long: Vec<String> = (0..40).map(|i| format!("WARNING: {i}")).collect();
        assert_eq!(splat_lines(&long).unwrap().lines().count(), SPLAT_LINES);
    }

    #[test]
    fn steps_cross_the_pipe() {
        let s = Step {
            what: "register(self)",
            detail: "",
            expected: 0,
            got: -22,
        };
        let mut bytes = vec![TAG_ARMED];
        bytes.extend_from_slice(&encode_step(&s));
        let (armed, failure) = decode_report(&bytes);
        assert!(armed);
        assert_eq!(
            failure.as_deref(),
            Some("register(self): expected 0, got -22 (EINVAL)")
        );
        assert_eq!(String::from(s), failure.unwrap());
        assert_eq!(decode_report(&[]), (false, None));
        assert_eq!(
            decode_report(b"Sxx").1.as_deref(),
            Some("garbled report from a helper process")
        );
    }

    #[test]
    fn long_step_texts_are_cut_not_overflowed() {
        let what: &'static str = Box::leak("x".repeat(300).into_boxed_str());
        let b = encode_step(&Step {
            what,
            detail: "pid field",
            expected: 1,
            got: 2,
        });
        let (_, failure) = decode_report(&b);
        assert!(failure.unwrap().starts_with(&"x".repeat(STEP_TEXT)));
        let b = encode_step(&Step {
            what: "fetch(self)",
            detail: "pid field",
            expected: 7,
            got: 8,
        });
        assert_eq!(
            decode_report(&b).1.unwrap(),
            "fetch(self): pid field: expected 7, got 8"
        );
    }

    #[test]
    fn overruns_are_measured_and_explained() {
        let slot = sys::GuardedSlot::new(24, 8).unwrap();
        let (r, over) = measure_overrun(&slot, &[0u8; 24], |addr| {
            // SAFETY: 40 bytes from the struct stay inside the slot's fence.
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0xa5, 40) };
            0
        });
        // 0xa5 is one of the poisons: only the second round sees it.
        assert_eq!((r, over), (0, 16));
        let (_, none) = measure_overrun(&slot, &[0u8; 24], |_| -22);
        assert_eq!(none, 0);
        let m = overrun_message("fetch", "struct per_proc_resource", 24, 16, 1024);
        assert!(
            m.starts_with(
                "fetch wrote 16 bytes past the end of struct per_proc_resource (24 bytes)"
            ),
            "{m}"
        );
        assert!(
            overrun_message("f", "s", 1, 9, 9).contains("at least 9 bytes (up to the guard page)")
        );
    }

    #[test]
    fn errno_names() {
        assert_eq!(show(0), "0");
        assert_eq!(show(-3), "-3 (ESRCH)");
        assert_eq!(show(-23), "-23 (ENFILE)");
        assert_eq!(show(4096), "4096");
    }

    #[test]
    fn reports_judge_kills() {
        let r = |end, armed| ChildReport {
            pid: 7,
            end,
            armed,
            failure: None,
        };
        let killed = ChildEnd::Signaled(libc::SIGKILL);
        assert!(r(killed, true).expect_sigkill("x").is_ok());
        assert_eq!(
            r(killed, false).expect_sigkill("growing").unwrap_err(),
            "killed by SIGKILL too early, before growing"
        );
        assert_eq!(
            r(ChildEnd::Exited(0), true)
                .expect_sigkill("growing")
                .unwrap_err(),
            "not killed after growing"
        );
        assert!(r(ChildEnd::Exited(0), true).expect_survived("x").is_ok());
        assert_eq!(
            r(killed, true).expect_survived("growing").unwrap_err(),
            "killed by SIGKILL while growing"
        );
        let mut failed = r(ChildEnd::Exited(1), false);
        failed.failure = Some("register(self): expected 0, got -3 (ESRCH)".into());
        assert_eq!(
            failed.expect_sigkill("growing").unwrap_err(),
            "helper process: register(self): expected 0, got -3 (ESRCH)"
        );
    }
}
