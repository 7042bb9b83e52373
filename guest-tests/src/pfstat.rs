//! pfstat (INFO0940 project 1): copy-on-write fault statistics per VMA.
//!
//! One function per catalogue case. Processes are tracked by comm, so every
//! case gives the process it tracks a name of its own (`kgc<pid>` for a
//! child, `kgp<pid>` for the case process itself): cases never see each
//! other's counts. Fault counts are checked exactly, in the VMA of a buffer
//! mapped between two PROT_NONE guard pages (so that it is exactly one VMA):
//! a process writing K distinct pages it shares with a live process after
//! fork takes exactly K CoW faults there.

use crate::runner::{check, measure_overrun, overrun_message, Assignment, CaseFn, Ctx, Sleeper};
use crate::sys::{self, Fenced, PfStat, Syscalls, PF_STAT_MAX};
use kgrade_protocol::Plan;
use libc::{c_int, c_long, pid_t};

const EINVAL: i64 = -22;
const ESRCH: i64 = -3;
const EFAULT: i64 = -14;

pub const ASSIGNMENT: Assignment = Assignment {
    name: "pfstat",
    check_plan,
    cases: CASES,
};

fn check_plan(plan: &Plan) -> Result<(), String> {
    Params::from_plan(plan).map(|_| ())
}

// ---------------------------------------------------------------- parameters

/// What `nb_vma` says for a process with more VMAs than `struct pf_stat` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmaOverflow {
    /// `nb_vma` is 128: the entries that are filled in.
    Cap,
    /// `nb_vma` is the real count; the arrays hold the first 128.
    CountAll,
}

/// What counts as a CoW fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CowFault {
    /// A write fault the kernel resolves by copying the page (the handout).
    Copy,
    /// Every write fault on a write-protected present page, copied or not.
    WriteProtect,
    Either,
}

/// The spec parameters of configs/assignments/pfstat.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Prefix of the KERN_ERR line every error prints ("" = not checked).
    pub error_log_prefix: String,
    /// Longest name length accepted; longer (and 0) is -EINVAL.
    pub max_name_len: usize,
    /// Longer names must be refused (false: "either", refused or accepted).
    pub long_names_refused: bool,
    pub vma_overflow: VmaOverflow,
    /// What pf_get_info of a name that is not tracked may return.
    pub untracked_errnos: Vec<i64>,
    pub cow_fault: CowFault,
}

impl Params {
    /// Decodes the plan's parameters by the rules of kgrade_protocol::params
    /// (the host checks the config with the same); absent ones take the
    /// handout's defaults.
    pub fn from_plan(plan: &Plan) -> Result<Params, String> {
        let get = |name: &str| kgrade_protocol::params::get("pfstat", name, &plan.params);
        Ok(Params {
            error_log_prefix: get("error_log_prefix")?.as_text().to_string(),
            max_name_len: get("max_name_len")?.as_int() as usize,
            long_names_refused: get("long_names")?.as_text() == "refused",
            vma_overflow: match get("vma_overflow")?.as_text() {
                "count_all" => VmaOverflow::CountAll,
                _ => VmaOverflow::Cap,
            },
            untracked_errnos: match get("untracked_name_errno")?.as_text() {
                "EINVAL" => vec![EINVAL],
                "ESRCH" => vec![ESRCH],
                _ => vec![EINVAL, ESRCH],
            },
            cow_fault: match get("cow_fault")?.as_text() {
                "copy" => CowFault::Copy,
                "write_protect" => CowFault::WriteProtect,
                _ => CowFault::Either,
            },
        })
    }

    /// The `nb_vma` a process with `real` VMAs must get.
    pub fn expected_nb_vma(&self, real: usize) -> usize {
        match self.vma_overflow {
            VmaOverflow::Cap => real.min(PF_STAT_MAX),
            VmaOverflow::CountAll => real,
        }
    }
}

// ---------------------------------------------------------------- the syscalls

/// A process name as the syscalls take it: bytes and a length, no NUL needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name {
    bytes: [u8; 16],
    len: usize,
}

impl Name {
    /// `<tag><pid>`: unique among live processes, at most 15 bytes.
    fn unique(tag: &str, pid: pid_t) -> Name {
        let text = format!("{tag}{pid}");
        let mut bytes = [0u8; 16];
        let len = text.len().min(15);
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Name { bytes, len }
    }

