//! memuse (lab report): the bytes of a process's present pages, by kind.
//!
//! `memuse(pid, kind)`: 1 = call stack, 2 = kernel, 3 = heap; see
//! configs/assignments/memuse.toml for what each kind covers. A process's
//! absolute figures depend on the kernel, the C library and everything /init
//! did before, so every case measures a difference: what its own brk growth,
//! recursion or mapping adds. Between a "before" and an "after" a case
//! allocates nothing (glibc's malloc would touch heap pages) and stays inside
//! stack pages it touched already ([`warm_stack`]).

use crate::runner::{
    check, errno_step, in_child, reaped_pid, show, Assignment, CaseFn, Ctx, Step, SUCCESS,
};
use crate::sys::{self, Syscalls};
use kgrade_protocol::Plan;
use libc::{c_int, c_long, pid_t};

pub const ASSIGNMENT: Assignment = Assignment {
    name: "memuse",
    check_plan,
    cases: CASES,
};

fn check_plan(plan: &Plan) -> Result<(), String> {
    Params::from_plan(plan).map(|_| ())
}

/// The kinds of memory, as the syscall numbers them.
const STACK: c_int = 1;
const KERNEL: c_int = 2;
const HEAP: c_int = 3;

// ---------------------------------------------------------------- parameters

/// The spec parameters of configs/assignments/memuse.toml.
/// What kind 2 ("kernel") means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// Mappings at or above the stack's start (the report's heuristic).
    AboveStack,
    /// The task's kernel stack (the handout's words): a fixed size.
    KernelStack,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub error_value: i64,
    pub kernel_kind: KernelKind,
}

impl Params {
    /// Decodes the plan's parameters by the rules of kgrade_protocol::params
    /// (the host checks the config with the same: error_value is negative
    /// on both sides).
    pub fn from_plan(plan: &Plan) -> Result<Params, String> {
        let get = |name: &str| kgrade_protocol::params::get("memuse", name, &plan.params);
        Ok(Params {
            error_value: get("error_value")?.as_int(),
            kernel_kind: match get("kernel_kind")?.as_text() {
                "above_stack" => KernelKind::AboveStack,
                "kernel_stack" => KernelKind::KernelStack,
                _ => KernelKind::Either,
            },
        })
    }
}

// ---------------------------------------------------------------- the syscall

/// The student's memuse; nothing here allocates.
struct Memuse<'a> {
    sys: &'a Syscalls,
    p: Params,
    page: usize,
}

