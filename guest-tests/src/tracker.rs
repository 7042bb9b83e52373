//! tracker (COL331 A1): the resource usage tracker and limiter.
//!
//! One function per catalogue case. Heap figures are measured as exact
//! deltas, so between a "before" and an "after" fetch a case allocates
//! nothing (glibc's malloc would move the break): it moves the break with
//! sbrk, maps with mmap, fetches into stack structs and formats messages only
//! once it has measured.

use crate::runner::{
    check, check_ok, errno_step, in_child, in_child_with_pid, measure_overrun, overrun_message,
    reaped_pid, show, Assignment, CaseFn, Ctx, Sleeper, Step,
};
use crate::sys::{self, Fenced, PerProcResource, Syscalls};
use kgrade_protocol::Plan;
use libc::{c_int, c_long, pid_t};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU8, Ordering};

/// Return codes of the contract.
const EINVAL: i64 = -22;
const ESRCH: i64 = -3;
const EFAULT: i64 = -14;
/// The contract's "already" (monitored, or quotas set): errno 23.
const EALREADY: i64 = -23;
const ENOENT: i64 = -2;
const EBADF: i64 = -9;
const MIB: usize = 1 << 20;

pub const ASSIGNMENT: Assignment = Assignment {
    name: "tracker",
    check_plan,
    cases: CASES,
};

fn check_plan(plan: &Plan) -> Result<(), String> {
    Params::from_plan(plan).map(|_| ())
}

// ---------------------------------------------------------------- parameters

/// What `fetch` reports heapsize in (quotas are always MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapUnit {
    Bytes,
    MiB,
}

/// Whom usage is attributed to: the calling task, or its thread group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Task,
    Tgid,
}

/// Which mappings count as heap (the contract: private and anonymous; one
/// handout reads "private or anonymous").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmapRule {
    PrivateAndAnonymous,
    PrivateOrAnonymous,
    Either,
}

/// One of two readings, or either of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    First,
    Second,
    Either,
}

impl Reading {
    fn from_word(w: &str, first: &str, second: &str) -> Reading {
        if w == first {
            Reading::First
        } else if w == second {
            Reading::Second
        } else {
            Reading::Either
        }
    }

    /// The values allowed: `first`, `second` or both.
    fn allowed(self, first: i64, second: i64) -> Vec<i64> {
        match self {
            Reading::First => vec![first],
            Reading::Second => vec![second],
            Reading::Either => vec![first, second],
        }
    }
}

/// The spec parameters of configs/assignments/tracker.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub heap_unit: HeapUnit,
    pub heap_shrinks: bool,
    pub close_decrements: bool,
    pub kill_on_cap: bool,
    pub scope: Scope,
    /// fetch into a bad pointer: EINVAL (First), EFAULT (Second) or either.
    pub bad_pointer: Reading,
    pub mmap_rule: MmapRule,
    /// A forked child of a monitored process: not monitored (First),
    /// monitored (Second), or either.
    pub fork_inherits: Reading,
    pub proc_status_required: bool,
}

impl Params {
    /// Decodes the plan's parameters by the rules of kgrade_protocol::params
    /// (the host checks the config with the same); absent ones take the
    /// contract's defaults.
    pub fn from_plan(plan: &Plan) -> Result<Params, String> {
        let get = |name: &str| kgrade_protocol::params::get("tracker", name, &plan.params);
        Ok(Params {
            heap_unit: match get("heap_unit")?.as_text() {
                "MiB" => HeapUnit::MiB,
                _ => HeapUnit::Bytes,
            },
            heap_shrinks: get("heap_shrinks")?.as_bool(),
            close_decrements: get("close_decrements")?.as_bool(),
            kill_on_cap: get("kill_on_cap")?.as_bool(),
            scope: match get("scope")?.as_text() {
                "tgid" => Scope::Tgid,
                _ => Scope::Task,
            },
            bad_pointer: Reading::from_word(
                get("bad_pointer_errno")?.as_text(),
                "EINVAL",
                "EFAULT",
            ),
            mmap_rule: match get("heap_mmap_rule")?.as_text() {
                "private_and_anonymous" => MmapRule::PrivateAndAnonymous,
                "private_or_anonymous" => MmapRule::PrivateOrAnonymous,
                _ => MmapRule::Either,
            },
            fork_inherits: Reading::from_word(get("fork_inherits")?.as_text(), "no", "yes"),
            proc_status_required: get("proc_status_required")?.as_bool(),
        })
    }
}

// ---------------------------------------------------------------- the syscalls

/// Usage as fetch reported it.
#[derive(Debug, Clone, Copy)]
struct Usage {
    heap: u64,
    files: u64,
}

/// The five student syscalls; nothing here allocates.
struct Tracker<'a> {
    sys: &'a Syscalls,
    p: Params,
    page: usize,
}

impl<'a> Tracker<'a> {
    fn new(ctx: &'a Ctx) -> Result<Tracker<'a>, String> {
        Ok(Tracker {
            sys: &ctx.sys,
            p: Params::from_plan(&ctx.plan)?,
            page: sys::page_size(),
        })
    }

    fn register(&self, pid: pid_t) -> i64 {
        self.sys.call("register", &[pid as c_long])
    }

    fn deregister(&self, pid: pid_t) -> i64 {
        self.sys.call("deregister", &[pid as c_long])
    }

    fn cap(&self, pid: pid_t, heap_mib: c_long, files: c_long) -> i64 {
        self.sys
            .call("resource_cap", &[pid as c_long, heap_mib, files])
    }

    fn reset(&self, pid: pid_t) -> i64 {
        self.sys.call("resource_reset", &[pid as c_long])
    }

    /// fetch into any address, good or bad.
    fn fetch_at(&self, addr: usize, pid: pid_t) -> i64 {
        self.sys.call("fetch", &[addr as c_long, pid as c_long])
    }

    /// fetch's return code alone (into a valid struct).
    fn fetch_ret(&self, pid: pid_t) -> i64 {
        let mut s = Fenced::new(PerProcResource::poisoned());
        self.fetch_at(s.addr(), pid)
    }

    /// A fetch that must succeed and fill in the pid asked for.
    /// An overrun of the struct lands in the fence: this case still checks
    /// its own figures, and fetch.writes_only_its_struct reports the overrun.
    fn fetch(&self, pid: pid_t, what: &'static str) -> Result<Usage, Step> {
        let mut f = Fenced::new(PerProcResource::poisoned());
        let r = self.fetch_at(f.addr(), pid);
        let s = f.value;
        check(what, r, 0)?;
        check_pid_field(what, &s, pid)?;
        Ok(Usage {
            heap: sys::uwide(s.heapsize),
            files: sys::uwide(s.openfile_count),
        })
    }

    /// `bytes` in the unit fetch reports.
    fn units(&self, bytes: usize) -> u64 {
        match self.p.heap_unit {
            HeapUnit::Bytes => bytes as u64,
            HeapUnit::MiB => (bytes / MIB) as u64,
        }
    }

    /// A heap growth that shows exactly in either unit: 3 pages, or 2 MiB
    /// when fetch reports MiB (adding whole MiB moves a truncated MiB
    /// figure by exactly that many, whatever it was before).
    fn step(&self) -> usize {
        match self.p.heap_unit {
            HeapUnit::Bytes => 3 * self.page,
            HeapUnit::MiB => 2 * MIB,
        }
    }

    /// A second growth, different from [`Tracker::step`].
    fn other_step(&self) -> usize {
        match self.p.heap_unit {
            HeapUnit::Bytes => 5 * self.page,
            HeapUnit::MiB => 3 * MIB,
        }
    }

    /// A mapping that is private or anonymous but not both: heap only by
    /// the "private or anonymous" reading of heap_mmap_rule.
    fn expect_mapping(
        &self,
        when: &str,
        before: u64,
        after: u64,
        len: usize,
    ) -> Result<(), String> {
        let counted = before.saturating_add(self.units(len));
        let (wants, rule): (&[u64], &str) = match self.p.mmap_rule {
            MmapRule::PrivateAndAnonymous => {
                (&[before], "heap_mmap_rule private_and_anonymous: not heap")
            }
            MmapRule::PrivateOrAnonymous => {
                (&[counted], "heap_mmap_rule private_or_anonymous: heap")
            }
            MmapRule::Either => (&[before, counted], "heap_mmap_rule either"),
        };
        if wants.contains(&after) {
            return Ok(());
        }
        self.expect_heap(&format!("{when} ({rule})"), after, wants[0])
    }

    fn expect_heap(&self, when: &str, got: u64, want: u64) -> Result<(), String> {
        if got == want {
            return Ok(());
        }
        let unit = match self.p.heap_unit {
            HeapUnit::Bytes => "bytes",
            HeapUnit::MiB => "MiB",
        };
        Err(format!(
            "heapsize {when}: expected {want} {unit}, got {got}"
        ))
    }
}

/// fetch must fill in the pid it was asked about.
fn check_pid_field(what: &'static str, s: &PerProcResource, pid: pid_t) -> Result<(), Step> {
    if s.pid == pid {
        return Ok(());
    }
    let detail = if s.pid == PerProcResource::poisoned().pid {
        "pid field left unwritten"
    } else {
        "pid field"
    };
    Err(Step {
        what,
        detail,
        expected: i64::from(pid),
        got: i64::from(s.pid),
    })
}

fn expect_files(when: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("openfile_count {when}: expected {want}, got {got}"))
    }
}

