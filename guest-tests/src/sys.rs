//! The system layer: the only module that knows syscall numbers, kernel struct
//! layouts and the differences between arches (x86_64, aarch64, i686) and C
//! libraries (glibc, musl).
//!
//! Results keep the kernel's convention where the tests compare them with the
//! contract: a negative errno on error (`libc::syscall`'s -1/errno is turned
//! back into -errno). Everything here that a test calls between two `fetch`es
//! must not allocate: glibc's malloc may grow the heap being measured.

use libc::{c_int, c_long, c_ulong, c_void, pid_t};
use std::collections::BTreeMap;
use std::ffi::CStr;

/// Same number on every arch since Linux 5.6 (the generic table).
const SYS_OPENAT2: c_long = 437;
/// Same number on every arch since Linux 5.3.
const SYS_CLONE3: c_long = 435;
const ENOSYS: i64 = libc::ENOSYS as i64;

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// c_long is 64 or 32 bits wide by arch; widening is exact on all of them.
#[allow(clippy::useless_conversion)]
pub fn wide(v: c_long) -> i64 {
    i64::from(v)
}

/// c_ulong is 64 or 32 bits wide by arch; widening is exact on all of them.
#[allow(clippy::useless_conversion)]
pub fn uwide(v: c_ulong) -> u64 {
    u64::from(v)
}

/// `libc::syscall`'s -1/errno back into the kernel's -errno.
fn raw(r: c_long) -> i64 {
    if r == -1 {
        -i64::from(errno())
    } else {
        wide(r)
    }
}

/// A libc call returning -1/errno on failure, as a kernel-style result.
fn ret(r: c_int) -> i64 {
    raw(r as c_long)
}

/// The student's syscalls, by the names the host found in the patched tree.
#[derive(Debug, Clone, Default)]
pub struct Syscalls {
    numbers: BTreeMap<String, u32>,
}

impl Syscalls {
    pub fn new(numbers: &BTreeMap<String, u32>) -> Syscalls {
        Syscalls {
            numbers: numbers.clone(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.numbers.contains_key(name)
    }

    /// Calls syscall `name` with up to six arguments; returns the raw kernel
    /// result, or -ENOSYS when the plan has no such syscall. Allocation-free.
    pub fn call(&self, name: &str, args: &[c_long]) -> i64 {
        let Some(&nr) = self.numbers.get(name) else {
            return -ENOSYS;
        };
        let mut a: [c_long; 6] = [0; 6];
        for (slot, v) in a.iter_mut().zip(args) {
            *slot = *v;
        }
        // SAFETY: the kernel validates every argument; pointers passed by the
        // callers point at live stack or mapped memory, or are deliberately bad
        // (the kernel must reject them without touching user memory unsafely).
        raw(unsafe { libc::syscall(nr as c_long, a[0], a[1], a[2], a[3], a[4], a[5]) })
    }
}

/// `struct per_proc_resource` as the tracker's `fetch` copies it out: C layout
/// with natural alignment (24 bytes on 64-bit, 12 on i686).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerProcResource {
    pub pid: pid_t,
    pub heapsize: c_ulong,
    pub openfile_count: c_ulong,
}

impl PerProcResource {
    /// A pattern no correct `fetch` leaves behind, to see that it filled the struct.
    pub fn poisoned() -> PerProcResource {
        PerProcResource {
            pid: -0x5a5a_5a5b,
            heapsize: c_ulong::MAX - 0x5a,
            openfile_count: c_ulong::MAX - 0x5a,
        }
    }
}

/// `MAX_SIZE` of the pfstat handout: how many VMAs one `struct pf_stat` lists.
pub const PF_STAT_MAX: usize = 128;

/// `struct pf_stat` as pfstat's `pf_get_info` copies it out: C layout with
/// natural alignment (1544 bytes on i686).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PfStat {
    pub nb_vma: c_int,
    pub cow_page_faults: c_long,
    pub vma_fault: [c_long; PF_STAT_MAX],
    pub vma_list_start: [c_ulong; PF_STAT_MAX],
    pub vma_list_end: [c_ulong; PF_STAT_MAX],
}