impl<'a> Memuse<'a> {
    fn new(ctx: &'a Ctx) -> Result<Memuse<'a>, String> {
        Ok(Memuse {
            sys: &ctx.sys,
            p: Params::from_plan(&ctx.plan)?,
            page: sys::page_size(),
        })
    }

    /// The raw result, for any arguments.
    fn call(&self, pid: pid_t, kind: c_int) -> i64 {
        self.sys.call("memuse", &[pid as c_long, kind as c_long])
    }

    /// A figure that must be valid: not negative, whole pages.
    fn figure(&self, what: &'static str, pid: pid_t, kind: c_int) -> Result<u64, Step> {
        let got = self.call(pid, kind);
        if got < 0 {
            return Err(Step {
                what,
                detail: "",
                expected: SUCCESS,
                got,
            });
        }
        let page = self.page as i64;
        if got % page != 0 {
            return Err(Step {
                what,
                detail: "a whole number of pages in bytes",
                expected: got - got % page,
                got,
            });
        }
        Ok(got as u64)
    }

    /// The stack, kernel and heap figures of `pid`, in that order.
    fn all(&self, pid: pid_t, when: &'static str) -> Result<Kinds, Step> {
        Ok(Kinds {
            stack: self.figure(when, pid, STACK)?,
            kernel: self.figure(when, pid, KERNEL)?,
            heap: self.figure(when, pid, HEAP)?,
        })
    }

    fn pages(&self, bytes: u64) -> String {
        let page = self.page as u64;
        if bytes % page == 0 {
            let n = bytes / page;
            format!("{bytes} bytes ({n} page{})", if n == 1 { "" } else { "s" })
        } else {
            format!("{bytes} bytes")
        }
    }

    /// `after - before` must be exactly `pages` pages.
    fn expect_growth(&self, what: &str, before: u64, after: u64, pages: u64) -> Result<(), String> {
        let want = pages * self.page as u64;
        if after >= before && after - before == want {
            return Ok(());
        }
        Err(format!(
            "{what}: expected +{}, got {}",
            self.pages(want),
            self.signed(before, after)
        ))
    }

    /// `after - before` must lie within `lo..=hi` pages.
    fn expect_growth_between(
        &self,
        what: &str,
        before: u64,
        after: u64,
        lo: u64,
        hi: u64,
    ) -> Result<(), String> {
        let page = self.page as u64;
        if after >= before && (lo * page..=hi * page).contains(&(after - before)) {
            return Ok(());
        }
        Err(format!(
            "{what}: expected between +{lo} and +{hi} pages, got {}",
            self.signed(before, after)
        ))
    }

    fn expect_unchanged(&self, what: &str, before: u64, after: u64) -> Result<(), String> {
        if before == after {
            return Ok(());
        }
        Err(format!(
            "{what}: expected no change from {}, got {}",
            self.pages(before),
            self.signed(before, after)
        ))
    }

    fn signed(&self, before: u64, after: u64) -> String {
        if after >= before {
            format!("+{}", self.pages(after - before))
        } else {
            format!("-{}", self.pages(before - after))
        }
    }
}

/// One process's three figures at one moment.
#[derive(Debug, Clone, Copy)]
struct Kinds {
    stack: u64,
    kernel: u64,
    heap: u64,
}

// ---------------------------------------------------------------- memory helpers

/// Bytes of one recursion frame's buffer.
const FRAME: usize = 4096;
/// Frames that [`warm_stack`] touches: 256 KiB below the caller, deeper
/// than anything /init or the runner reached before.
const WARM_FRAMES: usize = 64;

/// Recurses `frames` deep with a [`FRAME`]-byte buffer in each frame,
/// writing both ends of every buffer so that every page the chain spans
/// becomes present. Records the lowest buffer address in `lowest`.
#[inline(never)]
fn descend(frames: usize, lowest: &mut usize) {
    let mut buf = [0u8; FRAME];
    buf[0] = frames as u8;
    buf[FRAME - 1] = 1;
    std::hint::black_box(&mut buf);
    let at = buf.as_ptr() as usize;
    if at < *lowest {
        *lowest = at;
    }
    if frames > 1 {
        descend(frames - 1, lowest);
    }
    // Keeps the buffer alive across the call: no tail call, no reuse.
    std::hint::black_box(&buf);
}

/// Makes the stack below the caller present, so that measuring (a few calls
/// deep) never faults in a new stack page between two figures.
fn warm_stack() {
    let mut lowest = usize::MAX;
    descend(WARM_FRAMES, &mut lowest);
}

/// Writes one byte in each of `count` pages from `start`, every `stride` pages.
fn touch(start: usize, page: usize, count: usize, stride: usize) {
    for i in 0..count {
        sys::poke(start + i * stride * page);
    }
}

/// Moves the break by `bytes` with brk(2) itself; returns the old break.
/// (After [`fresh_heap`] glibc's idea of the break is stale: no sbrk.)
fn brk_by(what: &'static str, bytes: isize) -> Result<usize, Step> {
    let cur = sys::brk(0);
    let want = cur.wrapping_add_signed(bytes);
    let got = sys::brk(want);
    if got == want {
        Ok(cur)
    } else {
        Err(Step {
            what,
            detail: "the new break",
            expected: want as i64,
            got: got as i64,
        })
    }
}

/// Gives the calling process a heap of the case's making: start_brk = brk
/// = a page above the old break (prctl PR_SET_MM). The break grows from
/// there into a heap VMA that starts exactly at start_brk, whatever the
/// kernel's brk randomisation chose: with an offset of 0 the heap would
/// have merged into the .bss mapping, which starts below start_brk and so
/// is no heap by the assignment's rule.
fn fresh_heap() -> Result<(), Step> {
    let page = sys::page_size();
    let start = (sys::brk(0).div_ceil(page) + 1) * page;
    sys::set_heap_bounds(start, start)
        .map_err(|e| errno_step("prctl(PR_SET_MM): a fresh heap a page above the break", e))
}

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    pub start: usize,
    pub end: usize,
    pub name: String,
}