    /// This name with `c` appended (at most 15 bytes).
    fn with_suffix(&self, c: u8) -> Name {
        let mut n = *self;
        if n.len < 15 {
            n.bytes[n.len] = c;
            n.len += 1;
        }
        n
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn show(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// The three student syscalls and the spec parameters.
struct Pf<'a> {
    sys: &'a Syscalls,
    p: Params,
}

impl<'a> Pf<'a> {
    fn new(ctx: &'a Ctx) -> Result<Pf<'a>, String> {
        Ok(Pf {
            sys: &ctx.sys,
            p: Params::from_plan(&ctx.plan)?,
        })
    }

    fn set_param_at(&self, name: usize, len: usize) -> i64 {
        self.sys
            .call("pf_set_param", &[name as c_long, len as c_long])
    }

    fn set_param(&self, name: &Name) -> i64 {
        self.set_param_at(name.bytes.as_ptr() as usize, name.len)
    }

    fn get_info_at(&self, name: usize, len: usize, stat: usize) -> i64 {
        self.sys.call(
            "pf_get_info",
            &[name as c_long, len as c_long, stat as c_long],
        )
    }

    fn cleanup(&self) -> i64 {
        self.sys.call("pf_cleanup", &[])
    }

    /// A pf_get_info that must succeed; the struct it filled.
    fn get_info(&self, name: &Name, what: &'static str) -> Result<Box<PfStat>, String> {
        // An overrun lands in the fence: get_info.writes_only_its_struct
        // reports it, this case checks its own figures.
        let mut fenced = Box::new(Fenced::new(PfStat::poisoned()));
        let r = self.get_info_at(name.bytes.as_ptr() as usize, name.len, fenced.addr());
        check(what, r, 0)?;
        let stat = Box::new(fenced.value);
        check_shape(what, &stat)?;
        Ok(stat)
    }

    /// Tracks `name`, which must succeed.
    fn track(&self, name: &Name) -> Result<(), String> {
        let r = self.set_param(name);
        if r == 0 {
            Ok(())
        } else {
            Err(format!(
                "pf_set_param(\"{}\"): expected 0, got {}",
                name.show(),
                crate::runner::show(r)
            ))
        }
    }

    /// Runs an error path: `call` must return `want` and log an error line.
    fn expect_error(
        &self,
        what: &str,
        want: i64,
        call: impl FnOnce() -> i64,
    ) -> Result<(), String> {
        self.expect_error_in(what, &[want], call)
    }

    /// Runs an error path: `call` must return one of `wants` (a spec
    /// parameter's readings) and log an error line.
    fn expect_error_in(
        &self,
        what: &str,
        wants: &[i64],
        call: impl FnOnce() -> i64,
    ) -> Result<(), String> {
        let log = KernelLog::open()?;
        let got = call();
        if !wants.contains(&got) {
            let wants: Vec<String> = wants.iter().map(|w| crate::runner::show(*w)).collect();
            return Err(format!(
                "{what}: expected {}, got {}",
                wants.join(" or "),
                crate::runner::show(got)
            ));
        }
        log.expect_error_line(&self.p.error_log_prefix, what)
    }
}

/// nb_vma in range, and the listed VMAs sorted, page-aligned, disjoint.
fn check_shape(what: &str, s: &PfStat) -> Result<(), String> {
    if s.nb_vma == PfStat::poisoned().nb_vma {
        return Err(format!("{what}: nb_vma left unwritten"));
    }
    if s.nb_vma < 1 {
        return Err(format!(
            "{what}: nb_vma is {}, expected at least 1",
            s.nb_vma
        ));
    }
    let listed = (s.nb_vma as usize).min(PF_STAT_MAX);
    let page = sys::page_size() as u64;
    let mut previous_end = 0u64;
    for i in 0..listed {
        let (start, end) = (
            sys::uwide(s.vma_list_start[i]),
            sys::uwide(s.vma_list_end[i]),
        );
        if start >= end || start % page != 0 || end % page != 0 || start < previous_end {
            return Err(format!(
                "{what}: VMA {i} is {start:#x}-{end:#x} after one ending at {previous_end:#x}: \
                 expected page-aligned VMAs in address order"
            ));
        }
        if s.vma_fault[i] < 0 {
            return Err(format!("{what}: vma_fault[{i}] is {}", s.vma_fault[i]));
        }
        previous_end = end;
    }
    if s.cow_page_faults < 0 {
        return Err(format!("{what}: cow_page_faults is {}", s.cow_page_faults));
    }
    Ok(())
}

/// The index of the listed VMA that is exactly [start, end).
fn vma_index(s: &PfStat, start: usize, end: usize) -> Option<usize> {
    let listed = (s.nb_vma.max(0) as usize).min(PF_STAT_MAX);
    (0..listed).find(|&i| {
        sys::uwide(s.vma_list_start[i]) == start as u64
            && sys::uwide(s.vma_list_end[i]) == end as u64
    })
}

/// The CoW count pf_get_info gives a buffer's VMA, which must be listed.
fn faults_in(s: &PfStat, buf: &Buffer, label: &str) -> Result<i64, String> {
    let i = vma_index(s, buf.start(), buf.end()).ok_or_else(|| {
        format!(
            "pf_get_info does not list the {label} buffer's VMA {:#x}-{:#x} ({})",
            buf.start(),
            buf.end(),
            listed_vmas(s)
        )
    })?;
    Ok(sys::wide(s.vma_fault[i]))
}

fn expect_faults(
    s: &PfStat,
    buf: &Buffer,
    label: &str,
    want: i64,
    why: &str,
) -> Result<(), String> {
    let got = faults_in(s, buf, label)?;
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "vma_fault of the {label} buffer ({} pages): expected {want} ({why}), got {got}",
            buf.pages
        ))
    }
}

fn listed_vmas(s: &PfStat) -> String {
    let listed = (s.nb_vma.max(0) as usize).min(PF_STAT_MAX);
    let mut v: Vec<String> = (0..listed.min(12))
        .map(|i| {
            format!(
                "{:x}-{:x}:{}",
                sys::uwide(s.vma_list_start[i]),
                sys::uwide(s.vma_list_end[i]),
                s.vma_fault[i]
            )
        })
        .collect();
    if listed > 12 {
        v.push(format!("... {} in all", s.nb_vma));
    }
    format!("listed: {}", v.join(" "))
}

// ---------------------------------------------------------------- kernel log

/// New kernel log records, read from /dev/kmsg.
struct KernelLog {
    fd: c_int,
}

impl KernelLog {
    fn open() -> Result<KernelLog, String> {
        sys::kmsg_open_at_end()
            .map(|fd| KernelLog { fd })
            .map_err(|e| format!("cannot open /dev/kmsg: errno {e}"))
    }

    /// Records logged since `open`, as (level, message).
    fn records(&self) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            let n = sys::read(self.fd, &mut buf);
            if n == -i64::from(libc::EPIPE) {
                // Records were overwritten while we read: go on with the next.
                continue;
            }
            if n <= 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n as usize]);
            if let Some((level, message)) = kmsg_record(&text) {
                out.push((level, message.to_string()));
            }
        }
        out
    }

    /// A KERN_ERR record starting with `prefix` must have been logged.
    fn expect_error_line(&self, prefix: &str, after: &str) -> Result<(), String> {
        if prefix.is_empty() {
            return Ok(());
        }
        let records = self.records();
        if records
            .iter()
            .any(|(level, m)| *level == 3 && m.starts_with(prefix))
        {
            return Ok(());
        }
        let seen: Vec<String> = records
            .iter()
            .take(4)
            .map(|(l, m)| format!("<{l}>{m}"))
            .collect();
        Err(format!(
            "{after}: no KERN_ERR line starting with {prefix:?} in the kernel log (new lines: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(" | ")
            }
        ))
    }
}