/// Moves the break; an allocation-free step on failure.
fn brk_by(what: &'static str, bytes: isize) -> Result<(), Step> {
    sys::sbrk(bytes)
        .map(|_| ())
        .map_err(|e| errno_step(what, e))
}

fn align_brk() -> Result<(), Step> {
    sys::align_brk().map_err(|e| errno_step("moving the break to a page boundary", e))
}

fn map_anon(what: &'static str, len: usize, shared: bool) -> Result<usize, Step> {
    let kind = if shared {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    sys::mmap(
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        kind | libc::MAP_ANONYMOUS,
        -1,
    )
    .map_err(|e| errno_step(what, e))
}

/// A regular tmpfs file of `len` bytes (made before anything is measured).
fn scratch_file(tag: &str, len: usize) -> Result<CString, String> {
    let path = format!("/tmp/kgrade-{}-{tag}", sys::getpid());
    std::fs::write(&path, vec![0x5a_u8; len]).map_err(|e| format!("creating {path}: {e}"))?;
    CString::new(path).map_err(|e| e.to_string())
}

fn missing_file(tag: &str) -> Result<CString, String> {
    CString::new(format!("/tmp/kgrade-{}-missing-{tag}", sys::getpid())).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- register

fn register_self_returns_zero(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    // The catalogue needs only register here; use fetch when there is one.
    if t.sys.has("fetch") {
        t.fetch(me, "fetch(self) after register(self)")?;
    }
    Ok(())
}

fn register_other_process(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let child = Sleeper::spawn()?;
    check("register(waiting child)", t.register(child.pid()), 0)?;
    if t.sys.has("fetch") {
        t.fetch(child.pid(), "fetch(waiting child) after registering it")?;
    }
    child.finish()
}

fn register_pid_below_one_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    for (pid, what) in [
        (0, "register(0)"),
        (-1, "register(-1)"),
        (-5, "register(-5)"),
    ] {
        check(what, t.register(pid), EINVAL)?;
    }
    Ok(())
}

fn register_missing_process_is_esrch(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let gone = reaped_pid()?;
    check(
        "register(pid of an exited and reaped child)",
        t.register(gone),
        ESRCH,
    )?;
    check(
        "register(pid above pid_max)",
        t.register(sys::pid_above_max()),
        ESRCH,
    )?;
    Ok(())
}

fn register_duplicate_is_ealready(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    check("register(self) a second time", t.register(me), EALREADY)?;
    let child = Sleeper::spawn()?;
    check("register(waiting child)", t.register(child.pid()), 0)?;
    check(
        "register(waiting child) a second time",
        t.register(child.pid()),
        EALREADY,
    )?;
    child.finish()
}

fn register_zombie_is_esrch(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let pid = match sys::fork() {
        Ok(0) => sys::exit_now(0),
        Ok(pid) => pid,
        Err(e) => return Err(format!("fork failed: errno {e}")),
    };
    // Exited, not reaped: still in the process table, but exiting.
    let waited = sys::wait_until_zombie(pid);
    let r = t.register(pid);
    let reaped = sys::wait(pid);
    waited.map_err(|e| format!("waitid(WNOWAIT) failed: errno {e}"))?;
    reaped.map_err(|e| format!("waitpid failed: errno {e}"))?;
    if r == 0 {
        return Err(format!(
            "register(a zombie: a child that exited and was not reaped yet): expected {}, got 0: \
             an exiting process must not be registered (its entry would never be removed)",
            show(ESRCH)
        ));
    }
    check("register(a zombie child)", r, ESRCH)?;
    Ok(())
}

fn register_forked_child_is_not_monitored(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    let want = t.p.fork_inherits.allowed(EINVAL, 0);
    let r = in_child(|_| {
        allowed(
            "fetch(own pid) in a child forked by a monitored process",
            t.fetch_ret(sys::getpid()),
            &want,
        )
    })?;
    r.expect_survived("fetching its own entry").map_err(|e| {
        if t.p.fork_inherits == Reading::First {
            format!("{e}\n(fork_inherits = no: a child is monitored only once registered itself)")
        } else {
            e
        }
    })?;
    t.fetch(me, "fetch(self) after the child exited")?;
    Ok(())
}

// ---------------------------------------------------------------- fetch

fn fetch_fresh_entry_is_zero(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    let u = t.fetch(me, "fetch(self)")?;
    t.expect_heap("of self right after register", u.heap, 0)?;
    expect_files("of self right after register", u.files, 0)?;

    let child = Sleeper::spawn()?;
    check("register(waiting child)", t.register(child.pid()), 0)?;
    let u = t.fetch(child.pid(), "fetch(waiting child)")?;
    t.expect_heap("of an idle child right after register", u.heap, 0)?;
    expect_files("of an idle child right after register", u.files, 0)?;
    child.finish()
}

fn fetch_unmonitored_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    check(
        "fetch(self) without register",
        t.fetch_ret(sys::getpid()),
        EINVAL,
    )?;
    let gone = reaped_pid()?;
    check("fetch(pid of a reaped child)", t.fetch_ret(gone), EINVAL)?;
    Ok(())
}

