//! Booting a kernel under QEMU: serial console captured to a file with a size
//! cap, a wall-clock limit, and KVM only where a probe showed it works.
//!
//! The guest is a student's kernel, so QEMU gets nothing it does not need:
//! no default devices and no network card (`-nodefaults`, `-nic none`), and
//! its seccomp filter (`-sandbox on`, denying privilege changes, spawning
//! processes and the obsolete syscalls) wherever the binary has one.

use crate::arch::Arch;
use crate::ioerr::{io, IoError};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why QEMU could not run a boot (never the submission's doing).
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "cannot start {program}: {source} (apt-get install qemu-system; `kgrade doctor` checks)"
    )]
    /// QEMU could not be started.
    Spawn {
        /// The QEMU binary.
        program: String,
        /// Why not.
        source: std::io::Error,
    },
    /// The console log could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// QEMU exited by itself (guest reboot or panic with -no-reboot).
    Exited,
    /// The wall-clock limit ran out and QEMU was killed.
    TimedOut,
    /// The console passed the size cap and QEMU was killed.
    Flooded,
}

/// One boot, as QEMU left it.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The serial console, up to its cap.
    pub console: String,
    /// How QEMU ended.
    pub ended: Ended,
    /// How long it ran.
    pub seconds: f64,
    /// The accelerator used (tcg or kvm).
    pub accel: String,
}

/// What to boot, and how.
#[derive(Debug, Clone)]
pub struct BootSpec<'a> {
    /// The machine.
    pub arch: &'a Arch,
    /// The kernel image.
    pub kernel: &'a Path,
    /// The initramfs.
    pub initrd: &'a Path,
    /// Wall-clock limit for the whole boot.
    pub timeout: Duration,
    /// Bytes of console kept; past it the boot is stopped as flooded.
    pub console_cap: usize,
    /// Where the console is written.
    pub log: &'a Path,
    /// `tcg` or `kvm`.
    pub accel: &'a str,
}

/// The kernel command line: console on the arch's UART, and every kind of
/// kernel failure ends QEMU at once instead of waiting for the timeout.
/// `trace_clock=global` is the tracing clock the kernel picks anyway when
/// the TSC of two TCG vCPUs looks unstable; named, the pick (and its
/// console warning) no longer depends on how the TSC check came out.
pub fn cmdline(arch: &Arch) -> String {
    format!(
        "console={} panic=-1 oops=panic softlockup_panic=1 hung_task_panic=1 loglevel=5 \
         trace_clock=global rdinit=/init",
        arch.console
    )
}

/// QEMU's seccomp filter, for binaries built with it.
pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// Whether `qemu` accepts [`SANDBOX`]: it is started with no machine and told
/// to quit over QMP; a binary without seccomp refuses the option and fails.
/// Asked once per binary and process.
pub fn supports_sandbox(qemu: &str) -> bool {
    static KNOWN: OnceLock<Mutex<std::collections::HashMap<String, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(&answer) = known.lock().unwrap_or_else(|e| e.into_inner()).get(qemu) {
        return answer;
    }
    let answer = probe_sandbox(qemu);
    known
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(qemu.to_string(), answer);
    answer
}

fn probe_sandbox(qemu: &str) -> bool {
    let child = Command::new(qemu)
        .args([
            "-M",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-sandbox", SANDBOX, "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n");
    }
    // A QEMU that neither quits nor fails within seconds is not trusted with it.
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The QEMU command line, `sandbox` saying whether to add `-sandbox`.
pub fn command_with(spec: &BootSpec, sandbox: bool) -> Command {
    let mut cmd = Command::new(&spec.arch.qemu);
    cmd.args(&spec.arch.qemu_args)
        .args(["-accel", spec.accel])
        // Only what the arch's board has built in, the serial port on stdio
        // and nothing else: no NIC, no VGA, no monitor, no parallel port.
        .args(["-nodefaults", "-no-user-config", "-nic", "none"])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ]);
    if sandbox {
        cmd.args(["-sandbox", SANDBOX]);
    }
    cmd.arg("-kernel")
        .arg(spec.kernel)
        .arg("-initrd")
        .arg(spec.initrd)
        .arg("-append")
        .arg(cmdline(spec.arch));
    cmd
}

/// The command [`boot`] runs: sandboxed where this QEMU supports it.
pub fn command(spec: &BootSpec) -> Command {
    command_with(spec, supports_sandbox(&spec.arch.qemu))
}

