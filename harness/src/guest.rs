//! Building the static guest `/init` for a target's arch.
//!
//! Toolchains, in order of preference: rustup's musl target, rustup's glibc
//! target, then Debian's rustc with a foreign-arch std unpacked under
//! /usr/lib/rustlib (what `cargo xtask setup` installs offline). glibc builds
//! are linked statically with the arch's gcc.

use crate::arch::Arch;
use crate::ioerr::{io, IoError};
use crate::process::{self, ToolError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the guest /init could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// No Rust toolchain builds for the guest's targets (the musl one, then
    /// the arch's own).
    #[error("no Rust toolchain can build for {0}: install rustup's {0} or {1} target, or run `cargo xtask setup`")]
    NoToolchain(String, String),
    /// A tool failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// One way to build the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Toolchain {
    /// The cargo to build with.
    pub cargo: PathBuf,
    /// The rustc it uses.
    pub rustc: PathBuf,
    /// The Rust target triple.
    pub target: String,
}

fn sysroot(rustc: &Path) -> Option<PathBuf> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_std(rustc: &Path, target: &str) -> bool {
    sysroot(rustc).is_some_and(|s| s.join("lib/rustlib").join(target).join("lib").is_dir())
}

/// The musl twin of a glibc target triple.
fn musl_of(gnu: &str) -> String {
    gnu.replace("-gnu", "-musl")
}

/// Picks the first usable toolchain for the arch.
pub fn toolchain(arch: &Arch) -> Result<Toolchain, GuestError> {
    let musl = musl_of(&arch.rust_target);
    let rustup = (PathBuf::from("cargo"), PathBuf::from("rustc"));
    let debian = (
        PathBuf::from("/usr/bin/cargo"),
        PathBuf::from("/usr/bin/rustc"),
    );
    for (cargo, rustc, target) in [
        (&rustup.0, &rustup.1, &musl),
        (&rustup.0, &rustup.1, &arch.rust_target),
        (&debian.0, &debian.1, &arch.rust_target),
    ] {
        if process::have(&cargo.to_string_lossy()) && has_std(rustc, target) {
            return Ok(Toolchain {
                cargo: cargo.clone(),
                rustc: rustc.clone(),
                target: target.clone(),
            });
        }
    }
    Err(GuestError::NoToolchain(musl, arch.rust_target.clone()))
}

/// The cargo profile of the guest (root Cargo.toml): release settings with
/// `panic = "abort"`, which kgrade's own release profile must not have.
pub const GUEST_PROFILE: &str = "guest";

fn env_key(target: &str) -> String {
    target.to_uppercase().replace('-', "_")
}