impl PfStat {
    /// A pattern no correct `pf_get_info` leaves behind in the fields it fills.
    pub fn poisoned() -> PfStat {
        PfStat {
            nb_vma: -0x5a5a_5a5b,
            cow_page_faults: -0x5a5a_5a5b,
            vma_fault: [-0x5a5a_5a5b; PF_STAT_MAX],
            vma_list_start: [c_ulong::MAX - 0x5a; PF_STAT_MAX],
            vma_list_end: [c_ulong::MAX - 0x5a; PF_STAT_MAX],
        }
    }
}

// ---------------------------------------------------------------- fenced output

/// Poisoned bytes after every output struct the kernel writes: a syscall that
/// copies more than its struct lands here instead of in the test's stack.
pub const FENCE_BYTES: usize = 1024;
/// The fence's byte; [`FENCE_ALT`] tells a written 0xa5 from an untouched one.
pub const FENCE_POISON: u8 = 0xa5;
pub const FENCE_ALT: u8 = 0x3c;

/// An output struct followed by [`FENCE_BYTES`] poisoned bytes.
#[repr(C)]
pub struct Fenced<T: Copy> {
    pub value: T,
    fence: [u8; FENCE_BYTES],
}

impl<T: Copy> Fenced<T> {
    pub fn new(value: T) -> Fenced<T> {
        Fenced {
            value,
            fence: [FENCE_POISON; FENCE_BYTES],
        }
    }

    /// The address to hand to the kernel (of the struct; the fence follows).
    pub fn addr(&mut self) -> usize {
        self as *mut Fenced<T> as usize
    }

    /// How many bytes past the struct the kernel wrote (0: none).
    pub fn overrun(&self) -> usize {
        let base = self.fence.as_ptr();
        // Volatile: the kernel wrote these bytes behind the compiler's back.
        // SAFETY: every index is inside self.fence.
        overrun_of(
            |i| unsafe { std::ptr::read_volatile(base.add(i)) },
            FENCE_BYTES,
            FENCE_POISON,
        )
    }
}

/// One past the last byte of a fence of `len` bytes that is not `poison`.
fn overrun_of(byte: impl Fn(usize) -> u8, len: usize, poison: u8) -> usize {
    (0..len)
        .rev()
        .find(|&i| byte(i) != poison)
        .map_or(0, |i| i + 1)
}

/// An output struct at the end of a mapping, then a fence, then a
/// PROT_NONE page: an overrun of any size is measured or refused, never a
/// crash. Map it before registering anything (the mapping is anonymous).
pub struct GuardedSlot {
    base: usize,
    len: usize,
    /// Offset of the struct in the mapping.
    at: usize,
    size: usize,
}

impl GuardedSlot {
    pub fn new(size: usize, align: usize) -> Result<GuardedSlot, i32> {
        let page = page_size();
        let rw = (size + FENCE_BYTES).div_ceil(page) * page;
        let len = rw + page;
        let base = mmap(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
        )?;
        if mprotect(base + rw, page, libc::PROT_NONE) < 0 {
            let e = errno();
            munmap(base, len);
            return Err(e);
        }
        let at = (rw - FENCE_BYTES - size) / align * align;
        Ok(GuardedSlot {
            base,
            len,
            at,
            size,
        })
    }

    /// Fills the struct with `value`'s bytes and the rest with `poison`;
    /// returns the struct's address.
    pub fn fill<T: Copy>(&self, value: &T, poison: u8) -> usize {
        let rw = self.len - page_size();
        let addr = self.base + self.at;
        // SAFETY: [base, base + rw) is our read-write mapping, and the
        // struct's place was computed to fit inside it, aligned for T.
        unsafe {
            std::ptr::write_bytes(self.base as *mut u8, poison, rw);
            std::ptr::write_unaligned(addr as *mut T, *value);
        }
        addr
    }

    /// Bytes written past the struct since `fill(.., poison)`; the fence's
    /// full length when the kernel reached the guard page.
    pub fn overrun(&self, poison: u8) -> usize {
        let end = self.base + self.at + self.size;
        let len = self.base + self.len - page_size() - end;
        // SAFETY: [end, end + len) is inside the read-write mapping.
        overrun_of(
            |i| unsafe { std::ptr::read_volatile((end + i) as *const u8) },
            len,
            poison,
        )
    }

    /// Bytes between the struct's end and the guard page.
    pub fn fence_len(&self) -> usize {
        self.len - page_size() - self.at - self.size
    }

