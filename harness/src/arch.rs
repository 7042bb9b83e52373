//! An architecture as data (`[arch.*]` in `configs/targets.toml`): how to
//! build a kernel for it, boot it and install its tools. Knows nothing of
//! assignments or rubrics, so QEMU and the guest builder depend on it alone.

use serde::Deserialize;

/// How to build and boot one architecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    pub make_arch: String,
    pub cross_compile: String,
    pub make_target: String,
    pub image: String,
    pub fragment: String,
    pub qemu: String,
    pub qemu_args: Vec<String>,
    pub console: String,
    pub rust_target: String,
    pub linker: String,
    /// Candidate syscall tables, relative to the tree, tried in order.
    pub syscall_tables: Vec<String>,
    /// ABIs of a `.tbl` file that this arch's native syscalls use.
    pub syscall_abis: Vec<String>,
    /// Installing this arch's tools (`cargo xtask setup`, `kgrade doctor`):
    /// the dpkg architecture, the QEMU package, and the cross compiler and
    /// libc packages.
    pub dpkg_arch: String,
    pub qemu_package: String,
    pub packages: Vec<String>,
}
