//! kgrade: build a student's kernel, boot it under QEMU with the guest tests
//! as /init, and turn the serial console into verdicts.
//!
//! One module per stage of a run (see `pipeline`), plus the plumbing they share.
//!
//! The public modules are what `kgrade` (main.rs), `cargo xtask` and the
//! integration tests use; the rest is private to the crate.

#![deny(missing_docs)]

mod arch;
pub mod boots;
pub mod console;
pub mod doctor;
mod fault;
pub mod grade;
pub mod guest;
mod initramfs;
mod ioerr;
mod kbuild;
mod kconfig;
pub mod ktap;
pub mod mutants;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod qemu;
pub mod report;
mod rubric;
mod sandbox;
pub mod source;
pub mod submission;
mod syscalls;
pub mod target;
pub mod text;
pub mod transcript;
pub mod verdict;
mod workspace;