    /// The struct's bytes as the kernel left them.
    pub fn read<T: Copy>(&self) -> T {
        // SAFETY: the struct's place is inside the mapping.
        unsafe { std::ptr::read_unaligned((self.base + self.at) as *const T) }
    }
}

impl Drop for GuardedSlot {
    fn drop(&mut self) {
        munmap(self.base, self.len);
    }
}

// ---------------------------------------------------------------- processes

/// The running kernel's version string (`uname -v`), empty if unknown.
pub fn kernel_version() -> String {
    // SAFETY: a zeroed utsname is valid, and uname() writes only into it.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.version.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// How many CPUs this process may run on (0 if the kernel will not say).
pub fn cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and the call writes
    // at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        libc::CPU_COUNT(&set) as usize
    }
}

pub fn getpid() -> pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// The calling thread's id (glibc before 2.30 and old musl lack gettid()).
pub fn gettid() -> pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as pid_t }
}

/// fork(2): Ok(0) in the child, Ok(pid) in the parent.
pub fn fork() -> Result<pid_t, i32> {
    // SAFETY: the guest forks only while single-threaded (or from a child
    // that then only makes syscalls), so the child's libc state is consistent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(errno())
    } else {
        Ok(pid)
    }
}

/// `struct clone_args` (CLONE_ARGS_SIZE_VER2, Linux 5.7+).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A fork-like clone3 whose child gets exactly `pid` (set_tid; needs
/// CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN, which /init has). Ok(0) in the
/// child, which shares no memory with the parent but must stick to raw
/// syscalls: glibc's fork handlers did not run.
pub fn clone_with_pid(pid: pid_t) -> Result<pid_t, i32> {
    let tids: [pid_t; 1] = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as usize as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: no CLONE_VM and no new stack: the child continues on a copy of
    // this stack, exactly as after fork().
    let r = raw(unsafe {
        libc::syscall(
            SYS_CLONE3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    });
    if r < 0 {
        Err((-r) as i32)
    } else {
        Ok(r as pid_t)
    }
}

/// Sets the calling thread's comm (prctl PR_SET_NAME; the kernel keeps 15
/// bytes). Allocation-free.
pub fn set_comm(name: &[u8]) -> i64 {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name[..n]);
    // SAFETY: buf is NUL-terminated and outlives the call.
    ret(unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as c_ulong, 0, 0, 0) })
}

/// Ends the calling process at once: no destructors, no atexit, no flushing.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// Decodes a waitpid status (None for stop/continue reports).
pub fn decode_status(status: c_int) -> Option<ChildEnd> {
    if libc::WIFEXITED(status) {
        Some(ChildEnd::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ChildEnd::Signaled(libc::WTERMSIG(status)))
    } else {
        None
    }
}

/// waitpid(pid, WNOHANG): Ok(None) while it runs. pid -1 means any child;
/// the second value is the pid that ended.
pub fn try_wait(pid: pid_t) -> Result<Option<(pid_t, ChildEnd)>, i32> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        if let Some(end) = decode_status(status) {
            return Ok(Some((r, end)));
        }
    }
}

/// Blocking waitpid for one child.
pub fn wait(pid: pid_t) -> Result<ChildEnd, i32> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if let Some(end) = decode_status(status) {
            return Ok(end);
        }
    }
}

/// Waits until child `pid` has exited, leaving it a zombie (waitid with
/// WNOWAIT): it is still in the process table, and exiting.
pub fn wait_until_zombie(pid: pid_t) -> Result<(), i32> {
    loop {
        // SAFETY: zeroed siginfo is a valid out buffer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// kill(2); negative pid: a process group.
pub fn kill(pid: pid_t, sig: c_int) -> i64 {
    // SAFETY: plain syscall.
    ret(unsafe { libc::kill(pid, sig) })
}

pub fn setpgid(pid: pid_t, pgid: pid_t) -> i64 {
    // SAFETY: plain syscall.
    ret(unsafe { libc::setpgid(pid, pgid) })
}

/// The kernel's pid_max (pids are always below it).
pub fn pid_max() -> i64 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|n| *n > 0)
        // PID_MAX_LIMIT on 64-bit: no pid is ever this large.
        .unwrap_or(4 * 1024 * 1024)
}

