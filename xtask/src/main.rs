//! Project tasks: `cargo xtask setup | test-all | test | ci-matrix | bench`.

mod bench;
mod fresh_root;
mod gradescope;
mod serial_snapshot;
mod setup;
mod slurm_cluster;
mod test_all;
mod workflow_scripts;
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
    Setup {
        /// Skip the developer tools (cargo-nextest, jq, actionlint): what grading needs only.
        #[arg(long)]
        no_dev_tools: bool,
    },
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
    /// Benchmark (one thing at a time, on one tree and .config): bare make vs
    /// a cold kgrade run (P1), student rebuilds (P2), boots per arch (P3),
    /// optionally kunit.py (P4); a Markdown table in target/bench/.
    Bench {
        #[arg(long, default_value = "tracker/6.1/x86_64")]
        target: String,
        /// Also time `kunit.py run --arch=x86_64` on the same tree (P4).
        #[arg(long)]
        kunit: bool,
        /// Skip the boots of the other arches (P3 then has the target's only).
        #[arg(long)]
        skip_p3: bool,
        /// Class-scale projection: students in the class.
        #[arg(long, default_value_t = 200)]
        students: u32,
        /// Class-scale projection: targets each student is graded on.
        #[arg(long = "class-targets", default_value_t = 4)]
        class_targets: u32,
        /// Class-scale projection: machines grading at once.
        #[arg(long, default_value_t = 1)]
        machines: u32,
    },
    /// The GitHub Actions matrix (one job per target) as JSON.
    CiMatrix,
    /// actionlint over .github/workflows.
    LintWorkflows,
    /// The zip for Gradescope's autograder: setup.sh, run_autograder, the
    /// assignment's settings and the project at HEAD.
    GradescopeBundle {
        #[arg(long)]
        assignment: String,
        /// Only these targets (comma-separated; default: all of the assignment).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        #[arg(long, default_value = "target/gradescope/autograder.zip")]
        out: std::path::PathBuf,
    },
    /// `kgrade grade --emit-slurm 2` on a one-node Slurm cluster started here
    /// (munged, slurmctld, slurmd; as root): the merged gradebook must equal
    /// an unsharded run's.
    SlurmCluster {
        #[arg(long, default_value = "/var/tmp/kgrade-slurm")]
        work: std::path::PathBuf,
    },
    /// images/Containerfile replayed in a fresh mmdebstrap Debian 12 root, then
    /// a reference and a failing submission graded there, and the Gradescope
    /// bundle run against a Gradescope-shaped tree (as root).
    FreshRoot {
        #[arg(long, default_value = "/var/tmp/kgrade-fresh-root")]
        work: std::path::PathBuf,
        #[arg(long, default_value = "http://deb.debian.org")]
        mirror: String,
        /// Reuse WORK/base.tar (mmdebstrap's output) from an earlier run.
        #[arg(long)]
        reuse_base: bool,
        #[arg(long, default_value = "tracker/6.1/x86_64")]
        target: String,
        /// The failing submission: the reference plus this mutant.
        #[arg(long, default_value = "close-not-counted")]
        mutant: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup { no_dev_tools } => setup::run(!no_dev_tools),
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
        Task::Bench {
            target,
            kunit,
            skip_p3,
            students,
            class_targets,
            machines,
        } => bench::run(&bench::Options {
            target,
            kunit,
            skip_p3,
            students,
            targets: class_targets,
            machines,
        }),
        Task::CiMatrix => test_all::matrix(),
        Task::LintWorkflows => workflows::files().and_then(|f| workflows::lint(&f)),
        Task::GradescopeBundle {
            assignment,
            targets,
            out,
        } => gradescope::bundle(&kgrade::paths::project_root(), &assignment, &targets, &out),
        Task::SlurmCluster { work } => {
            slurm_cluster::run_all(&kgrade::paths::project_root(), &work)
        }
        Task::FreshRoot {
            work,
            mirror,
            reuse_base,
            target,
            mutant,
        } => fresh_root::run_all(
            &kgrade::paths::project_root(),
            &fresh_root::Options {
                work,
                mirror,
                reuse_base,
                target,
                mutant,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