fn fetch_bad_pointer_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let page = t.page;
    // Made before register, so they are not part of any accounting; the
    // hole last, or the next mapping could land in it.
    let read_only = sys::mmap(
        page,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    )
    .map_err(|e| errno_step("mmap(1 read-only page)", e))?;
    let hole = map_anon("mmap(1 page)", page, false)?;
    sys::munmap(hole, page);
    check("register(self)", t.register(me), 0)?;
    // bad_pointer_errno: the contract's -EINVAL, -EFAULT, or either.
    let ok = t.p.bad_pointer.allowed(EINVAL, EFAULT);
    allowed("fetch(NULL, self)", t.fetch_at(0, me), &ok)?;
    allowed("fetch(unmapped address, self)", t.fetch_at(hole, me), &ok)?;
    allowed(
        "fetch(read-only page, self)",
        t.fetch_at(read_only, me),
        &ok,
    )?;
    t.fetch(me, "fetch(self) into a good struct afterwards")?;
    Ok(())
}

/// fetch into a struct with a fence and a guard page after it: it must
/// write its struct and not one byte more.
fn fetch_writes_only_its_struct(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let size = std::mem::size_of::<PerProcResource>();
    // Mapped before register, so it is not heap of the monitored process.
    let slot = sys::GuardedSlot::new(size, std::mem::align_of::<PerProcResource>())
        .map_err(|e| errno_step("mmap(a guarded buffer)", e))?;
    check("register(self)", t.register(me), 0)?;
    let (r, over) = measure_overrun(&slot, &PerProcResource::poisoned(), |addr| {
        t.fetch_at(addr, me)
    });
    if over > 0 {
        return Err(overrun_message(
            "fetch(stats, self)",
            "struct per_proc_resource",
            size,
            over,
            slot.fence_len(),
        ));
    }
    check("fetch(self) into a guarded struct", r, 0)?;
    check_pid_field("fetch(self) into a guarded struct", &slot.read(), me)?;
    Ok(())
}

// ---------------------------------------------------------------- deregister

fn deregister_stops_monitoring(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    check("deregister(self)", t.deregister(me), 0)?;
    check("fetch(self) after deregister", t.fetch_ret(me), EINVAL)?;
    check("register(self) again after deregister", t.register(me), 0)?;
    Ok(())
}

fn deregister_pid_below_one_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    for (pid, what) in [
        (0, "deregister(0)"),
        (-1, "deregister(-1)"),
        (-5, "deregister(-5)"),
    ] {
        check(what, t.deregister(pid), EINVAL)?;
    }
    Ok(())
}

fn deregister_unmonitored_is_esrch(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("deregister(self) never registered", t.deregister(me), ESRCH)?;
    let gone = reaped_pid()?;
    check(
        "deregister(pid of a reaped child)",
        t.deregister(gone),
        ESRCH,
    )?;
    check("register(self)", t.register(me), 0)?;
    check("deregister(self)", t.deregister(me), 0)?;
    check("deregister(self) a second time", t.deregister(me), ESRCH)?;
    Ok(())
}

fn deregister_clears_the_quotas(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 1 MiB, 1 file)", t.cap(me, 1, 1), 0)?;
        check("deregister(self)", t.deregister(me), 0)?;
        check("register(self) again", t.register(me), 0)?;
        check(
            "resource_cap(self, -1, -1) after deregister and register: no quotas are set",
            t.cap(me, -1, -1),
            0,
        )?;
        probe.arm();
        brk_by("sbrk(+2 MiB)", (2 * MIB) as isize)?;
        Ok(())
    })?;
    r.expect_survived(
        "growing the heap by 2 MiB after deregister dropped a 1 MiB quota and register started afresh",
    )
}

// ---------------------------------------------------------------- resource_cap

fn cap_sets_quotas(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("cap", 16)?;
    let r = in_child(|probe| {
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 16 MiB, 16 files)", t.cap(me, 16, 16), 0)?;
        probe.arm();
        brk_by("sbrk(+1 page)", t.page as isize)?;
        check_ok("open(a file)", sys::open(&path, libc::O_RDONLY))?;
        Ok(())
    })?;
    r.expect_survived("using one page and one file under quotas of 16 MiB and 16 files")
}

fn cap_missing_process_is_esrch(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let gone = reaped_pid()?;
    check(
        "resource_cap(pid of a reaped child, 16, 16)",
        t.cap(gone, 16, 16),
        ESRCH,
    )?;
    check(
        "resource_cap(pid above pid_max, 16, 16)",
        t.cap(sys::pid_above_max(), 16, 16),
        ESRCH,
    )?;
    Ok(())
}

fn cap_unmonitored_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    check(
        "resource_cap(self without register, 16, 16)",
        t.cap(sys::getpid(), 16, 16),
        EINVAL,
    )?;
    let child = Sleeper::spawn()?;
    check(
        "resource_cap(unregistered waiting child, 16, 16)",
        t.cap(child.pid(), 16, 16),
        EINVAL,
    )?;
    child.finish()
}

fn cap_second_cap_is_ealready(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    check("resource_cap(self, 64, 64)", t.cap(me, 64, 64), 0)?;
    check(
        "resource_cap(self, 128, 128) a second time",
        t.cap(me, 128, 128),
        EALREADY,
    )?;
    Ok(())
}

// ---------------------------------------------------------------- resource_reset

fn reset_missing_process_is_esrch(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let gone = reaped_pid()?;
    check(
        "resource_reset(pid of a reaped child)",
        t.reset(gone),
        ESRCH,
    )?;
    check(
        "resource_reset(pid above pid_max)",
        t.reset(sys::pid_above_max()),
        ESRCH,
    )?;
    Ok(())
}

fn reset_unmonitored_is_einval(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    check(
        "resource_reset(self without register)",
        t.reset(sys::getpid()),
        EINVAL,
    )?;
    let child = Sleeper::spawn()?;
    check(
        "resource_reset(unregistered waiting child)",
        t.reset(child.pid()),
        EINVAL,
    )?;
    child.finish()
}

fn reset_allows_a_new_cap(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    check("resource_cap(self, 64, 64)", t.cap(me, 64, 64), 0)?;
    check("resource_reset(self)", t.reset(me), 0)?;
    check(
        "resource_cap(self, 64, 64) after resource_reset",
        t.cap(me, 64, 64),
        0,
    )?;
    Ok(())
}

fn reset_lifts_the_heap_cap(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 1 MiB, -1)", t.cap(me, 1, -1), 0)?;
        check("resource_reset(self)", t.reset(me), 0)?;
        probe.arm();
        brk_by("sbrk(+2 MiB)", (2 * MIB) as isize)?;
        Ok(())
    })?;
    r.expect_survived("growing the heap by 2 MiB after resource_reset lifted a 1 MiB quota")
}

fn reset_lifts_the_file_cap(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("reset", 16)?;
    let r = in_child(|probe| {
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, -1, 1 file)", t.cap(me, -1, 1), 0)?;
        check("resource_reset(self)", t.reset(me), 0)?;
        probe.arm();
        for what in ["first open", "second open", "third open"] {
            check_ok(what, sys::open(&path, libc::O_RDONLY))?;
        }
        Ok(())
    })?;
    r.expect_survived("opening 3 files after resource_reset lifted a quota of 1 file")
}

// ---------------------------------------------------------------- heap