/// A pid no process can have: above pid_max.
pub fn pid_above_max() -> pid_t {
    pid_t::try_from(pid_max() + 1).unwrap_or(pid_t::MAX)
}

// ---------------------------------------------------------------- fds

pub fn pipe() -> Result<(c_int, c_int), i32> {
    let mut fds: [c_int; 2] = [-1, -1];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
        return Err(errno());
    }
    Ok((fds[0], fds[1]))
}

/// close(2) as a kernel-style result.
pub fn close(fd: c_int) -> i64 {
    // SAFETY: closing any number is memory-safe.
    ret(unsafe { libc::close(fd) })
}

/// read(2) into buf: bytes read or -errno (EINTR retried).
pub fn read(fd: c_int, buf: &mut [u8]) -> i64 {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return if r < 0 { -i64::from(errno()) } else { r as i64 };
    }
}

/// Writes all of buf (EINTR and short writes retried); false on error.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        if r == 0 {
            return false;
        }
        buf = &buf[r as usize..];
    }
    true
}

pub fn set_nonblocking(fd: c_int) {
    // SAFETY: fcntl on any fd is memory-safe.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Waits up to `ms` for fd to become readable (or hung up).
pub fn poll_readable(fd: c_int, ms: c_int) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// open(2) itself where the arch has it (x86_64, i686); elsewhere libc's
/// open(), which reaches the kernel as openat. Returns the fd or -errno.
pub fn open(path: &CStr, flags: c_int) -> i64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        // SAFETY: path is NUL-terminated.
        raw(unsafe { libc::syscall(libc::SYS_open, path.as_ptr(), flags as c_long, 0 as c_long) })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        // SAFETY: path is NUL-terminated.
        ret(unsafe { libc::open(path.as_ptr(), flags, 0 as libc::c_uint) })
    }
}