/// Parses /proc/PID/maps: `start-end perms offset dev inode [name]`.
pub fn parse_maps(text: &str) -> Vec<Vma> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let name = fields.nth(4).unwrap_or("").to_string();
            Some(Vma {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                name,
            })
        })
        .collect()
}

/// Addresses above `floor` where `len` bytes fit with a free page on either
/// side, in ascending order: one just after each VMA that ends at or above
/// `floor`. The kernel may still refuse some (above the task size).
pub fn free_slots_above(vmas: &[Vma], floor: usize, len: usize, page: usize) -> Vec<usize> {
    let clear = |at: usize| {
        let (Some(lo), Some(hi)) = (at.checked_sub(page), at.checked_add(len + page)) else {
            return false;
        };
        vmas.iter().all(|v| v.end <= lo || v.start >= hi)
    };
    let mut slots: Vec<usize> = vmas
        .iter()
        .filter(|v| v.end >= floor)
        .filter_map(|v| v.end.checked_add(page))
        .filter(|at| clear(*at))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

fn own_maps() -> Result<Vec<Vma>, String> {
    let text = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("reading /proc/self/maps: {e}"))?;
    Ok(parse_maps(&text))
}

/// Maps `len` bytes (private, anonymous) at a free address above the
/// stack; returns the address.
fn map_above_stack(len: usize, page: usize) -> Result<usize, String> {
    let vmas = own_maps()?;
    let stack = vmas
        .iter()
        .find(|v| v.name == "[stack]")
        .ok_or("no [stack] in /proc/self/maps")?;
    let mut tried = Vec::new();
    for at in free_slots_above(&vmas, stack.end, len, page) {
        match sys::mmap_at(at, len) {
            Ok(addr) => return Ok(addr),
            Err(e) => tried.push(format!("{at:#x}: errno {e}")),
        }
    }
    Err(format!(
        "found no room for {len} bytes above the stack (ends at {:#x}); tried {}",
        stack.end,
        if tried.is_empty() {
            "nothing".into()
        } else {
            tried.join(", ")
        }
    ))
}

// ---------------------------------------------------------------- heap

fn heap_touched_pages_counted(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let before = m.figure("memuse(self, heap) before growing the heap", me, HEAP)?;
    let base = brk_by("sbrk(+8 pages)", (8 * page) as isize)?;
    touch(base, page, 4, 2);
    let half = m.figure(
        "memuse(self, heap) after touching 4 of 8 new pages",
        me,
        HEAP,
    )?;
    touch(base + page, page, 4, 2);
    let all = m.figure(
        "memuse(self, heap) after touching all 8 new pages",
        me,
        HEAP,
    )?;
    m.expect_growth(
        "heap after the break grew by 8 pages and every other one was written",
        before,
        half,
        4,
    )?;
    m.expect_growth("heap after all 8 new pages were written", before, all, 8)
}

fn heap_untouched_growth_at_most_one_page(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let before = m.figure("memuse(self, heap) before growing the heap", me, HEAP)?;
    brk_by("sbrk(+16 pages)", (16 * page) as isize)?;
    let after = m.figure("memuse(self, heap) after sbrk(+16 pages)", me, HEAP)?;
    m.expect_growth_between(
        "heap after the break grew by 16 pages that nothing wrote (mapped is not present)",
        before,
        after,
        0,
        1,
    )
}

fn heap_shrink_releases_pages(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let base = brk_by("sbrk(+8 pages)", (8 * page) as isize)?;
    touch(base, page, 8, 1);
    let grown = m.figure("memuse(self, heap) with 8 new pages written", me, HEAP)?;
    brk_by("sbrk(-8 pages)", -((8 * page) as isize))?;
    let shrunk = m.figure("memuse(self, heap) after sbrk(-8 pages)", me, HEAP)?;
    m.expect_growth(
        "heap given back by sbrk(-8 pages) (what it had before the shrink)",
        shrunk,
        grown,
        8,
    )
}

fn heap_split_heap_counted_in_full(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let before = m.figure("memuse(self, heap) before growing the heap", me, HEAP)?;
    let base = brk_by("brk(+8 pages)", (8 * page) as isize)?;
    touch(base, page, 8, 1);
    // A read-only page in the middle: the heap is now three VMAs.
    let r = sys::mprotect(base + 3 * page, page, libc::PROT_READ);
    check("mprotect(the 4th new heap page, PROT_READ)", r, 0)?;
    let after = m.figure("memuse(self, heap) of a heap split in three VMAs", me, HEAP)?;
    m.expect_growth(
        "heap after 8 new pages were written and mprotect split it into three VMAs",
        before,
        after,
        8,
    )
}

