//! kgrade: build a student's kernel, boot it under QEMU with the guest tests
//! as /init, and turn the serial console into verdicts.
//!
//! One module per stage of a run (see `pipeline`), plus the plumbing they share.

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
#[deny(missing_docs)]
pub mod pipeline;
pub mod process;
pub mod qemu;
#[deny(missing_docs)]
pub mod report;
mod rubric;
mod sandbox;
pub mod source;
pub mod submission;
mod syscalls;
pub mod target;
pub mod text;
pub mod transcript;
#[deny(missing_docs)]
pub mod verdict;
mod workspace;