fn heap_brk_growth_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    align_brk()?;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before growing the heap")?;
    brk_by("sbrk(+n)", n as isize)?;
    let after = t.fetch(me, "fetch(self) after growing the heap")?;
    t.expect_heap(
        &format!("after brk grew by {n} bytes"),
        after.heap,
        before.heap.saturating_add(t.units(n)),
    )
}

fn heap_brk_shrink(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    align_brk()?;
    // Grown before register: giving it back must not take the figure below 0.
    brk_by("sbrk(+n) before register", n as isize)?;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) after register")?;
    brk_by("sbrk(+n)", n as isize)?;
    let grown = t.fetch(me, "fetch(self) after growing the heap")?;
    brk_by("sbrk(-n)", -(n as isize))?;
    let shrunk = t.fetch(me, "fetch(self) after shrinking the heap")?;
    brk_by("sbrk(-n) below the break at register", -(n as isize))?;
    let below = t.fetch(me, "fetch(self) after shrinking below the start")?;

    t.expect_heap(
        &format!("after brk grew by {n} bytes"),
        grown.heap,
        before.heap.saturating_add(t.units(n)),
    )?;
    let (want, how) = if t.p.heap_shrinks {
        (before.heap, "(heap_shrinks: back to where it was)")
    } else {
        (grown.heap, "(heap_shrinks = false: unchanged)")
    };
    t.expect_heap(
        &format!("after brk shrank by {n} bytes {how}"),
        shrunk.heap,
        want,
    )?;
    let want = if t.p.heap_shrinks {
        shrunk.heap.saturating_sub(t.units(n))
    } else {
        shrunk.heap
    };
    t.expect_heap(
        &format!("after brk shrank {n} bytes below its size at register (never below 0)"),
        below.heap,
        want,
    )
}

fn heap_private_anon_mmap_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before mmap")?;
    map_anon("mmap(MAP_PRIVATE|MAP_ANONYMOUS)", n, false)?;
    let after = t.fetch(me, "fetch(self) after mmap")?;
    t.expect_heap(
        &format!("after a {n}-byte MAP_PRIVATE|MAP_ANONYMOUS mmap"),
        after.heap,
        before.heap.saturating_add(t.units(n)),
    )
}

fn heap_file_mmap_not_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    let path = scratch_file("map", n)?;
    let fd = check_ok("open(a tmpfs file)", sys::open(&path, libc::O_RDWR))? as c_int;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before mmap")?;
    sys::mmap(n, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE, fd)
        .map_err(|e| errno_step("mmap(MAP_PRIVATE, a tmpfs file)", e))?;
    let after = t.fetch(me, "fetch(self) after mmap")?;
    t.expect_mapping(
        &format!("after a {n}-byte MAP_PRIVATE mmap of a file"),
        before.heap,
        after.heap,
        n,
    )
}

fn heap_shared_anon_mmap_not_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before mmap")?;
    map_anon("mmap(MAP_SHARED|MAP_ANONYMOUS)", n, true)?;
    let after = t.fetch(me, "fetch(self) after mmap")?;
    t.expect_mapping(
        &format!("after a {n}-byte MAP_SHARED|MAP_ANONYMOUS mmap"),
        before.heap,
        after.heap,
        n,
    )
}

fn heap_usage_before_register_not_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    let path = scratch_file("pre", 16)?;
    align_brk()?;
    brk_by("sbrk(+n) before register", n as isize)?;
    map_anon("mmap(MAP_PRIVATE|MAP_ANONYMOUS) before register", n, false)?;
    check_ok(
        "open(a file) before register",
        sys::open(&path, libc::O_RDONLY),
    )?;
    check("register(self)", t.register(me), 0)?;
    let fresh = t.fetch(me, "fetch(self) after register")?;
    let when = format!(
        "right after register, with {n} bytes of brk, {n} bytes of mmap and a file from before"
    );
    t.expect_heap(&when, fresh.heap, 0)?;
    expect_files(&when, fresh.files, 0)
}

fn heap_mmap_length_rounded_to_pages(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let n = t.step();
    // The kernel maps whole pages: a length 100 bytes short of n maps n.
    let len = n - 100;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before mmap")?;
    map_anon(
        "mmap(MAP_PRIVATE|MAP_ANONYMOUS, length not a page multiple)",
        len,
        false,
    )?;
    let after = t.fetch(me, "fetch(self) after mmap")?;
    t.expect_heap(
        &format!("after a {len}-byte MAP_PRIVATE|MAP_ANONYMOUS mmap (the kernel maps {n} bytes)"),
        after.heap,
        before.heap.saturating_add(t.units(n)),
    )
}

// ---------------------------------------------------------------- files

/// One successful open through `open` must add exactly one file.
fn one_open_counted(ctx: &Ctx, name: &str, open: fn(&CStr, c_int) -> i64) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let path = scratch_file(name, 16)?;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before opening")?;
    let fd = open(&path, libc::O_RDONLY);
    let after = t.fetch(me, "fetch(self) after opening")?;
    if fd < 0 {
        return Err(format!("{name}(an existing file) failed: {}", show(fd)));
    }
    expect_files(
        &format!("after one successful {name}"),
        after.files,
        before.files.saturating_add(1),
    )
}

fn files_open_counted(ctx: &Ctx) -> Result<(), String> {
    one_open_counted(ctx, "open", sys::open)
}

fn files_openat_counted(ctx: &Ctx) -> Result<(), String> {
    one_open_counted(ctx, "openat", sys::openat)
}

fn files_openat2_counted(ctx: &Ctx) -> Result<(), String> {
    one_open_counted(ctx, "openat2", sys::openat2)
}

fn files_failed_open_not_counted(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let path = missing_file("open")?;
    check("register(self)", t.register(me), 0)?;
    let before = t.fetch(me, "fetch(self) before opening")?;
    let a = sys::open(&path, libc::O_RDONLY);
    let b = sys::openat(&path, libc::O_RDONLY);
    let c = sys::openat2(&path, libc::O_RDONLY);
    let after = t.fetch(me, "fetch(self) after opening")?;
    check("open(missing file)", a, ENOENT)?;
    check("openat(missing file)", b, ENOENT)?;
    check("openat2(missing file)", c, ENOENT)?;
    expect_files(
        "after failed open, openat and openat2",
        after.files,
        before.files,
    )
}

fn files_close(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let path = scratch_file("close", 16)?;
    check("register(self)", t.register(me), 0)?;
    let fd = check_ok("open(a file)", sys::open(&path, libc::O_RDONLY))? as c_int;
    let before = t.fetch(me, "fetch(self) before close")?;
    let first = sys::close(fd);
    let closed = t.fetch(me, "fetch(self) after close")?;
    let again = sys::close(fd);
    let after = t.fetch(me, "fetch(self) after a failed close")?;
    check("close(fd)", first, 0)?;
    check("close(fd) a second time", again, EBADF)?;
    let (want, how) = if t.p.close_decrements {
        (before.files.saturating_sub(1), "(close_decrements)")
    } else {
        (before.files, "(close_decrements = false: unchanged)")
    };
    expect_files(
        &format!("after a successful close {how}"),
        closed.files,
        want,
    )?;
    expect_files("after a failed close (EBADF)", after.files, closed.files)
}