impl Drop for KernelLog {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

/// One /dev/kmsg record, `<prio>,<seq>,<usec>,<flags>[,...];<message>\n...`:
/// the log level and the message's first line.
fn kmsg_record(text: &str) -> Option<(u32, &str)> {
    let (head, body) = text.split_once(';')?;
    let prio: u32 = head.split(',').next()?.parse().ok()?;
    Some((prio & 7, body.lines().next().unwrap_or("")))
}

// ---------------------------------------------------------------- memory

/// A private anonymous buffer of `pages` read-write pages between two
/// PROT_NONE guard pages: exactly one VMA, [start, end).
struct Buffer {
    base: usize,
    pages: usize,
    page: usize,
}

impl Buffer {
    fn map(pages: usize) -> Result<Buffer, String> {
        let page = sys::page_size();
        let base = sys::mmap(
            (pages + 2) * page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
        )
        .map_err(|e| format!("mmap of {} pages failed: errno {e}", pages + 2))?;
        let r = sys::mprotect(
            base + page,
            pages * page,
            libc::PROT_READ | libc::PROT_WRITE,
        );
        if r < 0 {
            return Err(format!("mprotect failed: {}", crate::runner::show(r)));
        }
        Ok(Buffer { base, pages, page })
    }

    /// Mapped and written once: every page present, as after a fork.
    fn touched(pages: usize) -> Result<Buffer, String> {
        let b = Buffer::map(pages)?;
        for i in 0..pages {
            b.write(i, 1);
        }
        Ok(b)
    }

    fn start(&self) -> usize {
        self.base + self.page
    }

    fn end(&self) -> usize {
        self.start() + self.pages * self.page
    }

    fn addr(&self, i: usize) -> usize {
        // Not at the page's start: a count must be per page, not per address.
        self.start() + i * self.page + 8 + i % 64
    }

    fn write(&self, i: usize, v: u8) {
        // SAFETY: i < pages: inside the read-write middle of our mapping.
        unsafe { std::ptr::write_volatile(self.addr(i) as *mut u8, v) }
    }

    fn read(&self, i: usize) -> u8 {
        // SAFETY: as in write.
        unsafe { std::ptr::read_volatile(self.addr(i) as *const u8) }
    }

    /// Writes pages [from, to) once each.
    fn write_pages(&self, from: usize, to: usize, v: u8) {
        for i in from..to {
            self.write(i, v);
        }
    }

    /// Reads every page; the sum keeps the reads from being optimised out.
    fn read_all(&self) -> u32 {
        (0..self.pages).map(|i| u32::from(self.read(i))).sum()
    }

    /// The first guard page: an address no syscall may read or write.
    fn guard(&self) -> usize {
        self.base
    }
}

// ---------------------------------------------------------------- tracee

/// A forked child that renames itself, then runs steps of `work` when the
/// case process says so, and waits in between: a tracked process whose
/// every fault the case controls. It shares the case process's pages, and
/// the case process stays alive, so its writes to them are CoW faults.
struct Tracee {
    pid: pid_t,
    name: Name,
    go: c_int,
    done: c_int,
    released: bool,
}

/// Step results on the pipe: one byte, then a message after a failure.
const STEP_OK: u8 = b'+';
const STEP_FAILED: u8 = b'-';

impl Tracee {
    fn spawn(work: impl Fn(u8) -> Result<(), String>) -> Result<Tracee, String> {
        Tracee::spawn_as(None, work)
    }