/// Boots once and returns the console text.
pub fn boot(spec: &BootSpec) -> Result<Boot, QemuError> {
    let start = Instant::now();
    let mut child = command(spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| QemuError::Spawn {
            program: spec.arch.qemu.clone(),
            source,
        })?;
    let mut log = std::fs::File::create(spec.log).map_err(io(spec.log))?;
    let flooded = Arc::new(AtomicBool::new(false));
    let mut stdout = child.stdout.take();
    let cap = spec.console_cap;
    let flood_flag = flooded.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        if let Some(out) = stdout.as_mut() {
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let room = cap.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
                let _ = log.write_all(&chunk[..n.min(room)]);
                if n > room {
                    flood_flag.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
        buf
    });
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let ended = loop {
        if flooded.load(Ordering::SeqCst) {
            let _ = child.kill();
            break Ended::Flooded;
        }
        match child.try_wait() {
            Ok(Some(_)) => break Ended::Exited,
            Ok(None) => {}
            Err(_) => break Ended::Exited,
        }
        if start.elapsed() >= spec.timeout {
            let _ = child.kill();
            break Ended::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.wait();
    let bytes = reader.join().unwrap_or_default();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let mut console = String::from_utf8_lossy(&bytes).into_owned();
    if !qemu_stderr.trim().is_empty() {
        console.push_str("\n[qemu stderr] ");
        console.push_str(qemu_stderr.trim());
        console.push('\n');
    }
    Ok(Boot {
        console,
        ended,
        seconds: start.elapsed().as_secs_f64(),
        accel: spec.accel.to_string(),
    })
}

fn kvm_native(arch: &Arch) -> bool {
    matches!(
        (std::env::consts::ARCH, arch.qemu.as_str()),
        ("x86_64", "qemu-system-x86_64")
            | ("x86_64", "qemu-system-i386")
            | ("aarch64", "qemu-system-aarch64")
    ) && Path::new("/dev/kvm").exists()
}

/// Whether KVM might work here and nobody has tried yet.
pub fn kvm_probe_due(arch: &Arch, probe_cache: &Path) -> bool {
    kvm_native(arch) && !probe_cache.exists()
}

/// TCG unless `KGRADE_ACCEL` says otherwise, or a cached probe showed that KVM
/// really runs a guest on this host (a present /dev/kvm is not enough: nested
/// setups hang). The probe itself is [`probe_kvm`].
pub fn choose_accel(arch: &Arch, probe_cache: &Path) -> String {
    if let Ok(a) = std::env::var("KGRADE_ACCEL") {
        return a;
    }
    if kvm_native(arch) {
        if let Ok(answer) = std::fs::read_to_string(probe_cache) {
            if answer.trim() == "kvm" {
                return "kvm".into();
            }
        }
    }
    "tcg".into()
}

/// Boots the reference solution's kernel under KVM and records whether its
/// guest reached the tests; later runs read the answer ([`choose_accel`]).
/// Only ever given the reference's kernel: a student's could hang or crash
/// on purpose and so decide the accelerator of every later run.
pub fn probe_kvm(reference: &BootSpec, probe_cache: &Path) -> Result<bool, QemuError> {
    let boot = boot(&BootSpec {
        accel: "kvm",
        timeout: Duration::from_secs(20),
        console_cap: 1 << 20,
        ..reference.clone()
    })?;
    let works = boot.console.contains(kgrade_protocol::BEGIN_MARKER);
    record_kvm_probe(probe_cache, works);
    Ok(works)
}

fn record_kvm_probe(probe_cache: &Path, works: bool) {
    if let Some(dir) = probe_cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(probe_cache, if works { "kvm" } else { "tcg" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch() -> Arch {
        Arch {
            make_arch: "x86_64".into(),
            cross_compile: String::new(),
            make_target: "bzImage".into(),
            image: "arch/x86/boot/bzImage".into(),
            fragment: "x86_64.config".into(),
            qemu: "qemu-system-x86_64".into(),
            qemu_args: vec!["-M".into(), "pc".into()],
            console: "ttyS0".into(),
            rust_target: "x86_64-unknown-linux-gnu".into(),
            linker: "gcc".into(),
            syscall_tables: vec![],
            syscall_abis: vec![],
            dpkg_arch: "amd64".into(),
            qemu_package: "qemu-system-x86".into(),
            packages: vec![],
        }
    }

    #[test]
    fn command_line_ends_qemu_on_every_failure() {
        let a = arch();
        let c = cmdline(&a);
        for want in [
            "console=ttyS0",
            "panic=-1",
            "oops=panic",
            "softlockup_panic=1",
        ] {
            assert!(c.contains(want), "{c}");
        }
        let spec = BootSpec {
            arch: &a,
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            timeout: Duration::from_secs(1),
            console_cap: 10,
            log: Path::new("/l"),
            accel: "tcg",
        };
        let argv = crate::process::describe(&command(&spec));
        assert!(
            argv.contains("-no-reboot")
                && argv.contains("-accel tcg")
                && argv.contains("-kernel /k"),
            "{argv}"
        );
    }

    #[test]
    fn the_guest_gets_no_default_devices_and_no_network() {
        let a = arch();
        let spec = BootSpec {
            arch: &a,
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            timeout: Duration::from_secs(1),
            console_cap: 10,
            log: Path::new("/l"),
            accel: "tcg",
        };
        for sandbox in [false, true] {
            let argv = crate::process::describe(&command_with(&spec, sandbox));
            assert!(
                argv.contains("-nodefaults") && argv.contains("-nic none"),
                "{argv}"
            );
            assert!(
                !argv.contains("-netdev") && !argv.contains("-net "),
                "{argv}"
            );
            assert!(argv.contains("-serial stdio"), "{argv}");
            assert_eq!(
                argv.contains(&format!("-sandbox {SANDBOX}")),
                sandbox,
                "{argv}"
            );
        }
    }

    #[test]
    fn sandbox_probe_answers_for_the_binary_at_hand() {
        // A missing binary, or one that fails on the option, has no sandbox.
        assert!(!supports_sandbox("/nonexistent/qemu-system-x86_64"));
        assert!(!probe_sandbox("false"));
        // Debian's QEMU is built with seccomp; where it is installed it must
        // accept the filter kgrade asks for.
        if crate::process::have("qemu-system-x86_64") {
            assert!(supports_sandbox("qemu-system-x86_64"));
        }
    }

    #[test]
    fn accel_defaults_to_tcg_without_a_probe() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("KGRADE_ACCEL").is_none() {
            assert_eq!(choose_accel(&arch(), &dir.path().join("none")), "tcg");
        }
    }
}