fn heap_mapping_at_the_break_is_not_heap(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let base = brk_by("brk(+4 pages)", (4 * page) as isize)?;
    touch(base, page, 4, 1);
    let brk = base + 4 * page;
    let before = m.all(me, "memuse(self, ...) before mapping at the break")?;
    // Read-only, so that it cannot merge with the heap VMA below it: a VMA
    // that starts at brk itself, outside [start_brk, brk).
    let addr = sys::mmap_at_prot(brk, 4 * page, libc::PROT_READ)
        .map_err(|e| errno_step("mmap(4 pages at the break, MAP_FIXED_NOREPLACE)", e))?;
    let mut sum = 0u32;
    for i in 0..4 {
        sum += u32::from(sys::peek(addr + i * page));
    }
    let after = m.all(
        me,
        "memuse(self, ...) after reading 4 pages mapped at the break",
    )?;
    check("the bytes read (zero pages)", i64::from(sum), 0)?;
    m.expect_unchanged(
        &format!("heap after reading 4 pages mapped at the break {brk:#x} (the heap is [start_brk, brk))"),
        before.heap,
        after.heap,
    )
}

fn heap_mmap_is_not_heap(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    let before = m.all(me, "memuse(self, ...) before mmap")?;
    let addr = sys::mmap(
        8 * page,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    )
    .map_err(|e| errno_step("mmap(8 pages, MAP_PRIVATE|MAP_ANONYMOUS)", e))?;
    touch(addr, page, 8, 1);
    let after = m.all(me, "memuse(self, ...) after writing 8 mmap()ed pages")?;
    let what = |kind: &str| format!("{kind} after 8 pages of an anonymous mmap() were written");
    m.expect_unchanged(&what("heap"), before.heap, after.heap)?;
    m.expect_unchanged(&what("stack"), before.stack, after.stack)?;
    m.expect_unchanged(&what("kernel"), before.kernel, after.kernel)
}

/// A process whose heap range [start_brk, brk) is empty has no heap: 0.
///
/// A static glibc program always has a heap VMA by the time a test runs (its
/// TLS block and malloc live there), and giving it back would pull the TLS
/// from under the process. So the child keeps its memory and moves the
/// kernel's heap bounds instead (prctl PR_SET_MM) to an empty range a page
/// above its break. Its old heap VMA now starts below start_brk: no kind.
/// Growing the break from there makes a fresh heap VMA of its own.
fn heap_no_heap_is_zero(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let page = m.page;
    warm_stack();
    let report = in_child(|probe| {
        let me = sys::getpid();
        let start = (sys::brk(0).div_ceil(page) + 1) * page;
        sys::set_heap_bounds(start, start).map_err(|e| {
            errno_step(
                "prctl(PR_SET_MM): start_brk = brk = a page above the break",
                e,
            )
        })?;
        probe.arm();
        let none = m.figure("memuse(self, heap) with start_brk == brk", me, HEAP)?;
        check("memuse(self, heap) with start_brk == brk", none as i64, 0)?;
        let top = start + 4 * page;
        check("brk(start_brk + 4 pages)", sys::brk(top) as i64, top as i64)?;
        touch(start, page, 4, 1);
        let fresh = m.figure(
            "memuse(self, heap) of a fresh heap of 4 written pages",
            me,
            HEAP,
        )?;
        check(
            "memuse(self, heap) of a fresh heap of 4 written pages",
            fresh as i64,
            (4 * page) as i64,
        )
    })?;
    report.expect_survived("measuring an empty heap")
}

// ---------------------------------------------------------------- stack

/// Frames of the deep recursion: 1 MiB below what warm_stack reached.
const DEEP_FRAMES: usize = 256;

