//! Project tasks: `cargo xtask setup | test-all | test | ci-matrix`.

mod serial_snapshot;
mod setup;
mod test_all;
mod workflows;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install every system dependency (Debian/Ubuntu, as root); otherwise print the commands.
    Setup,
    /// The main job: the reference on every target passes every test, and every mutant is caught.
    TestAll {
        /// Only these targets (default: all in configs/targets.toml).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Skip the mutants.
        #[arg(long)]
        no_mutants: bool,
        /// Run mutants only on these targets (default: every target).
        #[arg(long = "mutants-on")]
        mutants_on: Vec<String>,
        /// Where each run's result.json and logs go.
        #[arg(long, default_value = "target/kgrade-test-all")]
        out: std::path::PathBuf,
        /// SERIES=PATH: build that series from this kernel tree or tarball
        /// (e.g. 4.15=/tmp/k415/linux-4.15); repeatable.
        #[arg(long = "kernel-src", value_parser = test_all::parse_kernel_src)]
        kernel_src: Vec<(String, std::path::PathBuf)>,
    },
    /// What CI runs: setup, lints, unit and end-to-end tests, then test-all.
    Test,
    /// The GitHub Actions matrix (one job per target) as JSON.
    CiMatrix,
    /// actionlint over .github/workflows.
    LintWorkflows,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup::run(),
        Task::TestAll {
            targets,
            no_mutants,
            mutants_on,
            out,
            kernel_src,
        } => {
            let mutants = if no_mutants {
                test_all::Mutants::None
            } else if mutants_on.is_empty() {
                test_all::Mutants::All
            } else {
                test_all::Mutants::On(mutants_on)
            };
            let sources = kernel_src.into_iter().collect();
            test_all::run(&targets, &mutants, &sources, &out)
        }
        Task::Test => test_all::ci(),
        Task::CiMatrix => test_all::matrix(),
        Task::LintWorkflows => workflows::files().and_then(|f| workflows::lint(&f)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
