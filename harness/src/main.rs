//! The `kgrade` command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kgrade::pipeline::{self, Request};
use kgrade::target::Catalog;
use kgrade::{doctor, paths};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kgrade",
    version,
    about = "Build, boot and grade Linux kernel-hacking assignments under QEMU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade one submission (or the reference solution) on one target.
    Run {
        /// assignment/series/arch, e.g. tracker/6.1/x86_64 (`kgrade targets` lists them)
        #[arg(long)]
        target: String,
        /// A .patch/.diff, a directory of format-patch files, or a patch.tar.gz;
        /// the reference solution when omitted.
        #[arg(long)]
        submission: Option<PathBuf>,
        /// A kernel tree or tarball to use instead of the series' own.
        #[arg(long)]
        kernel_src: Option<PathBuf>,
        /// Where result.json, build.log and serial.log go.
        #[arg(long, default_value = "kgrade-out")]
        out: PathBuf,
        /// Run only these tests (suite.case), repeatable.
        #[arg(long = "only")]
        only: Vec<String>,
    },
    /// Check that this machine has everything the targets need.
    Doctor,
    /// List the targets.
    Targets,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = paths::project_root();
    let catalog = match Catalog::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kgrade: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Targets => {
            for t in &catalog.targets {
                println!("{}", t.name);
            }
            ExitCode::SUCCESS
        }
        Command::Doctor => {
            if doctor::report(&doctor::checks(&catalog)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Run {
            target,
            submission,
            kernel_src,
            out,
            only,
        } => {
            let target = match catalog.target(&target) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("kgrade: {e}");
                    return ExitCode::from(2);
                }
            };
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.set_prefix(target.name.clone());
            spinner.enable_steady_tick(Duration::from_millis(200));
            let req = Request {
                catalog: &catalog,
                target,
                submission: submission.as_deref(),
                kernel_src: kernel_src.as_deref(),
                out: &out,
                overlay: None,
                only,
            };
            let result = pipeline::run(&req, &mut |stage| spinner.set_message(stage.to_string()));
            spinner.finish_and_clear();
            match result {
                Ok(r) => {
                    print!("{}", r.table());
                    println!("result: {}", out.join("result.json").display());
                    if r.verdict == kgrade::verdict::Verdict::Pass {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("kgrade: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