/// Every file the guest binary is built from, sorted: its sources, both
/// manifests and the lock file.
fn source_files(root: &Path) -> Vec<PathBuf> {
    let guest = root.join("guest-tests");
    let mut out = vec![
        guest.join("Cargo.toml"),
        guest.join("protocol/Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    let mut stack = vec![guest.join("src"), guest.join("protocol/src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The sha256 of the guest's sources (paths relative to the root, and
/// contents), in hex: a prebuilt guest is valid for exactly these sources.
pub fn source_hash(root: &Path) -> Result<String, GuestError> {
    let mut h = Sha256::new();
    for f in source_files(root) {
        let bytes = std::fs::read(&f).map_err(io(&f))?;
        h.update(
            f.strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The file name of the prebuilt guest for these sources and Rust target.
pub fn prebuilt_name(hash: &str, arch: &Arch) -> String {
    format!(
        "kgrade-guest-{}-{}",
        &hash[..hash.len().min(16)],
        arch.rust_target
    )
}

/// Where prebuilt guests are looked for, in order.
pub fn prebuilt_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("KGRADE_GUEST_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(bin.join("guests"));
        dirs.push(bin.join("../share/kgrade/guests"));
    }
    dirs
}

/// A prebuilt guest for the current sources in one of `dirs`, if any: a
/// regular file starting with the ELF magic.
pub fn find_prebuilt(root: &Path, arch: &Arch, dirs: &[PathBuf]) -> Option<PathBuf> {
    let name = prebuilt_name(&source_hash(root).ok()?, arch);
    dirs.iter()
        .map(|d| d.join(&name))
        .find(|p| std::fs::read(p).is_ok_and(|bytes| bytes.starts_with(b"\x7fELF")))
}

/// Whether a guest for the arch can be had here: prebuilt or buildable.
pub fn available(root: &Path, arch: &Arch) -> bool {
    find_prebuilt(root, arch, &prebuilt_dirs()).is_some() || toolchain(arch).is_ok()
}

/// The guest binary for the arch: the prebuilt one when there is one for
/// the current sources, else built with cargo.
pub fn build(root: &Path, arch: &Arch) -> Result<PathBuf, GuestError> {
    match find_prebuilt(root, arch, &prebuilt_dirs()) {
        Some(p) => Ok(p),
        None => compile(root, arch),
    }
}

/// Builds the guest and copies it into `dir` under its prebuilt name.
pub fn prebuild(root: &Path, arch: &Arch, dir: &Path) -> Result<PathBuf, GuestError> {
    let built = compile(root, arch)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dest = dir.join(prebuilt_name(&source_hash(root)?, arch));
    let tmp = dest.with_extension("tmp");
    std::fs::copy(&built, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    Ok(dest)
}

/// Builds (or finds up to date) the guest binary with cargo and returns its path.
pub fn compile(root: &Path, arch: &Arch) -> Result<PathBuf, GuestError> {
    let tc = toolchain(arch)?;
    let target_dir = root.join("target").join("guest");
    let key = env_key(&tc.target);
    let mut cmd = Command::new(&tc.cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "--profile",
            GUEST_PROFILE,
            "--locked",
            "-p",
            "kgrade-guest",
            "--target",
        ])
        .arg(&tc.target)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC", &tc.rustc)
        .env(
            format!("CARGO_TARGET_{key}_RUSTFLAGS"),
            "-C target-feature=+crt-static",
        )
        // Host-side settings of the outer cargo must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    // musl targets too: rustc's default `cc` cannot link a foreign arch
    // (rustup's musl std brings its own crt and libc, not a linker).
    cmd.env(format!("CARGO_TARGET_{key}_LINKER"), &arch.linker);
    process::run_ok(&mut cmd)?;
    Ok(target_dir
        .join(&tc.target)
        .join(GUEST_PROFILE)
        .join("kgrade-guest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        assert_eq!(
            musl_of("aarch64-unknown-linux-gnu"),
            "aarch64-unknown-linux-musl"
        );
        assert_eq!(env_key("i686-unknown-linux-gnu"), "I686_UNKNOWN_LINUX_GNU");
    }

    /// Tests ignore `panic`, so the profiles are checked where they are set:
    /// `grade`'s catch_unwind needs kgrade's release build to unwind.
    #[test]
    fn only_the_guest_profile_aborts_on_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(&root).unwrap().parse().unwrap();
        let profile = |name: &str| manifest["profile"][name].as_table().unwrap().clone();
        let release = profile("release");
        assert!(
            release
                .get("panic")
                .is_none_or(|p| p.as_str() == Some("unwind")),
            "{release:?}"
        );
        let guest = profile(GUEST_PROFILE);
        assert_eq!(guest["inherits"].as_str(), Some("release"));
        assert_eq!(guest["panic"].as_str(), Some("abort"));
    }

    fn project_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// A copy of the guest's sources (and the lock file) under a temp dir.
    fn copy_sources(to: &Path) {
        let from = project_root();
        for f in source_files(&from) {
            let rel = f.strip_prefix(&from).unwrap();
            std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(&f, to.join(rel)).unwrap();
        }
    }

    fn arch(rust_target: &str) -> Arch {
        let catalog = crate::target::Catalog::load(&project_root()).unwrap();
        let mut a = catalog.targets[0].arch.clone();
        a.rust_target = rust_target.into();
        a
    }

    #[test]
    fn a_prebuilt_guest_is_used_only_for_the_sources_it_was_built_from() {
        let root = tempfile::tempdir().unwrap();
        copy_sources(root.path());
        let store = tempfile::tempdir().unwrap();
        let dirs = vec![store.path().join("absent"), store.path().to_path_buf()];
        let x86 = arch("x86_64-unknown-linux-gnu");
        assert_eq!(find_prebuilt(root.path(), &x86, &dirs), None);
        let hash = source_hash(root.path()).unwrap();
        let name = prebuilt_name(&hash, &x86);
        // Not an executable: ignored.
        std::fs::write(store.path().join(&name), "#!/bin/sh\n").unwrap();
        assert_eq!(find_prebuilt(root.path(), &x86, &dirs), None);
        std::fs::write(store.path().join(&name), b"\x7fELF...").unwrap();
        assert_eq!(
            find_prebuilt(root.path(), &x86, &dirs),
            Some(store.path().join(&name))
        );
        // Another arch has its own binary.
        assert_eq!(
            find_prebuilt(root.path(), &arch("aarch64-unknown-linux-gnu"), &dirs),
            None
        );
        // Any change to the guest's sources makes the prebuilt one stale.
        let main = root.path().join("guest-tests/src/main.rs");
        let mut text = std::fs::read_to_string(&main).unwrap();
        text.push_str("\n// changed\n");
        std::fs::write(&main, text).unwrap();
        assert_ne!(source_hash(root.path()).unwrap(), hash);
        assert_eq!(find_prebuilt(root.path(), &x86, &dirs), None);
    }
}
