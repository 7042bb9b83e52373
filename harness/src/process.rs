//! Running host tools with their output kept, and typed errors when they fail.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A host tool that could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// It could not be started.
    #[error("cannot run `{program}`: {source} (is it installed? `kgrade doctor` checks)")]
    Spawn {
        /// The program.
        program: String,
        /// Why not.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// What it printed.
        output: String,
    },
}

/// Runs a command to completion, capturing stdout and stderr together.
pub fn run(cmd: &mut Command) -> Result<Output, ToolError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn { program, source })
}

/// Runs a command and fails with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Result<Output, ToolError> {
    let out = run(cmd)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(ToolError::Failed {
            command: describe(cmd),
            status: out.status.to_string(),
            output: combined(&out),
        })
    }
}

pub(crate) fn combined(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