fn files_close_of_fd_from_before_register(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let path = scratch_file("early", 16)?;
    let early = check_ok(
        "open(a file) before register",
        sys::open(&path, libc::O_RDONLY),
    )? as c_int;
    check("register(self)", t.register(me), 0)?;
    let closed = check("close(fd opened before register)", sys::close(early), 0);
    let after_close = t.fetch(me, "fetch(self) after the close")?;
    let opened = check_ok(
        "open(a file) after register",
        sys::open(&path, libc::O_RDONLY),
    );
    let after_open = t.fetch(me, "fetch(self) after one open")?;
    closed?;
    opened?;
    if after_close.files > 1 << 20 {
        return Err(format!(
            "openfile_count after closing a file opened before register: expected 0, got {} \
             (the count went below 0 and wrapped around)",
            after_close.files
        ));
    }
    expect_files(
        "after closing a file opened before register (never below 0)",
        after_close.files,
        0,
    )?;
    expect_files("after one open since", after_open.files, 1)
}

// ---------------------------------------------------------------- quotas

fn quota_heap_over_quota_killed(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 1 MiB, -1)", t.cap(me, 1, -1), 0)?;
        probe.arm();
        brk_by("sbrk(+2 MiB)", (2 * MIB) as isize)?;
        Ok(())
    })?;
    r.expect_sigkill("growing the heap by 2 MiB over a 1 MiB quota")
}

fn quota_heap_at_quota_survives(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 1 MiB, -1)", t.cap(me, 1, -1), 0)?;
        probe.arm();
        brk_by("sbrk(+1 MiB)", MIB as isize)?;
        Ok(())
    })?;
    r.expect_survived("growing the heap to exactly its 1 MiB quota")
}

fn quota_files_over_quota_killed(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("quota", 16)?;
    let r = in_child(|probe| {
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, -1, 2 files)", t.cap(me, -1, 2), 0)?;
        check_ok("first open", sys::open(&path, libc::O_RDONLY))?;
        check_ok("second open", sys::open(&path, libc::O_RDONLY))?;
        probe.arm();
        sys::open(&path, libc::O_RDONLY);
        Ok(())
    })?;
    r.expect_sigkill("opening a third file over a quota of 2")
}

fn quota_files_at_quota_survives(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("quota", 16)?;
    let r = in_child(|probe| {
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, -1, 2 files)", t.cap(me, -1, 2), 0)?;
        check_ok("first open", sys::open(&path, libc::O_RDONLY))?;
        probe.arm();
        check_ok("second open", sys::open(&path, libc::O_RDONLY))?;
        Ok(())
    })?;
    r.expect_survived("opening exactly its quota of 2 files")
}

fn quota_cap_below_usage(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        brk_by("sbrk(+2 MiB)", (2 * MIB) as isize)?;
        probe.arm();
        check(
            "resource_cap(self, 1 MiB, -1) with 2 MiB in use",
            t.cap(me, 1, -1),
            0,
        )?;
        Ok(())
    })?;
    let doing = "resource_cap(self, 1 MiB, -1) with 2 MiB of heap in use";
    if t.p.kill_on_cap {
        r.expect_sigkill(doing)
    } else {
        r.expect_survived(doing)
    }
}

fn quota_heap_over_quota_via_mmap_killed(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let r = in_child(|probe| {
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        check("resource_cap(self, 1 MiB, -1)", t.cap(me, 1, -1), 0)?;
        probe.arm();
        map_anon("mmap(2 MiB, MAP_PRIVATE|MAP_ANONYMOUS)", 2 * MIB, false)?;
        Ok(())
    })?;
    r.expect_sigkill("mapping 2 MiB (MAP_PRIVATE|MAP_ANONYMOUS) over a 1 MiB heap quota")
}

fn quota_files_over_quota_via_openat_and_openat2_killed(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("quota-at", 16)?;
    for (name, open) in [
        ("openat", sys::openat as fn(&CStr, c_int) -> i64),
        ("openat2", sys::openat2),
    ] {
        let r = in_child(|probe| {
            let me = sys::getpid();
            check("register(self)", t.register(me), 0)?;
            check("resource_cap(self, -1, 1 file)", t.cap(me, -1, 1), 0)?;
            check_ok("first open", open(&path, libc::O_RDONLY))?;
            probe.arm();
            open(&path, libc::O_RDONLY);
            Ok(())
        })?;
        r.expect_sigkill(&format!(
            "opening a second file with {name} over a quota of 1"
        ))?;
    }
    Ok(())
}

/// A child process that grows its heap when told: "another process" for
/// the cases that cap a process other than the caller.
struct Worker {
    pid: pid_t,
    cmd: c_int,
    ack: c_int,
}

impl Worker {
    fn spawn() -> Result<Worker, String> {
        let (cmd_rd, cmd_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        let (ack_rd, ack_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        match sys::fork() {
            Ok(0) => {
                sys::close(cmd_wr);
                sys::close(ack_rd);
                let aligned = align_brk().is_ok();
                let mut b = [0u8; 1];
                while sys::read(cmd_rd, &mut b) == 1 {
                    let ok = aligned && brk_by("", (2 * MIB) as isize).is_ok();
                    sys::write_all(ack_wr, &[u8::from(ok)]);
                }
                sys::exit_now(0);
            }
            Ok(pid) => {
                sys::close(cmd_rd);
                sys::close(ack_wr);
                Ok(Worker {
                    pid,
                    cmd: cmd_wr,
                    ack: ack_rd,
                })
            }
            Err(e) => Err(format!("fork failed: errno {e}")),
        }
    }

    /// Has it grow its heap by 2 MiB; false if it is gone (killed).
    fn grow(&self) -> Result<bool, String> {
        sys::write_all(self.cmd, b"g");
        let mut ok = [0u8; 1];
        match sys::read(self.ack, &mut ok) {
            1 if ok[0] == 1 => Ok(true),
            1 => Err("the other process could not grow its heap by 2 MiB".into()),
            _ => Ok(false),
        }
    }

    /// Lets it go (end of its command pipe) and reaps it.
    fn end(self) -> Result<sys::ChildEnd, String> {
        sys::close(self.cmd);
        sys::close(self.ack);
        sys::wait(self.pid).map_err(|e| format!("waitpid failed: errno {e}"))
    }
}

fn quota_cap_below_usage_kills_the_target(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let w = Worker::spawn()?;
    let target = w.pid;
    check("register(other process)", t.register(target), 0)?;
    w.grow()?;
    // The caller is a process of its own, so that killing it shows.
    let caller = in_child(|probe| {
        probe.arm();
        check(
            "resource_cap(other process, 1 MiB, -1) with 2 MiB in use",
            t.cap(target, 1, -1),
            0,
        )
    })?;
    if caller.end == sys::ChildEnd::Signaled(libc::SIGKILL) {
        let _ = w.end();
        return Err(format!(
            "resource_cap(pid {target}, 1 MiB, -1) with 2 MiB of heap in use killed its caller \
             (pid {}) instead of process {target}: the kill must go to the process capped",
            caller.pid
        ));
    }
    caller.expect_survived("calling resource_cap on another process")?;
    let end = w.end()?;
    let killed = end == sys::ChildEnd::Signaled(libc::SIGKILL);
    match (t.p.kill_on_cap, killed) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!(
            "resource_cap(pid {target}, 1 MiB, -1) with 2 MiB of heap in use: \
             expected process {target} to be killed by SIGKILL at once, but it ended as {end:?}"
        )),
        (false, true) => Err(format!(
            "resource_cap(pid {target}, 1 MiB, -1) with 2 MiB in use killed process {target} \
             (kill_on_cap = false: it must live until its usage grows)"
        )),
    }
}