fn stack_recursion_grows(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    let mut warm_low = usize::MAX;
    descend(WARM_FRAMES, &mut warm_low);
    let before = m.all(me, "memuse(self, ...) before recursing")?;
    let mut deep_low = usize::MAX;
    descend(WARM_FRAMES + DEEP_FRAMES, &mut deep_low);
    let after = m.all(me, "memuse(self, ...) after recursing")?;
    // The same chain from the same place, 256 frames longer: the pages
    // between the two lowest buffers are new, give or take the page the
    // deepest frame's own spill slots reach into.
    let new_pages = (warm_low / page).saturating_sub(deep_low / page) as u64;
    let what = format!(
        "stack after recursing {} KiB deeper ({new_pages} new pages between {deep_low:#x} and {warm_low:#x})",
        DEEP_FRAMES * FRAME / 1024
    );
    m.expect_growth_between(
        &what,
        before.stack,
        after.stack,
        new_pages.saturating_sub(2),
        new_pages + 2,
    )?;
    m.expect_unchanged("heap after recursing", before.heap, after.heap)?;
    m.expect_unchanged("kernel after recursing", before.kernel, after.kernel)
}

fn stack_heap_growth_is_not_stack(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let before = m.figure("memuse(self, stack) before growing the heap", me, STACK)?;
    let base = brk_by("sbrk(+8 pages)", (8 * page) as isize)?;
    touch(base, page, 8, 1);
    let after = m.figure(
        "memuse(self, stack) after writing 8 new heap pages",
        me,
        STACK,
    )?;
    m.expect_unchanged("stack after 8 heap pages were written", before, after)
}

// ---------------------------------------------------------------- kernel

fn kernel_heap_and_stack_growth_not_counted(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let before = m.figure("memuse(self, kernel) before", me, KERNEL)?;
    let base = brk_by("sbrk(+8 pages)", (8 * page) as isize)?;
    touch(base, page, 8, 1);
    let mut lowest = usize::MAX;
    descend(WARM_FRAMES + DEEP_FRAMES, &mut lowest);
    let after = m.figure(
        "memuse(self, kernel) after heap growth and recursion",
        me,
        KERNEL,
    )?;
    m.expect_unchanged(
        "kernel after 8 heap pages were written and the stack grew by 1 MiB",
        before,
        after,
    )
}

/// By the report's rule a VMA that starts above mm->start_stack is of the
/// kernel kind: an anonymous mapping placed above the stack is one.
fn kernel_mapping_above_stack_counted(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    let addr = map_above_stack(8 * page, page)?;
    warm_stack();
    let before = m.all(me, "memuse(self, ...) before writing above the stack")?;
    touch(addr, page, 4, 2);
    let after = m.all(me, "memuse(self, ...) after writing above the stack")?;
    let what =
        format!("kernel after 4 of 8 pages mapped at {addr:#x} (above the stack) were written");
    let grew = m.expect_growth(&what, before.kernel, after.kernel, 4);
    let fixed = if after.kernel > 0 {
        m.expect_unchanged(
            "kernel (kernel_kind = kernel_stack: the kernel stack, a fixed size)",
            before.kernel,
            after.kernel,
        )
    } else {
        Err("kernel (kernel_kind = kernel_stack): expected the kernel stack's size, got 0".into())
    };
    match m.p.kernel_kind {
        KernelKind::AboveStack => grew?,
        KernelKind::KernelStack => fixed?,
        KernelKind::Either => grew.or(fixed)?,
    }
    m.expect_unchanged(
        "stack after writing a mapping above the stack",
        before.stack,
        after.stack,
    )?;
    m.expect_unchanged(
        "heap after writing a mapping above the stack",
        before.heap,
        after.heap,
    )
}

// ---------------------------------------------------------------- other process

/// Pages the child adds to its heap, and frames it recurses beyond the
/// stack it inherited.
const CHILD_HEAP_PAGES: usize = 6;
const CHILD_FRAMES: usize = 128;

