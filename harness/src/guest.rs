//! Building the static guest `/init` for a target's arch.
//!
//! Toolchains, in order of preference: rustup's musl target, rustup's glibc
//! target, then Debian's rustc with a foreign-arch std unpacked under
//! /usr/lib/rustlib (what `cargo xtask setup` installs offline). glibc builds
//! are linked statically with the arch's gcc.

use crate::process::{self, ToolError};
use crate::target::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("no Rust toolchain can build for {0}: install rustup's {0} or {1} target, or run `cargo xtask setup`")]
    NoToolchain(String, String),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// One way to build the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Toolchain {
    pub cargo: PathBuf,
    pub rustc: PathBuf,
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

/// Builds (or finds up to date) the guest binary and returns its path.
pub fn build(root: &Path, arch: &Arch) -> Result<PathBuf, GuestError> {
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
    if !tc.target.contains("musl") {
        cmd.env(format!("CARGO_TARGET_{key}_LINKER"), &arch.linker);
    }
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
}