/// openat(2) relative to the working directory, as a raw syscall.
pub fn openat(path: &CStr, flags: c_int) -> i64 {
    // SAFETY: path is NUL-terminated.
    raw(unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as c_long,
            path.as_ptr(),
            flags as c_long,
            0 as c_long,
        )
    })
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) relative to the working directory, as a raw syscall.
pub fn openat2(path: &CStr, flags: c_int) -> i64 {
    let how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: 0,
    };
    // SAFETY: path is NUL-terminated, how is a live open_how of the size given.
    raw(unsafe {
        libc::syscall(
            SYS_OPENAT2,
            libc::AT_FDCWD as c_long,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

// ---------------------------------------------------------------- memory

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Moves the program break by `inc` bytes; returns the old break.
///
/// glibc: its own sbrk(), so glibc's malloc (which also uses the break)
/// keeps an accurate idea of where the break is.
#[cfg(target_env = "gnu")]
pub fn sbrk(inc: isize) -> Result<usize, i32> {
    // SAFETY: moving the break; nothing of ours lives above it.
    let old = unsafe { libc::sbrk(inc as libc::intptr_t) };
    if old as isize == -1 {
        Err(errno())
    } else {
        Ok(old as usize)
    }
}

/// Moves the program break by `inc` bytes; returns the old break.
///
/// musl's sbrk() refuses non-zero increments, so this uses brk(2) directly;
/// musl's malloc does not depend on the break staying where it left it.
#[cfg(not(target_env = "gnu"))]
pub fn sbrk(inc: isize) -> Result<usize, i32> {
    // SAFETY: brk(0) only reads the break.
    let cur = unsafe { libc::syscall(libc::SYS_brk, 0 as c_long) } as usize;
    if inc == 0 {
        return Ok(cur);
    }
    let want = cur.wrapping_add_signed(inc);
    // SAFETY: moving the break; nothing of ours lives above it.
    let got = unsafe { libc::syscall(libc::SYS_brk, want as c_long) } as usize;
    if got == want {
        Ok(cur)
    } else {
        Err(libc::ENOMEM)
    }
}

/// Puts the break on a page boundary (static glibc leaves it wherever its TLS
/// setup ended), so later page-multiple moves change the heap by exactly
/// that many bytes however the kernel or the student rounds.
pub fn align_brk() -> Result<(), i32> {
    let cur = sbrk(0)?;
    let page = page_size();
    let pad = (page - cur % page) % page;
    if pad > 0 {
        sbrk(pad as isize)?;
    }
    Ok(())
}

/// mmap(2) through libc (mmap2 on i686); returns the address.
pub fn mmap(len: usize, prot: c_int, flags: c_int, fd: c_int) -> Result<usize, i32> {
    // SAFETY: a new mapping at an address of the kernel's choosing.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p as usize)
    }
}

pub fn mprotect(addr: usize, len: usize, prot: c_int) -> i64 {
    // SAFETY: callers change only mappings they made.
    ret(unsafe { libc::mprotect(addr as *mut c_void, len, prot) })
}

/// Opens /dev/kmsg positioned after the last record: what it reads next is
/// what the kernel logs from now on. Non-blocking: a read past the last
/// record is -EAGAIN.
pub fn kmsg_open_at_end() -> Result<c_int, i32> {
    // SAFETY: NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/dev/kmsg".as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: seeking an fd we own.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_END) } < 0 {
        let e = errno();
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// brk(2) itself, bypassing libc: the break the kernel ends up with (the
/// old one when it refuses). For children that gave up on libc's heap.
pub fn brk(addr: usize) -> usize {
    // SAFETY: moving the break; callers use nothing above the new one.
    (unsafe { libc::syscall(libc::SYS_brk, addr as c_long) }) as usize
}

/// Sets the kernel's record of the calling process's heap, `mm->start_brk`
/// and `mm->brk`, without mapping or unmapping anything: prctl(PR_SET_MM),
/// which needs CAP_SYS_RESOURCE (/init has it). `brk` is set first, so
/// both may move up past the old break.
pub fn set_heap_bounds(start_brk: usize, brk: usize) -> Result<(), i32> {
    for (what, addr) in [
        (libc::PR_SET_MM_BRK, brk),
        (libc::PR_SET_MM_START_BRK, start_brk),
    ] {
        // SAFETY: plain syscall on integers.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                what as c_ulong,
                addr as c_ulong,
                0 as c_ulong,
                0 as c_ulong,
            )
        };
        if r < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// A private anonymous read-write mapping at exactly `addr`, never over an
/// existing one (MAP_FIXED_NOREPLACE, Linux 4.17+; an older kernel takes the
/// flag as a hint, and a mapping elsewhere is undone and refused).
pub fn mmap_at(addr: usize, len: usize) -> Result<usize, i32> {
    // SAFETY: NOREPLACE: the kernel fails rather than replace a mapping.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    if p as usize != addr {
        munmap(p as usize, len);
        return Err(libc::EEXIST);
    }
    Ok(addr)
}

/// A private anonymous mapping of `prot` at exactly `addr`, never over an
/// existing one (see [`mmap_at`]).
pub fn mmap_at_prot(addr: usize, len: usize, prot: c_int) -> Result<usize, i32> {
    // SAFETY: NOREPLACE: the kernel fails rather than replace a mapping.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    if p as usize != addr {
        munmap(p as usize, len);
        return Err(libc::EEXIST);
    }
    Ok(addr)
}

/// Reads one byte at `addr`, so that its page is present (the zero page
/// for an anonymous mapping never written).
///
/// Callers pass addresses inside readable mappings they made themselves.
pub fn peek(addr: usize) -> u8 {
    // SAFETY: see above; volatile so the read is not optimised away.
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

/// Writes one byte at `addr`, so that its page is present.
///
/// Callers pass addresses inside writable mappings they made themselves.
pub fn poke(addr: usize) {
    // SAFETY: see above; volatile so the write is not optimised away.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 0x5a) }
}

pub fn munmap(addr: usize, len: usize) -> i64 {
    // SAFETY: callers unmap only mappings they made and no longer use.
    ret(unsafe { libc::munmap(addr as *mut c_void, len) })
}

// ---------------------------------------------------------------- the machine

/// Mounts the filesystems the tests need; returns one note per failure.
pub fn mount_basics() -> Vec<String> {
    let mounts: [(&CStr, &CStr, &CStr); 4] = [
        (c"proc", c"/proc", c"proc"),
        (c"sysfs", c"/sys", c"sysfs"),
        (c"devtmpfs", c"/dev", c"devtmpfs"),
        // Files for the mmap and open tests: tmpfs is a real page-cache fs.
        (c"tmpfs", c"/tmp", c"tmpfs"),
    ];
    let mut notes = Vec::new();
    for (source, target, fstype) in mounts {
        // SAFETY: NUL-terminated paths; EEXIST is fine.
        unsafe { libc::mkdir(target.as_ptr(), 0o755) };
        // SAFETY: NUL-terminated strings, no data.
        let r = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r < 0 {
            let e = errno();
            if e != libc::EBUSY {
                notes.push(format!(
                    "mount {} on {}: {}",
                    fstype.to_string_lossy(),
                    target.to_string_lossy(),
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
    }
    notes
}

/// Syncs and reboots; QEMU runs with -no-reboot, so this ends the VM.
pub fn reboot() -> ! {
    // SAFETY: only ever reached as pid 1 inside the VM (main checks).
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_RESTART);
    }
    // If the reboot did not happen, pid 1 must still never exit (a kernel panic).
    loop {
        // SAFETY: pause has no memory effects.
        unsafe { libc::pause() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_struct_has_the_c_layout() {
        let word = std::mem::size_of::<c_ulong>();
        assert_eq!(std::mem::size_of::<PerProcResource>(), 3 * word);
        assert_eq!(std::mem::offset_of!(PerProcResource, heapsize), word);
        assert_eq!(
            std::mem::offset_of!(PerProcResource, openfile_count),
            2 * word
        );
    }

    #[test]
    fn pf_stat_has_the_c_layout() {
        let word = std::mem::size_of::<c_ulong>();
        let size = std::mem::size_of::<PfStat>();
        // int + long, then three arrays of 128 longs (1544 bytes on i686).
        assert_eq!(size, 2 * word + 3 * PF_STAT_MAX * word);
        assert_eq!(std::mem::offset_of!(PfStat, cow_page_faults), word);
        assert_eq!(std::mem::offset_of!(PfStat, vma_fault), 2 * word);
        assert_eq!(
            std::mem::offset_of!(PfStat, vma_list_end),
            2 * word + 2 * PF_STAT_MAX * word
        );
        #[cfg(target_arch = "x86")]
        assert_eq!(size, 1544);
    }

    #[test]
    fn fences_measure_what_was_written_past_the_struct() {
        let mut f = Fenced::new(PerProcResource::poisoned());
        assert_eq!(f.overrun(), 0);
        let size = std::mem::size_of::<PerProcResource>();
        // SAFETY: 16 bytes past the struct are inside the fence.
        unsafe { std::ptr::write_bytes((f.addr() + size) as *mut u8, 0, 16) };
        assert_eq!(f.overrun(), 16);
        assert_eq!(overrun_of(|i| [0xa5, 1, 0xa5, 0xa5][i], 4, 0xa5), 2);
    }

    #[test]
    fn a_guarded_slot_puts_the_struct_before_its_fence() {
        let slot = GuardedSlot::new(24, 8).unwrap();
        assert!(slot.fence_len() >= FENCE_BYTES);
        let v = PerProcResource::poisoned();
        let addr = slot.fill(&v, FENCE_POISON);
        assert_eq!(addr % 8, 0);
        assert_eq!(slot.read::<PerProcResource>(), v);
        assert_eq!(slot.overrun(FENCE_POISON), 0);
        // SAFETY: 40 bytes from the struct stay inside the fence.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, 40) };
        assert_eq!(slot.overrun(FENCE_POISON), 16);
        assert_eq!(slot.fill(&v, FENCE_ALT), addr);
        assert_eq!(slot.overrun(FENCE_ALT), 0);
    }

    #[test]
    fn kernel_structs_have_their_abi_sizes() {
        assert_eq!(std::mem::size_of::<OpenHow>(), 24);
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
    }

    #[test]
    fn wait_statuses_decode() {
        // exit(3): status 3 << 8; killed by SIGKILL: 9.
        assert_eq!(decode_status(3 << 8), Some(ChildEnd::Exited(3)));
        assert_eq!(decode_status(9), Some(ChildEnd::Signaled(9)));
        // Stopped by SIGSTOP: 0x137f.
        assert_eq!(decode_status(0x137f), None);
    }

    #[test]
    fn a_missing_syscall_is_enosys_without_calling_anything() {
        let s = Syscalls::new(&BTreeMap::new());
        assert!(!s.has("register"));
        assert_eq!(s.call("register", &[1]), -ENOSYS);
    }
}