/// A forked child grows its own heap and stack while this process measures
/// both: the child's figures move, this process's do not.
fn other_child_figure_is_its_own(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    let page = m.page;
    warm_stack();
    fresh_heap()?;
    let (go_rd, go_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
    let (done_rd, done_wr) = sys::pipe().map_err(|e| format!("pipe failed: errno {e}"))?;
    let child = match sys::fork() {
        Ok(0) => {
            sys::close(go_wr);
            sys::close(done_rd);
            let mut b = [0u8; 1];
            sys::read(go_rd, &mut b);
            let Ok(base) = brk_by("", (CHILD_HEAP_PAGES * page) as isize) else {
                sys::exit_now(2)
            };
            touch(base, page, CHILD_HEAP_PAGES, 1);
            let mut lowest = usize::MAX;
            descend(WARM_FRAMES + CHILD_FRAMES, &mut lowest);
            sys::write_all(done_wr, b"d");
            // Waits for end of file: the parent has measured.
            sys::read(go_rd, &mut b);
            sys::exit_now(0);
        }
        Ok(pid) => pid,
        Err(e) => return Err(format!("fork failed: errno {e}")),
    };
    sys::close(go_rd);
    sys::close(done_wr);
    let measured = (|| -> Result<(Kinds, Kinds, Kinds, Kinds), Step> {
        let child_before = m.all(child, "memuse(child, ...) before it grew")?;
        let self_before = m.all(me, "memuse(self, ...) before the child grew")?;
        sys::write_all(go_wr, b"g");
        let mut b = [0u8; 1];
        let n = sys::read(done_rd, &mut b);
        check("the child's report that it grew (bytes read)", n, 1)?;
        let child_after = m.all(child, "memuse(child, ...) after it grew")?;
        let self_after = m.all(me, "memuse(self, ...) after the child grew")?;
        Ok((child_before, child_after, self_before, self_after))
    })();
    sys::close(go_wr);
    sys::close(done_rd);
    let end = sys::wait(child);
    let (cb, ca, sb, sa) = measured?;
    match end {
        Ok(sys::ChildEnd::Exited(0)) => {}
        other => return Err(format!("the child ended as {other:?}")),
    }
    m.expect_growth(
        &format!("the child's heap after it wrote {CHILD_HEAP_PAGES} new brk pages"),
        cb.heap,
        ca.heap,
        CHILD_HEAP_PAGES as u64,
    )?;
    // Each frame holds a page of buffer: that many new pages at least, less
    // the odd page where the inherited stack ended.
    let frame_pages = (CHILD_FRAMES * FRAME / page) as u64;
    m.expect_growth_between(
        &format!(
            "the child's stack after it recursed {} KiB deeper",
            CHILD_FRAMES * FRAME / 1024
        ),
        cb.stack,
        ca.stack,
        frame_pages - 2,
        frame_pages + frame_pages / 4,
    )?;
    m.expect_unchanged("own heap while the child grew", sb.heap, sa.heap)?;
    m.expect_unchanged("own stack while the child grew", sb.stack, sa.stack)
}

// ---------------------------------------------------------------- errors

fn errors_invalid_kind(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let me = sys::getpid();
    for (kind, what) in [
        (STACK, "memuse(self, 1)"),
        (KERNEL, "memuse(self, 2)"),
        (HEAP, "memuse(self, 3)"),
    ] {
        m.figure(what, me, kind)?;
    }
    let error = m.p.error_value;
    for (kind, what) in [
        (0, "memuse(self, 0)"),
        (4, "memuse(self, 4)"),
        (-1, "memuse(self, -1)"),
        (-3, "memuse(self, -3)"),
        (c_int::MAX, "memuse(self, INT_MAX)"),
    ] {
        check(what, m.call(me, kind), error)?;
    }
    Ok(())
}

fn errors_missing_pid(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let gone = reaped_pid()?;
    let above = sys::pid_above_max();
    let error = m.p.error_value;
    for kind in [STACK, KERNEL, HEAP] {
        let got = m.call(gone, kind);
        if got != error {
            return Err(format!(
                "memuse(pid {gone} of an exited and reaped child, {kind}): expected {}, got {}",
                show(error),
                show(got)
            ));
        }
    }
    check(
        "memuse(pid above pid_max, heap)",
        m.call(above, HEAP),
        error,
    )?;
    Ok(())
}

fn errors_negative_pid(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let error = m.p.error_value;
    for (pid, what) in [
        (-1, "memuse(-1, heap)"),
        (-5, "memuse(-5, heap)"),
        (pid_t::MIN, "memuse(INT_MIN, heap)"),
    ] {
        check(what, m.call(pid, HEAP), error)?;
    }
    check("memuse(-1, stack)", m.call(-1, STACK), error)?;
    Ok(())
}

fn errors_zombie_is_an_error(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    let pid = match sys::fork() {
        Ok(0) => sys::exit_now(0),
        Ok(pid) => pid,
        Err(e) => return Err(format!("fork failed: errno {e}")),
    };
    // Exited, not reaped: in the process table, without an address space.
    let waited = sys::wait_until_zombie(pid);
    let got: Vec<i64> = [STACK, KERNEL, HEAP]
        .iter()
        .map(|k| m.call(pid, *k))
        .collect();
    let reaped = sys::wait(pid);
    waited.map_err(|e| format!("waitid(WNOWAIT) failed: errno {e}"))?;
    reaped.map_err(|e| format!("waitpid failed: errno {e}"))?;
    for (kind, got) in [STACK, KERNEL, HEAP].iter().zip(got) {
        if got != m.p.error_value {
            return Err(format!(
                "memuse(a zombie: exited, not reaped, no memory, {kind}): expected {}, got {}",
                show(m.p.error_value),
                show(got)
            ));
        }
    }
    Ok(())
}

fn errors_kernel_thread_is_an_error(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    // pid 2 is kthreadd, the first kernel thread: no address space.
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        return Err(format!("pid 2 is {:?}, not kthreadd", comm.trim()));
    }
    for (kind, what) in [
        (STACK, "memuse(2 = kthreadd, a kernel thread, stack)"),
        (HEAP, "memuse(2 = kthreadd, a kernel thread, heap)"),
    ] {
        check(what, m.call(2, kind), m.p.error_value)?;
    }
    Ok(())
}