fn quota_cap_on_another_process_enforced(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let w = Worker::spawn()?;
    let target = w.pid;
    check("register(other process)", t.register(target), 0)?;
    check(
        "resource_cap(other process, 1 MiB, -1) by an unmonitored caller",
        t.cap(target, 1, -1),
        0,
    )?;
    let alive = w.grow()?;
    let end = w.end()?;
    if alive || end != sys::ChildEnd::Signaled(libc::SIGKILL) {
        return Err(format!(
            "process {target} grew its heap by 2 MiB over the 1 MiB quota another process \
             set on it: expected it to be killed by SIGKILL, but it ended as {end:?} \
             (are the quotas stored on the caller's entry?)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- exit

fn exit_entry_removed_at_exit(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let child = Sleeper::spawn()?;
    let pid = child.pid();
    check("register(waiting child)", t.register(pid), 0)?;
    child.finish()?;
    check(
        "fetch(registered child after it exited and was reaped)",
        t.fetch_ret(pid),
        EINVAL,
    )?;
    let child = Sleeper::spawn()?;
    let pid = child.pid();
    check("register(waiting child)", t.register(pid), 0)?;
    child.kill()?;
    check(
        "fetch(registered child after SIGKILL and reaping)",
        t.fetch_ret(pid),
        EINVAL,
    )?;
    Ok(())
}

fn exit_reused_pid_starts_fresh(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let path = scratch_file("reuse", 16)?;
    let first = in_child(|_| {
        align_brk()?;
        let me = sys::getpid();
        check("register(self)", t.register(me), 0)?;
        brk_by("sbrk(+n)", t.step() as isize)?;
        check_ok("open(a file)", sys::open(&path, libc::O_RDONLY))?;
        Ok(())
    })?;
    first.expect_survived("registering itself, growing its heap and opening a file")?;
    let pid = first.pid;
    // A second process with the same pid; raw syscalls only in there.
    let second = in_child_with_pid(pid, |_| {
        let me = sys::getpid();
        check(
            "getpid() of the process cloned with set_tid",
            i64::from(me),
            i64::from(pid),
        )?;
        check(
            "fetch(reused pid) before registering it",
            t.fetch_ret(me),
            EINVAL,
        )?;
        check("register(reused pid)", t.register(me), 0)?;
        let u = t.fetch(me, "fetch(reused pid) after register")?;
        check("heapsize of the new entry", u.heap as i64, 0)?;
        check("openfile_count of the new entry", u.files as i64, 0)?;
        Ok(())
    })?;
    second.expect_survived("checking its fresh entry under the reused pid")
}

// ---------------------------------------------------------------- proc

/// Whether some line's first field is `pid` (a header line is allowed).
fn lists_pid(text: &str, pid: pid_t) -> bool {
    let want = pid.to_string();
    text.lines().any(|line| {
        line.split(|c: char| c.is_whitespace() || c == '|' || c == ',')
            .find(|f| !f.is_empty())
            .is_some_and(|f| f.trim_end_matches(':') == want)
    })
}

fn proc_tracker_status_lists_pid(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    check("register(self)", t.register(me), 0)?;
    let text = match std::fs::read_to_string("/proc/tracker_status") {
        Ok(text) => text,
        // proc_status_required = false: a course without the extra.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !t.p.proc_status_required => {
            return Ok(())
        }
        Err(e) => return Err(format!("reading /proc/tracker_status: {e}")),
    };
    if lists_pid(&text, me) {
        return Ok(());
    }
    let mut msg = format!("no line of /proc/tracker_status starts with our pid {me}");
    if text.trim().is_empty() {
        msg.push_str("\nthe file is empty");
    }
    for line in text.lines().take(6) {
        msg.push('\n');
        msg.push_str(line);
    }
    Err(msg)
}

// ---------------------------------------------------------------- threads

const THREADS: usize = 8;
const ITERATIONS: usize = 200;

/// Released together, so that the threads really overlap.
const WAIT: u8 = 0;
const GO: u8 = 1;
const ABORT: u8 = 2;

/// One thread's register/fetch/deregister loop on its own tid.
fn churn(t: &Tracker, start: &AtomicU8, exact: bool) -> Result<(), String> {
    let tid = sys::gettid();
    loop {
        match start.load(Ordering::Acquire) {
            WAIT => std::thread::yield_now(),
            GO => break,
            _ => return Ok(()),
        }
    }
    for i in 0..ITERATIONS {
        let r = t.register(tid);
        let mut fenced = Fenced::new(PerProcResource::poisoned());
        let f = t.fetch_at(fenced.addr(), tid);
        let s = fenced.value;
        let d = t.deregister(tid);
        let judged = if exact {
            check("register(own tid)", r, 0)
                .and_then(|_| check("fetch(own tid)", f, 0))
                .and_then(|_| check_pid_field("fetch(own tid)", &s, tid))
                .and_then(|_| check("deregister(own tid)", d, 0))
        } else {
            // Per thread group, a thread's tid may stand for its whole group.
            allowed("register(own tid)", r, &[0, EALREADY])
                .and_then(|_| allowed("fetch(own tid)", f, &[0, EINVAL]))
                .and_then(|_| allowed("deregister(own tid)", d, &[0, ESRCH]))
        };
        judged.map_err(|s| format!("tid {tid}, iteration {i}: {}", String::from(s)))?;
    }
    Ok(())
}

fn allowed(what: &'static str, got: i64, set: &[i64]) -> Result<(), Step> {
    if set.contains(&got) {
        Ok(())
    } else {
        check(what, got, set[0])
    }
}

fn threads_concurrent_register_deregister(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let exact = t.p.scope == Scope::Task;
    let start = AtomicU8::new(WAIT);
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..THREADS {
            match std::thread::Builder::new().spawn_scoped(s, || churn(&t, &start, exact)) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Let the threads already started go home.
                    start.store(ABORT, Ordering::Release);
                    return vec![Err(format!("spawning a thread: {e}"))];
                }
            }
        }
        start.store(GO, Ordering::Release);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        return Err(e);
    }
    let me = sys::getpid();
    let r = t.register(me);
    if exact {
        check("register(self) after the threads finished", r, 0)?;
    } else {
        allowed(
            "register(self) after the threads finished",
            r,
            &[0, EALREADY],
        )?;
    }
    t.fetch(me, "fetch(self) after the threads finished")?;
    Ok(())
}

