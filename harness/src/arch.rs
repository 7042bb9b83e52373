//! An architecture as data (`[arch.*]` in `configs/targets.toml`): how to
//! build a kernel for it, boot it and install its tools. Knows nothing of
//! assignments or rubrics, so QEMU and the guest builder depend on it alone.

use serde::Deserialize;

/// How to build and boot one architecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// The kernel's `ARCH=`.
    pub make_arch: String,
    /// The kernel's `CROSS_COMPILE=` (empty for the host's own).
    pub cross_compile: String,
    /// What `make` builds, e.g. `bzImage`.
    pub make_target: String,
    /// The image it leaves, relative to the build directory.
    pub image: String,
    /// The arch's kernel config fragment.
    pub fragment: String,
    /// The QEMU binary.
    pub qemu: String,
    /// QEMU's machine arguments.
    pub qemu_args: Vec<String>,
    /// The kernel's serial console device, e.g. `ttyS0`.
    pub console: String,
    /// The guest's Rust target triple.
    pub rust_target: String,
    /// The linker for that target.
    pub linker: String,
    /// Candidate syscall tables, relative to the tree, tried in order.
    pub syscall_tables: Vec<String>,
    /// ABIs of a `.tbl` file that this arch's native syscalls use.
    pub syscall_abis: Vec<String>,
    /// Installing this arch's tools (`cargo xtask setup`, `kgrade doctor`):
    /// the dpkg architecture, the QEMU package, and the cross compiler and
    /// libc packages.
    pub dpkg_arch: String,
    /// The Debian package with `qemu`.
    pub qemu_package: String,
    /// The cross compiler and libc packages.
    pub packages: Vec<String>,
}