fn errors_pid_zero_is_an_error(ctx: &Ctx) -> Result<(), String> {
    let m = Memuse::new(ctx)?;
    for (kind, what) in [
        (STACK, "memuse(0, stack)"),
        (KERNEL, "memuse(0, kernel)"),
        (HEAP, "memuse(0, heap)"),
    ] {
        check(what, m.call(0, kind), m.p.error_value)?;
    }
    Ok(())
}

pub const CASES: &[(&str, CaseFn)] = &[
    ("heap.touched_pages_counted", heap_touched_pages_counted),
    (
        "heap.untouched_growth_at_most_one_page",
        heap_untouched_growth_at_most_one_page,
    ),
    ("heap.shrink_releases_pages", heap_shrink_releases_pages),
    (
        "heap.split_heap_counted_in_full",
        heap_split_heap_counted_in_full,
    ),
    (
        "heap.mapping_at_the_break_is_not_heap",
        heap_mapping_at_the_break_is_not_heap,
    ),
    ("heap.mmap_is_not_heap", heap_mmap_is_not_heap),
    ("heap.no_heap_is_zero", heap_no_heap_is_zero),
    ("stack.recursion_grows", stack_recursion_grows),
    (
        "stack.heap_growth_is_not_stack",
        stack_heap_growth_is_not_stack,
    ),
    (
        "kernel.heap_and_stack_growth_not_counted",
        kernel_heap_and_stack_growth_not_counted,
    ),
    (
        "kernel.mapping_above_stack_counted",
        kernel_mapping_above_stack_counted,
    ),
    (
        "other.child_figure_is_its_own",
        other_child_figure_is_its_own,
    ),
    ("errors.invalid_kind", errors_invalid_kind),
    ("errors.missing_pid", errors_missing_pid),
    ("errors.negative_pid", errors_negative_pid),
    ("errors.zombie_is_an_error", errors_zombie_is_an_error),
    (
        "errors.kernel_thread_is_an_error",
        errors_kernel_thread_is_an_error,
    ),
    ("errors.pid_zero_is_an_error", errors_pid_zero_is_an_error),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(params: &str) -> Plan {
        crate::runner::plan_with_params("memuse", params)
    }

    #[test]
    fn error_value_defaults_to_minus_one_and_must_be_negative() {
        assert_eq!(Params::from_plan(&plan("{}")).unwrap().error_value, -1);
        assert_eq!(
            Params::from_plan(&plan(r#"{"error_value":-22}"#))
                .unwrap()
                .error_value,
            -22
        );
        let e = Params::from_plan(&plan(r#"{"error_value":0}"#)).unwrap_err();
        assert_eq!(
            e,
            "spec parameter error_value: expected an integer from -4095 to -1, got 0"
        );
        assert!(check_plan(&plan(r#"{"error_value":"-1"}"#)).is_err());
        let p = Params::from_plan(&plan(r#"{"kernel_kind":"either"}"#)).unwrap();
        assert_eq!(p.kernel_kind, KernelKind::Either);
        assert_eq!(
            Params::from_plan(&plan("{}")).unwrap().kernel_kind,
            KernelKind::AboveStack
        );
        assert!(check_plan(&plan(r#"{"kernel_kind":"vdso"}"#)).is_err());
    }

    const MAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 00:02 5   /init
55d0c0200000-55d0c0221000 rw-p 00000000 00:00 0   [heap]
7ffd10000000-7ffd10021000 rw-p 00000000 00:00 0   [stack]
7ffd10021000-7ffd10023000 r--p 00000000 00:00 0   [vvar]
7ffd10023000-7ffd10025000 r-xp 00000000 00:00 0   [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0   [vsyscall]
";

    #[test]
    fn maps_lines_parse() {
        let v = parse_maps(MAPS);
        assert_eq!(v.len(), 6);
        assert_eq!(
            v[2],
            Vma {
                start: 0x7ffd_1000_0000,
                end: 0x7ffd_1002_1000,
                name: "[stack]".into()
            }
        );
        assert_eq!(v[0].name, "/init");
        assert_eq!(parse_maps("7f00-7f10 rw-p 0 00:00 0\n")[0].name, "");
        assert!(parse_maps("garbage\n").is_empty());
    }

    #[test]
    fn slots_above_the_stack_keep_clear_of_every_vma() {
        let v = parse_maps(MAPS);
        let page = 0x1000;
        let stack_end = v[2].end;
        // Right after the stack is [vvar]; after [vdso] there is room, and
        // after [vsyscall] (the kernel refuses that one at mmap time).
        let slots = free_slots_above(&v, stack_end, 8 * page, page);
        assert_eq!(slots, vec![0x7ffd_1002_6000, 0xffff_ffff_ff60_2000]);
        for s in &slots {
            assert!(*s > stack_end);
        }
        // A gap too small for len + a page on either side is skipped.
        let tight = parse_maps("1000-2000 rw-p 0 00:00 0 [stack]\n4000-5000 rw-p 0 00:00 0\n");
        assert_eq!(free_slots_above(&tight, 0x2000, page, page), vec![0x6000]);
        let roomy = parse_maps("1000-2000 rw-p 0 00:00 0 [stack]\n5000-6000 rw-p 0 00:00 0\n");
        assert_eq!(
            free_slots_above(&roomy, 0x2000, page, page),
            vec![0x3000, 0x7000]
        );
        // Nothing wraps around the top of the address space.
        let top = parse_maps("fffffffffffff000-ffffffffffffffff rw-p 0 00:00 0\n");
        assert!(free_slots_above(&top, 0, page, page).is_empty());
    }

    #[test]
    fn growth_messages_name_bytes_and_pages() {
        let sys = Syscalls::default();
        let m = Memuse {
            sys: &sys,
            p: Params {
                error_value: -1,
                kernel_kind: KernelKind::AboveStack,
            },
            page: 4096,
        };
        assert!(m.expect_growth("heap", 8192, 8192 + 3 * 4096, 3).is_ok());
        assert_eq!(
            m.expect_growth("heap", 8192, 8192 + 2 * 4096, 3)
                .unwrap_err(),
            "heap: expected +12288 bytes (3 pages), got +8192 bytes (2 pages)"
        );
        assert_eq!(
            m.expect_growth("heap", 8192, 4096, 1).unwrap_err(),
            "heap: expected +4096 bytes (1 page), got -4096 bytes (1 page)"
        );
        assert!(m.expect_growth_between("s", 0, 4096, 0, 1).is_ok());
        assert!(m.expect_growth_between("s", 4096, 0, 0, 1).is_err());
        assert_eq!(
            m.expect_growth_between("s", 0, 3 * 4096, 0, 1).unwrap_err(),
            "s: expected between +0 and +1 pages, got +12288 bytes (3 pages)"
        );
        assert_eq!(
            m.expect_unchanged("k", 4096, 8192).unwrap_err(),
            "k: expected no change from 4096 bytes (1 page), got +4096 bytes (1 page)"
        );
        assert_eq!(m.call(1, HEAP), -(libc::ENOSYS as i64));
    }
}