/// A second thread that maps memory when told to, without allocating.
struct MapThread {
    tid: pid_t,
    cmd: c_int,
    ack: c_int,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl MapThread {
    /// Started before anything is registered, so its stack is not counted.
    fn spawn(len: usize) -> Result<MapThread, String> {
        let (cmd_rd, cmd_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        let (ack_rd, ack_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
        let handle = std::thread::Builder::new()
            .spawn(move || {
                sys::write_all(ack_wr, &sys::gettid().to_le_bytes());
                let mut b = [0u8; 1];
                while sys::read(cmd_rd, &mut b) == 1 && b[0] == b'm' {
                    let ok = map_anon("", len, false).is_ok();
                    sys::write_all(ack_wr, &[u8::from(ok)]);
                }
                sys::close(cmd_rd);
                sys::close(ack_wr);
            })
            .map_err(|e| format!("spawning a thread: {e}"))?;
        let mut tid = [0u8; 4];
        if sys::read(ack_rd, &mut tid) != 4 {
            return Err("the second thread did not report its tid".into());
        }
        Ok(MapThread {
            tid: pid_t::from_le_bytes(tid),
            cmd: cmd_wr,
            ack: ack_rd,
            handle: Some(handle),
        })
    }

    /// Has the thread mmap `len` bytes (MAP_PRIVATE|MAP_ANONYMOUS) and waits.
    fn map(&self) -> Result<(), Step> {
        sys::write_all(self.cmd, b"m");
        let mut ok = [0u8; 1];
        let got = match sys::read(self.ack, &mut ok) {
            1 => i64::from(ok[0]),
            n => n.min(-1),
        };
        // 1: mapped; 0: the mmap failed; negative: the thread is gone.
        check("mmap in the second thread", got, 1)
    }
}

impl Drop for MapThread {
    fn drop(&mut self) {
        sys::close(self.cmd);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        sys::close(self.ack);
    }
}

fn threads_per_task_accounting(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let (a, b) = (t.step(), t.other_step());
    let other = MapThread::spawn(b)?;
    let tid = other.tid;
    check("register(self)", t.register(me), 0)?;
    if t.p.scope == Scope::Tgid {
        // Per thread group: both threads' mappings count to the process.
        let m0 = t.fetch(me, "fetch(self) before mmap")?;
        map_anon("mmap in the main thread", a, false)?;
        let m1 = t.fetch(me, "fetch(self) after the main thread's mmap")?;
        other.map()?;
        let m2 = t.fetch(me, "fetch(self) after the second thread's mmap")?;
        t.expect_heap(
            &format!("of the process after the main thread mapped {a} bytes"),
            m1.heap,
            m0.heap.saturating_add(t.units(a)),
        )?;
        return t.expect_heap(
            &format!("of the process after the second thread mapped {b} bytes (scope tgid)"),
            m2.heap,
            m1.heap.saturating_add(t.units(b)),
        );
    }
    check("register(tid of the second thread)", t.register(tid), 0)?;
    let m0 = t.fetch(me, "fetch(main thread) before mmap")?;
    let t0 = t.fetch(tid, "fetch(second thread) before mmap")?;
    map_anon("mmap in the main thread", a, false)?;
    let m1 = t.fetch(me, "fetch(main thread) after its mmap")?;
    let t1 = t.fetch(tid, "fetch(second thread) after the main thread's mmap")?;
    other.map()?;
    let m2 = t.fetch(me, "fetch(main thread) after the second thread's mmap")?;
    let t2 = t.fetch(tid, "fetch(second thread) after its mmap")?;

    t.expect_heap(
        &format!("of the main thread after it mapped {a} bytes"),
        m1.heap,
        m0.heap.saturating_add(t.units(a)),
    )?;
    t.expect_heap(
        "of the second thread after the main thread's mmap (scope task)",
        t1.heap,
        t0.heap,
    )?;
    t.expect_heap(
        &format!("of the second thread after it mapped {b} bytes"),
        t2.heap,
        t1.heap.saturating_add(t.units(b)),
    )?;
    t.expect_heap(
        "of the main thread after the second thread's mmap (scope task)",
        m2.heap,
        m1.heap,
    )
}

fn threads_exit_removes_only_its_own_entry(ctx: &Ctx) -> Result<(), String> {
    let t = Tracker::new(ctx)?;
    let me = sys::getpid();
    let other = MapThread::spawn(t.page)?;
    let tid = other.tid;
    check("register(self)", t.register(me), 0)?;
    if t.p.scope == Scope::Task {
        check("register(tid of the second thread)", t.register(tid), 0)?;
    }
    // Ends and joins it: its exit is over when the join returns.
    drop(other);
    t.fetch(
        me,
        "fetch(main thread) after the second thread exited: the process is alive",
    )?;
    if t.p.scope == Scope::Task {
        check(
            "fetch(tid of the second thread) after it exited and was joined",
            t.fetch_ret(tid),
            EINVAL,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- the table

/// Every tracker case of the catalogue, by full name.
pub const CASES: &[(&str, CaseFn)] = &[
    ("register.self_returns_zero", register_self_returns_zero),
    ("register.other_process", register_other_process),
    (
        "register.pid_below_one_is_einval",
        register_pid_below_one_is_einval,
    ),
    (
        "register.missing_process_is_esrch",
        register_missing_process_is_esrch,
    ),
    (
        "register.duplicate_is_ealready",
        register_duplicate_is_ealready,
    ),
    ("register.zombie_is_esrch", register_zombie_is_esrch),
    (
        "register.forked_child_is_not_monitored",
        register_forked_child_is_not_monitored,
    ),
    ("fetch.fresh_entry_is_zero", fetch_fresh_entry_is_zero),
    ("fetch.unmonitored_is_einval", fetch_unmonitored_is_einval),
    ("fetch.bad_pointer_is_einval", fetch_bad_pointer_is_einval),
    ("fetch.writes_only_its_struct", fetch_writes_only_its_struct),
    ("deregister.stops_monitoring", deregister_stops_monitoring),
    (
        "deregister.pid_below_one_is_einval",
        deregister_pid_below_one_is_einval,
    ),
    (
        "deregister.unmonitored_is_esrch",
        deregister_unmonitored_is_esrch,
    ),
    ("deregister.clears_the_quotas", deregister_clears_the_quotas),
    ("resource_cap.sets_quotas", cap_sets_quotas),
    (
        "resource_cap.missing_process_is_esrch",
        cap_missing_process_is_esrch,
    ),
    (
        "resource_cap.unmonitored_is_einval",
        cap_unmonitored_is_einval,
    ),
    (
        "resource_cap.second_cap_is_ealready",
        cap_second_cap_is_ealready,
    ),
    (
        "resource_reset.missing_process_is_esrch",
        reset_missing_process_is_esrch,
    ),
    (
        "resource_reset.unmonitored_is_einval",
        reset_unmonitored_is_einval,
    ),
    ("resource_reset.allows_a_new_cap", reset_allows_a_new_cap),
    (
        "resource_reset.lifts_the_heap_cap",
        reset_lifts_the_heap_cap,
    ),
    (
        "resource_reset.lifts_the_file_cap",
        reset_lifts_the_file_cap,
    ),
    ("heap.brk_growth_counted", heap_brk_growth_counted),
    ("heap.brk_shrink", heap_brk_shrink),
    (
        "heap.private_anon_mmap_counted",
        heap_private_anon_mmap_counted,
    ),
    ("heap.file_mmap_not_counted", heap_file_mmap_not_counted),
    (
        "heap.shared_anon_mmap_not_counted",
        heap_shared_anon_mmap_not_counted,
    ),
    (
        "heap.usage_before_register_not_counted",
        heap_usage_before_register_not_counted,
    ),
    (
        "heap.mmap_length_rounded_to_pages",
        heap_mmap_length_rounded_to_pages,
    ),
    ("files.open_counted", files_open_counted),
    ("files.openat_counted", files_openat_counted),
    ("files.openat2_counted", files_openat2_counted),
    (
        "files.failed_open_not_counted",
        files_failed_open_not_counted,
    ),
    ("files.close", files_close),
    (
        "files.close_of_fd_from_before_register",
        files_close_of_fd_from_before_register,
    ),
    ("quota.heap_over_quota_killed", quota_heap_over_quota_killed),
    ("quota.heap_at_quota_survives", quota_heap_at_quota_survives),
    (
        "quota.files_over_quota_killed",
        quota_files_over_quota_killed,
    ),
    (
        "quota.files_at_quota_survives",
        quota_files_at_quota_survives,
    ),
    ("quota.cap_below_usage", quota_cap_below_usage),
    (
        "quota.heap_over_quota_via_mmap_killed",
        quota_heap_over_quota_via_mmap_killed,
    ),
    (
        "quota.files_over_quota_via_openat_and_openat2_killed",
        quota_files_over_quota_via_openat_and_openat2_killed,
    ),
    (
        "quota.cap_below_usage_kills_the_target",
        quota_cap_below_usage_kills_the_target,
    ),
    (
        "quota.cap_on_another_process_enforced",
        quota_cap_on_another_process_enforced,
    ),
    ("exit.entry_removed_at_exit", exit_entry_removed_at_exit),
    ("exit.reused_pid_starts_fresh", exit_reused_pid_starts_fresh),
    (
        "proc.tracker_status_lists_pid",
        proc_tracker_status_lists_pid,
    ),
    (
        "threads.concurrent_register_deregister",
        threads_concurrent_register_deregister,
    ),
    ("threads.per_task_accounting", threads_per_task_accounting),
    (
        "threads.exit_removes_only_its_own_entry",
        threads_exit_removes_only_its_own_entry,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn plan(params: &str) -> Plan {
        crate::runner::plan_with_params("tracker", params)
    }

    #[test]
    fn parameters_default_to_the_contract() {
        let p = Params::from_plan(&plan("{}")).unwrap();
        assert_eq!(
            p,
            Params {
                heap_unit: HeapUnit::Bytes,
                heap_shrinks: true,
                close_decrements: true,
                kill_on_cap: true,
                scope: Scope::Task,
                bad_pointer: Reading::First,
                mmap_rule: MmapRule::PrivateAndAnonymous,
                fork_inherits: Reading::First,
                proc_status_required: true,
            }
        );
    }

    #[test]
    fn parameters_as_the_config_spells_them() {
        let p = Params::from_plan(&plan(
            r#"{"heap_unit":"MiB","heap_shrinks":false,"close_decrements":false,
                "kill_on_cap":false,"scope":"tgid","some_future_key":3}"#,
        ))
        .unwrap();
        assert_eq!(p.heap_unit, HeapUnit::MiB);
        assert!(!p.heap_shrinks && !p.close_decrements && !p.kill_on_cap);
        assert_eq!(p.scope, Scope::Tgid);
        let p = Params::from_plan(&plan(r#"{"heap_unit":"mib","scope":"TASK"}"#)).unwrap();
        assert_eq!((p.heap_unit, p.scope), (HeapUnit::MiB, Scope::Task));
    }

    #[test]
    fn bad_parameters_are_reported_not_guessed() {
        let e = Params::from_plan(&plan(r#"{"heap_unit":"KB"}"#)).unwrap_err();
        assert_eq!(
            e,
            r#"spec parameter heap_unit: expected one of "bytes", "MiB", got "KB""#
        );
        let p = Params::from_plan(&plan(
            r#"{"bad_pointer_errno":"either","heap_mmap_rule":"private_or_anonymous",
                "fork_inherits":"yes","proc_status_required":false}"#,
        ))
        .unwrap();
        assert_eq!(p.bad_pointer.allowed(-22, -14), [-22, -14]);
        assert_eq!(p.mmap_rule, MmapRule::PrivateOrAnonymous);
        assert_eq!(p.fork_inherits, Reading::Second);
        assert!(!p.proc_status_required);
        assert_eq!(
            Params::from_plan(&plan(r#"{"bad_pointer_errno":"efault"}"#))
                .unwrap()
                .bad_pointer
                .allowed(-22, -14),
            [-14]
        );
        let e = Params::from_plan(&plan(r#"{"kill_on_cap":"yes"}"#)).unwrap_err();
        assert_eq!(
            e,
            r#"spec parameter kill_on_cap: expected true or false, got "yes""#
        );
        assert!(Params::from_plan(&plan(r#"{"scope":7}"#)).is_err());
        assert!(check_plan(&plan(r#"{"scope":"tgid"}"#)).is_ok());
    }

    /// The host validates configs against kgrade_protocol::PARAMS: the guest
    /// must accept exactly what that list declares.
    #[test]
    fn declared_parameters_match_what_the_guest_accepts() {
        use kgrade_protocol::ParamKind;
        let decoded: BTreeSet<&str> = [
            "heap_unit",
            "heap_shrinks",
            "close_decrements",
            "kill_on_cap",
            "scope",
            "bad_pointer_errno",
            "heap_mmap_rule",
            "fork_inherits",
            "proc_status_required",
        ]
        .into();
        let declared: BTreeSet<&str> = kgrade_protocol::params_for("tracker")
            .map(|p| p.name)
            .collect();
        assert_eq!(declared, decoded);
        for p in kgrade_protocol::params_for("tracker") {
            let (good, bad): (Vec<String>, &str) = match p.kind {
                ParamKind::Bool => (vec!["true".into(), "false".into()], "\"yes\""),
                ParamKind::Int => (vec!["3".into()], "\"3\""),
                ParamKind::Range(lo, hi) => (vec![lo.to_string(), hi.to_string()], "\"3\""),
                ParamKind::Text => (vec!["\"text\"".into()], "7"),
                ParamKind::Word(words) => (words.iter().map(|w| format!("\"{w}\"")).collect(), "7"),
            };
            for g in good {
                let params = format!(r#"{{"{}":{g}}}"#, p.name);
                assert!(Params::from_plan(&plan(&params)).is_ok(), "{params}");
            }
            let params = format!(r#"{{"{}":{bad}}}"#, p.name);
            assert!(Params::from_plan(&plan(&params)).is_err(), "{params}");
        }
    }

    #[test]
    fn tracker_status_lines() {
        let text = "PID  HEAP  FILES  HEAP_QUOTA  FILE_QUOTA\n17 0 0 U U\n123 4096 1 -1 -1\n";
        assert!(lists_pid(text, 123));
        assert!(lists_pid(text, 17));
        assert!(!lists_pid(text, 12));
        assert!(!lists_pid(text, 4096));
        assert!(lists_pid("| 42 | 0 | 0 |\n", 42));
        assert!(lists_pid("42: heap=0 files=0\n", 42));
        assert!(!lists_pid("", 42));
    }

    #[test]
    fn growth_sizes_are_exact_in_their_unit() {
        let sys = Syscalls::default();
        let mut t = Tracker {
            sys: &sys,
            p: Params::from_plan(&plan("{}")).unwrap(),
            page: 4096,
        };
        assert_eq!((t.step(), t.units(t.step())), (12288, 12288));
        assert_eq!(t.units(t.other_step()), 20480);
        t.p.heap_unit = HeapUnit::MiB;
        assert_eq!((t.units(t.step()), t.units(t.other_step())), (2, 3));
        assert_eq!(
            t.expect_heap("after x", 1, 2).unwrap_err(),
            "heapsize after x: expected 2 MiB, got 1"
        );
    }
}
