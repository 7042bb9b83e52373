//! Booting a kernel under QEMU: serial console captured to a file with a size
//! cap, a wall-clock limit, and KVM only where a probe showed it works.

use crate::target::Arch;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "cannot start {program}: {source} (apt-get install qemu-system; `kgrade doctor` checks)"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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

#[derive(Debug, Clone)]
pub struct Boot {
    pub console: String,
    pub ended: Ended,
    pub seconds: f64,
    pub accel: String,
}

#[derive(Debug, Clone)]
pub struct BootSpec<'a> {
    pub arch: &'a Arch,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub timeout: Duration,
    pub console_cap: usize,
    pub log: &'a Path,
    pub accel: &'a str,
}

/// The kernel command line: console on the arch's UART, and every kind of
/// kernel failure ends QEMU at once instead of waiting for the timeout.
pub fn cmdline(arch: &Arch) -> String {
    format!(
        "console={} panic=-1 oops=panic softlockup_panic=1 hung_task_panic=1 loglevel=5 rdinit=/init",
        arch.console
    )
}

pub fn command(spec: &BootSpec) -> Command {
    let mut cmd = Command::new(&spec.arch.qemu);
    cmd.args(&spec.arch.qemu_args)
        .args(["-accel", spec.accel])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(spec.kernel)
        .arg("-initrd")
        .arg(spec.initrd)
        .arg("-append")
        .arg(cmdline(spec.arch));
    cmd
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
    let mut log = std::fs::File::create(spec.log).map_err(|source| QemuError::Io {
        path: spec.log.into(),
        source,
    })?;
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

/// Boots a known-good kernel with KVM and records whether the guest reached
/// its init (the caller judges the console); later runs read the answer.
pub fn record_kvm_probe(probe_cache: &Path, works: bool) {
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
    fn accel_defaults_to_tcg_without_a_probe() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("KGRADE_ACCEL").is_none() {
            assert_eq!(choose_accel(&arch(), &dir.path().join("none")), "tcg");
        }
    }
}
