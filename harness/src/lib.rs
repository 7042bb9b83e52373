//! kgrade: build a student's kernel, boot it under QEMU with the guest tests
//! as /init, and turn the serial console into verdicts.
//!
//! One module per stage of a run (see `pipeline`), plus the plumbing they share.

pub mod arch;
pub mod boots;
pub mod console;
pub mod doctor;
pub mod fault;
pub mod grade;
pub mod guest;
pub mod initramfs;
pub mod ioerr;
pub mod kbuild;
pub mod kconfig;
pub mod ktap;
pub mod mutants;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod qemu;
pub mod report;
pub mod rubric;
pub mod sandbox;
pub mod source;
pub mod submission;
pub mod syscalls;
pub mod target;
pub mod text;
pub mod transcript;
pub mod verdict;
pub mod workspace;