    /// Like [`Tracee::spawn`], under `name` (default `kgc<pid>`).
    fn spawn_as(
        name: Option<Name>,
        work: impl Fn(u8) -> Result<(), String>,
    ) -> Result<Tracee, String> {
        let (go_rd, go_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        let (done_rd, done_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        match sys::fork() {
            Ok(0) => {
                sys::close(go_wr);
                sys::close(done_rd);
                let name = name.unwrap_or_else(|| Name::unique("kgc", sys::getpid()));
                let renamed = sys::set_comm(name.as_bytes());
                sys::write_all(done_wr, &[if renamed == 0 { STEP_OK } else { STEP_FAILED }]);
                let mut step = [0u8; 1];
                // Until the case process releases it (end of file) or dies.
                while sys::read(go_rd, &mut step) == 1 {
                    match work(step[0]) {
                        Ok(()) => {
                            sys::write_all(done_wr, &[STEP_OK]);
                        }
                        Err(m) => {
                            let mut out = vec![STEP_FAILED];
                            out.extend_from_slice(m.as_bytes());
                            sys::write_all(done_wr, &out);
                            sys::exit_now(1);
                        }
                    }
                }
                sys::exit_now(0);
            }
            Ok(pid) => {
                sys::close(go_rd);
                sys::close(done_wr);
                let mut t = Tracee {
                    pid,
                    name: name.unwrap_or_else(|| Name::unique("kgc", pid)),
                    go: go_wr,
                    done: done_rd,
                    released: false,
                };
                let mut b = [0u8; 1];
                if sys::read(t.done, &mut b) != 1 || b[0] != STEP_OK {
                    t.release_quietly();
                    return Err(
                        "the traced child could not rename itself (prctl PR_SET_NAME)".into(),
                    );
                }
                Ok(t)
            }
            Err(e) => {
                for fd in [go_rd, go_wr, done_rd, done_wr] {
                    sys::close(fd);
                }
                Err(format!("fork failed: errno {e}"))
            }
        }
    }

    /// Runs step `n` in the child and waits for it to finish.
    fn run(&self, n: u8) -> Result<(), String> {
        if !sys::write_all(self.go, &[n]) {
            return Err("the traced child is gone".into());
        }
        let mut b = [0u8; 1];
        match (sys::read(self.done, &mut b), b[0]) {
            (1, STEP_OK) => Ok(()),
            (1, _) => {
                let mut msg = Vec::new();
                let mut chunk = [0u8; 512];
                loop {
                    let n = sys::read(self.done, &mut chunk);
                    if n <= 0 {
                        break;
                    }
                    msg.extend_from_slice(&chunk[..n as usize]);
                }
                Err(format!("traced child: {}", String::from_utf8_lossy(&msg)))
            }
            _ => Err(format!("traced child died during step {n}")),
        }
    }

    fn maps(&self) -> Result<Vec<(u64, u64)>, String> {
        let path = format!("/proc/{}/maps", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        parse_maps(&text).ok_or_else(|| format!("cannot parse {path}:\n{text}"))
    }

    fn release_quietly(&mut self) {
        if !self.released {
            self.released = true;
            sys::close(self.go);
            sys::close(self.done);
            if sys::wait(self.pid).is_err() {
                sys::kill(self.pid, libc::SIGKILL);
            }
        }
    }

    /// Lets the child exit and reaps it.
    fn release(mut self) -> Result<(), String> {
        self.released = true;
        sys::close(self.go);
        sys::close(self.done);
        match sys::wait(self.pid) {
            Ok(sys::ChildEnd::Exited(0)) => Ok(()),
            Ok(end) => Err(format!("traced child ended as {end:?}")),
            Err(e) => Err(format!("waitpid failed: errno {e}")),
        }
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if !self.released {
            sys::kill(self.pid, libc::SIGKILL);
            self.release_quietly();
        }
    }
}

/// `start-end perms ...` lines of /proc/PID/maps, as (start, end).
fn parse_maps(text: &str) -> Option<Vec<(u64, u64)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

/// The case process takes a name of its own, to be tracked itself.
fn rename_self() -> Result<Name, String> {
    let name = Name::unique("kgp", sys::getpid());
    check("prctl(PR_SET_NAME)", sys::set_comm(name.as_bytes()), 0)?;
    Ok(name)
}

// ---------------------------------------------------------------- set_param

fn set_param_tracks_a_process(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    check("pf_set_param(own name)", pf.set_param(&me), 0)?;
    pf.get_info(&me, "pf_get_info(own name) after pf_set_param")?;
    Ok(())
}

fn set_param_zero_length_is_einval(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.expect_error("pf_set_param(name, 0)", EINVAL, || {
        pf.set_param_at(me.bytes.as_ptr() as usize, 0)
    })
}

fn set_param_oversized_length_is_einval(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    // Readable for every length tried: only the length is wrong.
    let long = [b'k'; 4096];
    let over = pf.p.max_name_len + 1;
    if !pf.p.long_names_refused {
        // long_names = "either": a name longer than comm may be accepted.
        let r = pf.set_param_at(long.as_ptr() as usize, over);
        if r == 0 || r == EINVAL {
            return Ok(());
        }
        return Err(format!(
            "pf_set_param(name, max + 1): expected 0 or {}, got {}",
            crate::runner::show(EINVAL),
            crate::runner::show(r)
        ));
    }
    pf.expect_error("pf_set_param(name, max + 1)", EINVAL, || {
        pf.set_param_at(long.as_ptr() as usize, over)
    })?;
    pf.expect_error("pf_set_param(name, 4096)", EINVAL, || {
        pf.set_param_at(long.as_ptr() as usize, long.len())
    })
}

fn set_param_bad_pointer_is_efault(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::map(1)?;
    pf.expect_error("pf_set_param(NULL, 6)", EFAULT, || pf.set_param_at(0, 6))?;
    pf.expect_error("pf_set_param(unmapped page, 6)", EFAULT, || {
        pf.set_param_at(b.guard(), 6)
    })
}

fn set_param_again_resets_the_counts(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let child = Tracee::spawn(|step| {
        if step == 0 {
            b.write_pages(0, 3, 2);
        } else {
            b.write_pages(3, 5, 2);
        }
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(&s, &b, "child's", 3, "3 pages written after fork")?;
    pf.track(&child.name)?;
    let s = pf.get_info(
        &child.name,
        "pf_get_info(child) after a second pf_set_param",
    )?;
    expect_faults(
        &s,
        &b,
        "child's",
        0,
        "pf_set_param of the same name again: counts start over",
    )?;
    child.run(1)?;
    let s = pf.get_info(&child.name, "pf_get_info(child) after 2 more writes")?;
    expect_faults(
        &s,
        &b,
        "child's",
        2,
        "2 pages written since the second pf_set_param",
    )?;
    child.release()
}

fn set_param_prefix_is_not_a_match(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let name = Name::unique("kgn", sys::getpid());
    // Older, so a prefix match would find it first.
    let longer = Tracee::spawn_as(Some(name.with_suffix(b'x')), |_| {
        b.write_pages(0, 6, 2);
        Ok(())
    })?;
    let exact = Tracee::spawn_as(Some(name), |_| {
        b.write_pages(0, 2, 2);
        Ok(())
    })?;
    pf.track(&name)?;
    longer.run(0)?;
    exact.run(0)?;
    let s = pf.get_info(&name, "pf_get_info(tracked name)")?;
    let got = faults_in(&s, &b, "shared")?;
    if got != 2 {
        return Err(format!(
            "pf_get_info(\"{}\"): expected the 2 faults of the process called exactly that, \
             got {got} in the buffer (a process called \"{}\" wrote 6 pages: does a name \
             match as a prefix?)",
            name.show(),
            name.with_suffix(b'x').show()
        ));
    }
    exact.release()?;
    longer.release()
}

// ---------------------------------------------------------------- get_info

fn get_info_fills_the_struct(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    let b = Buffer::touched(3)?;
    pf.track(&me)?;
    let s = pf.get_info(&me, "pf_get_info(own name)")?;
    faults_in(&s, &b, "own")?;
    // A stack address lies in one of the listed VMAs, unless the stack is
    // past the 128th (the spec lists the first 128).
    let here = &s as *const _ as u64;
    let listed = (s.nb_vma as usize).min(PF_STAT_MAX);
    let inside = (0..listed)
        .any(|i| sys::uwide(s.vma_list_start[i]) <= here && here < sys::uwide(s.vma_list_end[i]));
    if !inside && listed < PF_STAT_MAX {
        return Err(format!(
            "no listed VMA holds the stack address {here:#x} ({})",
            listed_vmas(&s)
        ));
    }
    Ok(())
}

fn get_info_untracked_name_is_einval(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.track(&me)?;
    let other = Name::unique("kgx", sys::getpid());
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    // untracked_name_errno: -EINVAL, -ESRCH, or either.
    let wants = pf.p.untracked_errnos.clone();
    pf.expect_error_in("pf_get_info(a name that is not tracked)", &wants, || {
        pf.get_info_at(other.bytes.as_ptr() as usize, other.len, s.addr())
    })
}

fn get_info_zero_length_is_einval(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    if pf.sys.has("pf_set_param") {
        pf.track(&me)?;
    }
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    pf.expect_error("pf_get_info(name, 0, stat)", EINVAL, || {
        pf.get_info_at(me.bytes.as_ptr() as usize, 0, s.addr())
    })
}

fn get_info_oversized_length_is_einval(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let long = [b'k'; 4096];
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    let stat = s.addr();
    let over = pf.p.max_name_len + 1;
    if !pf.p.long_names_refused {
        // long_names = "either": an over-long name may be taken as a name
        // that is not tracked.
        let mut wants = vec![EINVAL];
        wants.extend(pf.p.untracked_errnos.iter().copied());
        return pf.expect_error_in("pf_get_info(name, max + 1, stat)", &wants, || {
            pf.get_info_at(long.as_ptr() as usize, over, stat)
        });
    }
    pf.expect_error("pf_get_info(name, max + 1, stat)", EINVAL, || {
        pf.get_info_at(long.as_ptr() as usize, over, stat)
    })?;
    pf.expect_error("pf_get_info(name, 4096, stat)", EINVAL, || {
        pf.get_info_at(long.as_ptr() as usize, long.len(), stat)
    })
}

fn get_info_bad_name_pointer_is_efault(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::map(1)?;
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    let stat = s.addr();
    pf.expect_error("pf_get_info(NULL, 6, stat)", EFAULT, || {
        pf.get_info_at(0, 6, stat)
    })?;
    pf.expect_error("pf_get_info(unmapped page, 6, stat)", EFAULT, || {
        pf.get_info_at(b.guard(), 6, stat)
    })
}

/// pf_get_info into a struct with a fence and a guard page after it: it
/// must write its struct and not one byte more.
fn get_info_writes_only_its_struct(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.track(&me)?;
    let size = std::mem::size_of::<PfStat>();
    let slot = sys::GuardedSlot::new(size, std::mem::align_of::<PfStat>())
        .map_err(|e| format!("mmap(a guarded buffer) failed: errno {e}"))?;
    let (r, over) = measure_overrun(&slot, &PfStat::poisoned(), |addr| {
        pf.get_info_at(me.bytes.as_ptr() as usize, me.len, addr)
    });
    if over > 0 {
        return Err(overrun_message(
            "pf_get_info(own name)",
            "struct pf_stat",
            size,
            over,
            slot.fence_len(),
        ));
    }
    check("pf_get_info(own name) into a guarded struct", r, 0)?;
    Ok(())
}

fn get_info_same_name_counts_per_process(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let name = Name::unique("kgs", sys::getpid());
    let first = Tracee::spawn_as(Some(name), |_| {
        b.write_pages(0, 3, 2);
        Ok(())
    })?;
    let second = Tracee::spawn_as(Some(name), |_| {
        b.write_pages(3, 8, 2);
        Ok(())
    })?;
    pf.track(&name)?;
    first.run(0)?;
    second.run(0)?;
    let s = pf.get_info(&name, "pf_get_info(a name two processes share)")?;
    let got = faults_in(&s, &b, "shared")?;
    // Either process may be the one reported; never both at once.
    if got != 3 && got != 5 {
        return Err(format!(
            "pf_get_info(\"{}\") with two processes of that name, which wrote 3 and 5 pages: \
             expected the faults of one of them (3 or 5), got {got}",
            name.show()
        ));
    }
    second.release()?;
    first.release()
}

fn get_info_exited_process_is_an_error(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let child = Tracee::spawn(|_| Ok(()))?;
    let name = child.name;
    pf.track(&name)?;
    child.release()?;
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    let mut wants = vec![ESRCH, EINVAL];
    wants.dedup();
    pf.expect_error_in(
        "pf_get_info(the name of a tracked process that has exited)",
        &wants,
        || pf.get_info_at(name.bytes.as_ptr() as usize, name.len, s.addr()),
    )
}

fn get_info_bad_stat_pointer_is_efault(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.track(&me)?;
    let b = Buffer::map(1)?;
    let name = me.bytes.as_ptr() as usize;
    pf.expect_error("pf_get_info(own name, NULL)", EFAULT, || {
        pf.get_info_at(name, me.len, 0)
    })?;
    pf.expect_error("pf_get_info(own name, unmapped page)", EFAULT, || {
        pf.get_info_at(name, me.len, b.guard())
    })?;
    // Readable but not writable.
    let ro = sys::mmap(
        2 * sys::page_size(),
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    )
    .map_err(|e| format!("mmap failed: errno {e}"))?;
    pf.expect_error("pf_get_info(own name, read-only page)", EFAULT, || {
        pf.get_info_at(name, me.len, ro)
    })
}

// ---------------------------------------------------------------- cleanup

fn cleanup_returns_zero(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.track(&me)?;
    check("pf_cleanup()", pf.cleanup(), 0)?;
    Ok(())
}

fn cleanup_forgets_the_name(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let me = rename_self()?;
    pf.track(&me)?;
    pf.get_info(&me, "pf_get_info(own name) before pf_cleanup")?;
    check("pf_cleanup()", pf.cleanup(), 0)?;
    let mut s = Box::new(Fenced::new(PfStat::poisoned()));
    pf.expect_error("pf_get_info(own name) after pf_cleanup", EINVAL, || {
        pf.get_info_at(me.bytes.as_ptr() as usize, me.len, s.addr())
    })
}

fn cleanup_counts_start_over(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(6)?;
    let child = Tracee::spawn(|_| {
        b.write_pages(0, 4, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child) before pf_cleanup")?;
    expect_faults(&s, &b, "child's", 4, "4 pages written after fork")?;
    check("pf_cleanup()", pf.cleanup(), 0)?;
    pf.track(&child.name)?;
    let s = pf.get_info(
        &child.name,
        "pf_get_info(child) after pf_cleanup and pf_set_param",
    )?;
    expect_faults(
        &s,
        &b,
        "child's",
        0,
        "nothing written since pf_cleanup: counts start over",
    )?;
    child.release()
}

// ---------------------------------------------------------------- cow

/// K distinct pages shared after fork, written once each by the child.
fn cow_child_writes_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let child = Tracee::spawn(|_| {
        b.write_pages(0, 7, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(&s, &b, "shared", 7, "7 of its 8 pages written once")?;
    child.release()
}

fn cow_parent_writes_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(9)?;
    // Keeps the pages shared while this process writes them.
    let holder = Sleeper::spawn()?;
    let me = rename_self()?;
    pf.track(&me)?;
    b.write_pages(0, 5, 3);
    let s = pf.get_info(&me, "pf_get_info(own name)")?;
    expect_faults(
        &s,
        &b,
        "shared",
        5,
        "5 pages written while a child shares them",
    )?;
    holder.finish()
}

fn cow_second_write_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(6)?;
    let child = Tracee::spawn(|step| {
        // Twice the same pages, the second time in the next step too.
        b.write_pages(0, 6, 2 + step);
        b.write_pages(0, 6, 4 + step);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    child.run(1)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(
        &s,
        &b,
        "shared",
        6,
        "6 pages each written four times: one copy each",
    )?;
    child.release()
}

fn cow_reads_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let shared = Buffer::touched(6)?;
    // Never touched before the fork: the child's reads fault them in.
    let fresh = Buffer::map(6)?;
    let control = Buffer::touched(3)?;
    let child = Tracee::spawn(|_| {
        let sum = shared.read_all() + fresh.read_all();
        if sum != 6 {
            return Err(format!("read back {sum}, expected 6"));
        }
        control.write_pages(0, 3, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(&s, &shared, "shared", 0, "its pages were only read")?;
    expect_faults(&s, &fresh, "fresh", 0, "read faults are not CoW faults")?;
    expect_faults(&s, &control, "control", 3, "3 pages written after fork")?;
    child.release()
}

fn cow_fresh_pages_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let fresh = Buffer::map(5)?;
    let control = Buffer::touched(4)?;
    let child = Tracee::spawn(|_| {
        // First writes to pages that were never present: nothing to copy.
        fresh.write_pages(0, 5, 2);
        control.write_pages(0, 4, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(
        &s,
        &fresh,
        "fresh",
        0,
        "first writes to absent pages copy nothing",
    )?;
    expect_faults(&s, &control, "control", 4, "4 shared pages written")?;
    child.release()
}

fn cow_sole_owner_write_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let alone = Buffer::touched(5)?;
    let shared = Buffer::touched(4)?;
    // The fork write-protects both buffers; the child then unmaps one, so
    // this process is its only user and a write reuses the page.
    let (alone_start, alone_len) = (alone.base, (alone.pages + 2) * alone.page);
    let holder = Tracee::spawn(move |_| {
        let r = sys::munmap(alone_start, alone_len);
        if r < 0 {
            return Err(format!("munmap failed: {}", crate::runner::show(r)));
        }
        Ok(())
    })?;
    holder.run(0)?;
    let me = rename_self()?;
    pf.track(&me)?;
    alone.write_pages(0, 5, 3);
    shared.write_pages(0, 4, 3);
    let s = pf.get_info(&me, "pf_get_info(own name)")?;
    let got = faults_in(&s, &alone, "unshared")?;
    // cow_fault: "copy" counts none of these reuses, "write_protect" all 5.
    let ok = match pf.p.cow_fault {
        CowFault::Copy => got == 0,
        CowFault::WriteProtect => got == 5,
        CowFault::Either => got == 0 || got == 5,
    };
    if !ok {
        expect_faults(
            &s,
            &alone,
            "unshared",
            if pf.p.cow_fault == CowFault::WriteProtect {
                5
            } else {
                0
            },
            "no other process maps it: the kernel reuses its pages (spec parameter cow_fault)",
        )?;
    }
    expect_faults(&s, &shared, "shared", 4, "4 pages a child still maps")?;
    holder.release()
}

fn cow_tracked_process_forks(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let child = Tracee::spawn(|step| {
        if step == 0 {
            b.write_pages(0, 3, 2);
            return Ok(());
        }
        // A grandchild with the same name writes 5 pages of its own copy.
        match sys::fork() {
            Ok(0) => {
                b.write_pages(0, 5, 4);
                sys::exit_now(0);
            }
            Ok(pid) => match sys::wait(pid) {
                Ok(sys::ChildEnd::Exited(0)) => Ok(()),
                end => Err(format!("the grandchild ended as {end:?}")),
            },
            Err(e) => Err(format!("fork failed: errno {e}")),
        }
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    child.run(1)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(
        &s,
        &b,
        "child's",
        3,
        "3 pages it wrote; its forked child's 5 writes are that process's own",
    )?;
    child.release()
}

fn cow_untracked_writes_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let tracked = Tracee::spawn(|_| {
        b.write_pages(0, 2, 2);
        Ok(())
    })?;
    let name = tracked.name;
    // Writes the same addresses while it has another name, then takes the
    // tracked name: its earlier faults were an untracked process's.
    let other = Tracee::spawn(|step| {
        if step == 0 {
            b.write_pages(0, 6, 3);
            Ok(())
        } else if sys::set_comm(name.as_bytes()) == 0 {
            Ok(())
        } else {
            Err("prctl(PR_SET_NAME) failed".into())
        }
    })?;
    pf.track(&name)?;
    other.run(0)?;
    tracked.run(0)?;
    let s = pf.get_info(&name, "pf_get_info(tracked child)")?;
    expect_faults(
        &s,
        &b,
        "shared",
        2,
        "2 pages it wrote (an untracked process wrote 6 at the same addresses)",
    )?;
    // Killed, not released: the other child holds a copy of its pipe's
    // write end (forked later), so it would never see the end of file.
    drop(tracked);
    other.run(1)?;
    let s = pf.get_info(&name, "pf_get_info(tracked name, now another process's)")?;
    expect_faults(
        &s,
        &b,
        "shared",
        0,
        "its 6 writes happened while it was not called by the tracked name",
    )?;
    other.release()
}

fn cow_each_vma_counts_its_own(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let a = Buffer::touched(3)?;
    let b = Buffer::touched(5)?;
    let c = Buffer::touched(4)?;
    let child = Tracee::spawn(|_| {
        a.write_pages(0, 2, 2);
        b.write_pages(0, 5, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(&s, &a, "first", 2, "2 of its pages written")?;
    expect_faults(&s, &b, "second", 5, "5 of its pages written")?;
    expect_faults(&s, &c, "third", 0, "not written")?;
    child.release()
}

fn cow_writes_before_set_param_not_counted(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let b = Buffer::touched(8)?;
    let child = Tracee::spawn(|step| {
        if step == 0 {
            b.write_pages(0, 5, 2);
        } else {
            b.write_pages(5, 8, 2);
        }
        Ok(())
    })?;
    // Some other name is tracked (or nothing) while the child writes 5 pages.
    if pf.sys.has("pf_cleanup") {
        check("pf_cleanup()", pf.cleanup(), 0)?;
    }
    child.run(0)?;
    pf.track(&child.name)?;
    child.run(1)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(
        &s,
        &b,
        "shared",
        3,
        "3 pages written after pf_set_param, 5 before it",
    )?;
    child.release()
}

fn cow_total_is_the_sum(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let a = Buffer::touched(4)?;
    let b = Buffer::touched(6)?;
    let child = Tracee::spawn(|_| {
        a.write_pages(0, 4, 2);
        b.write_pages(0, 6, 2);
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    expect_faults(&s, &a, "first", 4, "4 pages written")?;
    expect_faults(&s, &b, "second", 6, "6 pages written")?;
    let listed = (s.nb_vma as usize).min(PF_STAT_MAX);
    let sum: i64 = s.vma_fault[..listed].iter().map(|&f| sys::wide(f)).sum();
    let total = sys::wide(s.cow_page_faults);
    if listed < PF_STAT_MAX && total != sum {
        return Err(format!(
            "cow_page_faults is {total}, but the per-VMA counts add up to {sum}"
        ));
    }
    if total < 10 {
        return Err(format!(
            "cow_page_faults is {total}, expected at least the 10 pages written"
        ));
    }
    child.release()
}

// ---------------------------------------------------------------- vmas

fn compare_with_maps(s: &PfStat, maps: &[(u64, u64)], p: &Params) -> Result<(), String> {
    let want = p.expected_nb_vma(maps.len());
    if s.nb_vma < 0 || s.nb_vma as usize != want {
        return Err(format!(
            "nb_vma is {}, expected {want} ({} lines in /proc/PID/maps)",
            s.nb_vma,
            maps.len()
        ));
    }
    for (i, &(start, end)) in maps.iter().take(PF_STAT_MAX).enumerate() {
        let got = (
            sys::uwide(s.vma_list_start[i]),
            sys::uwide(s.vma_list_end[i]),
        );
        if got != (start, end) {
            return Err(format!(
                "VMA {i} is {:x}-{:x}, /proc/PID/maps says {start:x}-{end:x}",
                got.0, got.1
            ));
        }
    }
    Ok(())
}

fn vmas_match_proc_maps(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    let _b = Buffer::touched(2)?;
    let child = Tracee::spawn(|_| Ok(()))?;
    pf.track(&child.name)?;
    child.run(0)?;
    let s = pf.get_info(&child.name, "pf_get_info(child)")?;
    let maps = child.maps()?;
    if maps.len() > PF_STAT_MAX {
        return Err(format!(
            "the child has {} VMAs, expected fewer than 128",
            maps.len()
        ));
    }
    compare_with_maps(&s, &maps, &pf.p)?;
    child.release()
}

fn vmas_more_than_128(ctx: &Ctx) -> Result<(), String> {
    let pf = Pf::new(ctx)?;
    // 100 read-write pages, each between PROT_NONE pages: 201 VMAs.
    let page = sys::page_size();
    let n = 100;
    let region = Buffer::map(2 * n - 1)?;
    for i in 0..n - 1 {
        let gap = region.start() + (2 * i + 1) * page;
        let r = sys::mprotect(gap, page, libc::PROT_NONE);
        if r < 0 {
            return Err(format!("mprotect failed: {}", crate::runner::show(r)));
        }
    }
    for i in 0..n {
        region.write(2 * i, 1);
    }
    let (first, last) = (region.addr(0), region.addr(2 * n - 2));
    let child = Tracee::spawn(|_| {
        // One CoW fault in the region's first VMA, one in its last.
        // SAFETY: both are in read-write pages of the region.
        unsafe {
            std::ptr::write_volatile(first as *mut u8, 2);
            std::ptr::write_volatile(last as *mut u8, 2);
        }
        Ok(())
    })?;
    pf.track(&child.name)?;
    child.run(0)?;
    let mut fenced = Box::new(Fenced::new(PfStat::poisoned()));
    let r = pf.get_info_at(
        child.name.bytes.as_ptr() as usize,
        child.name.len,
        fenced.addr(),
    );
    check("pf_get_info(child with over 200 VMAs)", r, 0)?;
    let over = fenced.overrun();
    if over > 0 {
        return Err(format!(
            "pf_get_info wrote {over} bytes past the end of struct pf_stat ({} bytes) for a process with over 128 VMAs",
            std::mem::size_of::<PfStat>()
        ));
    }
    let s = &fenced.value;
    let maps = child.maps()?;
    let index_of = |addr: usize| {
        maps.iter()
            .position(|&(a, b)| a <= addr as u64 && (addr as u64) < b)
    };
    let (Some(i_first), Some(i_last)) = (index_of(first), index_of(last)) else {
        return Err("the region is not in /proc/PID/maps".into());
    };
    if maps.len() <= PF_STAT_MAX || i_first >= PF_STAT_MAX || i_last < PF_STAT_MAX {
        return Err(format!(
            "test layout: {} VMAs, region's first VMA {i_first}, last {i_last}: \
             expected over 128, the first among the first 128 and the last past them",
            maps.len()
        ));
    }
    compare_with_maps(s, &maps, &pf.p)?;
    let got = sys::wide(s.vma_fault[i_first]);
    if got != 1 {
        return Err(format!(
            "vma_fault[{i_first}] (one page written): expected 1, got {got}"
        ));
    }
    let sum: i64 = s.vma_fault.iter().map(|&f| sys::wide(f)).sum();
    let total = sys::wide(s.cow_page_faults);
    if total <= sum {
        return Err(format!(
            "cow_page_faults is {total}, the first 128 VMAs hold {sum}: \
             expected the total to include the fault in VMA {i_last}"
        ));
    }
    child.release()
}

pub const CASES: &[(&str, CaseFn)] = &[
    ("set_param.tracks_a_process", set_param_tracks_a_process),
    (
        "set_param.zero_length_is_einval",
        set_param_zero_length_is_einval,
    ),
    (
        "set_param.oversized_length_is_einval",
        set_param_oversized_length_is_einval,
    ),
    (
        "set_param.bad_pointer_is_efault",
        set_param_bad_pointer_is_efault,
    ),
    (
        "set_param.again_resets_the_counts",
        set_param_again_resets_the_counts,
    ),
    (
        "set_param.prefix_is_not_a_match",
        set_param_prefix_is_not_a_match,
    ),
    ("get_info.fills_the_struct", get_info_fills_the_struct),
    (
        "get_info.untracked_name_is_einval",
        get_info_untracked_name_is_einval,
    ),
    (
        "get_info.zero_length_is_einval",
        get_info_zero_length_is_einval,
    ),
    (
        "get_info.oversized_length_is_einval",
        get_info_oversized_length_is_einval,
    ),
    (
        "get_info.bad_name_pointer_is_efault",
        get_info_bad_name_pointer_is_efault,
    ),
    (
        "get_info.bad_stat_pointer_is_efault",
        get_info_bad_stat_pointer_is_efault,
    ),
    (
        "get_info.writes_only_its_struct",
        get_info_writes_only_its_struct,
    ),
    (
        "get_info.same_name_counts_per_process",
        get_info_same_name_counts_per_process,
    ),
    (
        "get_info.exited_process_is_an_error",
        get_info_exited_process_is_an_error,
    ),
    ("cleanup.returns_zero", cleanup_returns_zero),
    ("cleanup.forgets_the_name", cleanup_forgets_the_name),
    ("cleanup.counts_start_over", cleanup_counts_start_over),
    ("cow.child_writes_counted", cow_child_writes_counted),
    ("cow.parent_writes_counted", cow_parent_writes_counted),
    ("cow.second_write_not_counted", cow_second_write_not_counted),
    ("cow.reads_not_counted", cow_reads_not_counted),
    ("cow.fresh_pages_not_counted", cow_fresh_pages_not_counted),
    (
        "cow.sole_owner_write_not_counted",
        cow_sole_owner_write_not_counted,
    ),
    ("cow.each_vma_counts_its_own", cow_each_vma_counts_its_own),
    (
        "cow.writes_before_set_param_not_counted",
        cow_writes_before_set_param_not_counted,
    ),
    ("cow.total_is_the_sum", cow_total_is_the_sum),
    ("cow.tracked_process_forks", cow_tracked_process_forks),
    (
        "cow.untracked_writes_not_counted",
        cow_untracked_writes_not_counted,
    ),
    ("vmas.match_proc_maps", vmas_match_proc_maps),
    ("vmas.more_than_128", vmas_more_than_128),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(params: &str) -> Plan {
        crate::runner::plan_with_params("pfstat", params)
    }

    #[test]
    fn parameters_default_to_the_handout() {
        let p = Params::from_plan(&plan("{}")).unwrap();
        assert_eq!(p.error_log_prefix, "[INFO940] [ERROR]");
        assert_eq!(p.max_name_len, 15);
        assert_eq!(p.vma_overflow, VmaOverflow::Cap);
        let config = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/assignments/pfstat.toml"
        ))
        .unwrap();
        for line in [
            "error_log_prefix = \"[INFO940] [ERROR]\"",
            "max_name_len = 15",
            "vma_overflow = \"cap\"",
        ] {
            assert!(
                config.contains(line),
                "configs/assignments/pfstat.toml: {line}"
            );
        }
    }

    #[test]
    fn parameters_are_checked() {
        let p = Params::from_plan(&plan(
            r#"{"error_log_prefix":"","max_name_len":10,"vma_overflow":"count_all"}"#,
        ))
        .unwrap();
        assert_eq!(p.error_log_prefix, "");
        assert_eq!(p.max_name_len, 10);
        assert_eq!(p.expected_nb_vma(201), 201);
        assert_eq!(
            Params::from_plan(&plan("{}")).unwrap().expected_nb_vma(201),
            128
        );
        assert_eq!(
            Params::from_plan(&plan("{}")).unwrap().expected_nb_vma(17),
            17
        );
        for bad in [
            r#"{"max_name_len":16}"#,
            r#"{"max_name_len":0}"#,
            r#"{"vma_overflow":"truncate"}"#,
            r#"{"error_log_prefix":3}"#,
        ] {
            assert!(check_plan(&plan(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn kmsg_records() {
        assert_eq!(
            kmsg_record("3,812,2301772,-;[INFO940] [ERROR] pf_set_param: bad\n"),
            Some((3, "[INFO940] [ERROR] pf_set_param: bad"))
        );
        // Facility bits above the level; continuation lines after the message.
        assert_eq!(
            kmsg_record("14,5,100,c;hello\n SUBSYSTEM=x\n"),
            Some((6, "hello"))
        );
        assert_eq!(kmsg_record("garbage"), None);
    }

    #[test]
    fn proc_maps_lines() {
        let text = "08048000-080f3000 r-xp 00000000 00:02 5  /init\n\
                    b7f00000-b7f01000 ---p 00000000 00:00 0 \n\
                    bffdf000-c0000000 rw-p 00000000 00:00 0          [stack]\n";
        assert_eq!(
            parse_maps(text).unwrap(),
            [
                (0x0804_8000, 0x080f_3000),
                (0xb7f0_0000, 0xb7f0_1000),
                (0xbffd_f000, 0xc000_0000)
            ]
        );
        assert!(parse_maps("zz-yy r-xp\n").is_none());
    }

    #[test]
    fn names_fit_in_comm() {
        let n = Name::unique("kgc", 4_194_303);
        assert_eq!(n.as_bytes(), b"kgc4194303");
        assert!(n.len <= 15);
    }

    fn stat_with(vmas: &[(u64, u64, i64)]) -> PfStat {
        let mut s = PfStat::poisoned();
        s.nb_vma = vmas.len() as i32;
        s.cow_page_faults = 0;
        for (i, &(a, b, f)) in vmas.iter().enumerate() {
            s.vma_list_start[i] = a as _;
            s.vma_list_end[i] = b as _;
            s.vma_fault[i] = f as _;
        }
        s
    }

    #[test]
    fn shape_and_maps_checks() {
        let p = Params::from_plan(&plan("{}")).unwrap();
        let good = stat_with(&[(0x1000, 0x3000, 0), (0x5000, 0x6000, 2)]);
        assert!(check_shape("x", &good).is_ok());
        assert!(compare_with_maps(&good, &[(0x1000, 0x3000), (0x5000, 0x6000)], &p).is_ok());
        let e = compare_with_maps(&good, &[(0x1000, 0x3000), (0x5000, 0x7000)], &p).unwrap_err();
        assert_eq!(e, "VMA 1 is 5000-6000, /proc/PID/maps says 5000-7000");
        let e = compare_with_maps(&good, &[(0x1000, 0x3000)], &p).unwrap_err();
        assert!(e.starts_with("nb_vma is 2, expected 1"), "{e}");
        let unsorted = stat_with(&[(0x5000, 0x6000, 0), (0x1000, 0x3000, 0)]);
        assert!(check_shape("x", &unsorted).is_err());
        let unwritten = PfStat::poisoned();
        assert_eq!(
            check_shape("x", &unwritten).unwrap_err(),
            "x: nb_vma left unwritten"
        );
        assert_eq!(vma_index(&good, 0x5000, 0x6000), Some(1));
        assert_eq!(vma_index(&good, 0x5000, 0x7000), None);
    }
}
