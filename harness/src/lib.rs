//! kgrade: build a student's kernel, boot it under QEMU with the guest tests
//! as /init, and turn the serial console into verdicts.
//!
//! One module per stage of a run (see `pipeline`), plus the plumbing they share.

mod arch;
#[deny(missing_docs)]
pub mod boots;
#[deny(missing_docs)]
pub mod console;
#[deny(missing_docs)]
pub mod doctor;
mod fault;
pub mod grade;
#[deny(missing_docs)]
pub mod guest;
mod initramfs;
mod ioerr;
mod kbuild;
mod kconfig;
#[deny(missing_docs)]
pub mod ktap;
#[deny(missing_docs)]
pub mod mutants;
#[deny(missing_docs)]
pub mod paths;
#[deny(missing_docs)]
pub mod pipeline;
#[deny(missing_docs)]
pub mod process;
pub mod qemu;
#[deny(missing_docs)]
pub mod report;
mod rubric;
mod sandbox;
#[deny(missing_docs)]
pub mod source;
#[deny(missing_docs)]
pub mod submission;
mod syscalls;
pub mod target;
#[deny(missing_docs)]
pub mod text;
#[deny(missing_docs)]
pub mod transcript;
#[deny(missing_docs)]
pub mod verdict;
mod workspace;
