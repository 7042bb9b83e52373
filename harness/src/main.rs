//! The `kgrade` command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kgrade::grade::{self, class_reports, class_results::ClassResults};
use kgrade::pipeline::{self, Request};
use kgrade::target::Catalog;
use kgrade::text::printable;
use kgrade::{doctor, paths};
use std::path::Path;
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
        /// Grade even where the build sandbox cannot start (unsafe).
        #[arg(long)]
        no_sandbox: bool,
        /// Build time limit in seconds (default: the assignment's).
        #[arg(long)]
        build_timeout: Option<u64>,
        /// The OUT of a finished reference run on this target: this run's
        /// serial console is compared with its, into OUT/serial.diff.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Put the reference's objects into the shared compiler cache for
        /// the builds that follow (students whose patches rewrite widely
        /// included headers then rebuild from it). `kgrade grade` does this
        /// itself; a plain run compiles with gcc alone, unless a filled cache
        /// already holds this kernel.
        #[arg(long)]
        fill_cache: bool,
    },
    /// Grade a class: every submission in DIR on every target of an assignment.
    ///
    /// DIR holds one entry per student (a .patch/.diff, a folder of
    /// format-patch files, a patch.tar.gz, or a folder holding one). Results
    /// land in OUT/students/<student>/<target>/ as each run finishes; at the
    /// end OUT/gradebook.csv, summary.md, junit.xml, report/index.html and a
    /// Gradescope results.json per student.
    Grade {
        /// The class directory.
        dir: PathBuf,
        /// The assignment (configs/assignments/<NAME>.toml).
        #[arg(long)]
        assignment: String,
        /// Only these targets (comma-separated; default: all of the assignment).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        /// Runs at once; kernel builds still go one at a time.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Where results and reports go.
        #[arg(long, default_value = "kgrade-grades")]
        out: PathBuf,
        /// Grade only shard I of N (students in name order, round robin).
        #[arg(long)]
        shard: Option<kgrade::grade::class::Shard>,
        /// Keep every run already finished in OUT with the same submission and inputs.
        #[arg(long)]
        resume: bool,
        /// Keep each student's patched tree and build directory in the cache
        /// (faster reruns, about 100 MB per student and target).
        #[arg(long)]
        keep_workspaces: bool,
        /// Grade even where the build sandbox cannot start: the students'
        /// build code then runs as you, unconfined. Never on a machine that
        /// matters.
        #[arg(long)]
        no_sandbox: bool,
        /// Write Slurm scripts for N shards into OUT/slurm/ instead of grading.
        #[arg(long, value_name = "N")]
        emit_slurm: Option<usize>,
        /// With --emit-slurm: the account every job is charged to.
        #[arg(long, requires = "emit_slurm")]
        slurm_account: Option<String>,
        /// With --emit-slurm: the partition the jobs run in.
        #[arg(long, requires = "emit_slurm")]
        slurm_partition: Option<String>,
        /// With --emit-slurm: each grading task's time limit (default: from the class size).
        #[arg(long, requires = "emit_slurm")]
        slurm_time: Option<String>,
        /// With --emit-slurm: another sbatch flag for both jobs, e.g. --slurm-flag=--qos=short (repeatable).
        #[arg(
            long = "slurm-flag",
            requires = "emit_slurm",
            allow_hyphen_values = true
        )]
        slurm_flags: Vec<String>,
        /// With --emit-slurm: run each task's kgrade in this Apptainer image (images/kgrade.def).
        #[arg(long, requires = "emit_slurm")]
        container: Option<PathBuf>,
    },
    /// Merge the outputs of `kgrade grade --shard` into one gradebook and report.
    Merge {
        /// The shard output directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Judge a finished run again from the plans and serial logs it left in
    /// OUT (no build, no boot), and rewrite OUT/result.json: a fix to the
    /// console parser or the verdicts applies to old runs.
    Judge {
        /// The run's directory (`kgrade run --out`, or a student's target
        /// directory under `kgrade grade --out`).
        out: PathBuf,
        /// Print the new result without writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check that this machine has everything the targets need.
    Doctor {
        /// Only the targets of this assignment.
        #[arg(long)]
        assignment: Option<String>,
        /// Only these targets (comma-separated).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
    },
    /// Build the guest /init for every arch into DIR, named by the hash of
    /// its sources; kgrade then uses them instead of cargo (`$KGRADE_GUEST_DIR`,
    /// or `guests/` beside the kgrade binary).
    Guests {
        #[arg(long)]
        out: PathBuf,
    },
    /// List the targets.
    Targets,
}

fn main() -> ExitCode {
    // A closed pipe (`kgrade targets | head`) ends kgrade quietly, as it
    // ends any Unix tool, instead of making println! panic.
    // SAFETY: restoring a signal's default action before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
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
        Command::Doctor {
            assignment,
            targets,
        } => {
            let mut catalog = catalog;
            if let Some(a) = &assignment {
                match grade::select_targets(&catalog, a, &targets) {
                    Ok(chosen) => {
                        let names: Vec<String> = chosen.iter().map(|t| t.name.clone()).collect();
                        catalog.targets.retain(|t| names.contains(&t.name));
                    }
                    Err(e) => {
                        eprintln!("kgrade doctor: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else if !targets.is_empty() {
                if let Some(bad) = targets.iter().find(|n| catalog.target(n).is_err()) {
                    eprintln!("kgrade doctor: unknown target `{bad}`");
                    return ExitCode::from(2);
                }
                catalog.targets.retain(|t| targets.contains(&t.name));
            }
            if doctor::report(&doctor::checks(&catalog)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Guests { out } => {
            let mut arches: Vec<&kgrade::target::Target> = Vec::new();
            for t in &catalog.targets {
                if !arches.iter().any(|a| a.arch_name == t.arch_name) {
                    arches.push(t);
                }
            }
            for t in arches {
                let have = kgrade::guest::find_prebuilt(
                    &catalog.root,
                    &t.arch,
                    std::slice::from_ref(&out),
                );
                if let Some(p) = have {
                    println!("{}: {} (up to date)", t.arch_name, p.display());
                    continue;
                }
                match kgrade::guest::prebuild(&catalog.root, &t.arch, &out) {
                    Ok(p) => println!("{}: {}", t.arch_name, p.display()),
                    Err(e) => {
                        eprintln!("kgrade guests: {}: {e}", t.arch_name);
                        return ExitCode::from(2);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Grade {
            dir,
            assignment,
            targets,
            jobs,
            out,
            shard,
            resume,
            keep_workspaces,
            no_sandbox,
            emit_slurm,
            slurm_account,
            slurm_partition,
            slurm_time,
            slurm_flags,
            container,
        } => {
            let opts = grade::Options {
                assignment,
                targets,
                dir,
                out,
                jobs,
                shard,
                resume,
                keep_workspaces,
                no_sandbox,
            };
            let cluster = Cluster {
                sbatch: grade::slurm::SbatchOptions {
                    account: slurm_account,
                    partition: slurm_partition,
                    time: slurm_time,
                    extra: slurm_flags,
                },
                container,
            };
            match emit_slurm {
                Some(n) => emit_slurm_scripts(&catalog, &opts, n, cluster),
                None => run_grade(&catalog, &opts),
            }
        }
        Command::Judge { out, dry_run } => match kgrade::boots::rejudge(&out) {
            Ok(r) => {
                print!("{}", r.table());
                if !dry_run {
                    if let Err(e) = r.write(&out) {
                        eprintln!("kgrade judge: cannot write {}: {e}", out.display());
                        return ExitCode::from(2);
                    }
                    println!("result: {}", out.join("result.json").display());
                }
                if r.verdict == kgrade::verdict::Verdict::Pass {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("kgrade judge: {e}");
                ExitCode::from(2)
            }
        },
        Command::Merge { inputs, out } => match grade::merge::merge(&catalog, &inputs, &out) {
            Ok(class) => {
                print_class_summary(&class, &out);
                if class.errors().is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("kgrade merge: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            target,
            submission,
            kernel_src,
            out,
            only,
            no_sandbox,
            build_timeout,
            reference,
            fill_cache,
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
                submission_path: submission.as_deref(),
                kernel_src: kernel_src.as_deref(),
                out: &out,
                overlay: None,
                only,
                discard_workspace: false,
                allow_unsandboxed: no_sandbox,
                build_timeout: build_timeout.map(Duration::from_secs),
                fill_cache,
            };
            let result = pipeline::run(&req, &mut |stage| spinner.set_message(stage.to_string()));
            spinner.finish_and_clear();
            match result {
                Ok(r) => {
                    // The table quotes the guest and the build: no escape sequences.
                    print!("{}", printable(&r.table()));
                    println!("result: {}", out.join("result.json").display());
                    if let Some(reference) = &reference {
                        match class_reports::write_serial_diff(reference, &out) {
                            Ok(()) => println!(
                                "serial diff: {}",
                                out.join(class_reports::SERIAL_DIFF).display()
                            ),
                            // The verdict stands; only the comparison is missing.
                            Err(e) => eprintln!("kgrade: no serial diff: {e}"),
                        }
                    }
                    if r.verdict == kgrade::verdict::Verdict::Pass {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("kgrade: {}", printable(&e.to_string()));
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn print_class_summary(class: &ClassResults, out: &Path) {
    let errors = class.errors();
    println!(
        "{} students graded on {}",
        class.students.len(),
        class.targets.join(", ")
    );
    for e in &errors {
        println!("could not grade: {}", printable(e));
    }
    for f in [
        class_reports::GRADEBOOK,
        class_reports::SUMMARY,
        class_reports::JUNIT,
        class_reports::REPORT_INDEX,
    ] {
        println!("{}", out.join(f).display());
    }
}

fn run_grade(catalog: &Catalog, opts: &grade::Options) -> ExitCode {
    let bars = grade::progress::Bars::new(opts.jobs.max(1));
    match grade::grade(catalog, opts, &bars) {
        Ok(summary) => {
            println!(
                "{} runs done, {} reused from earlier",
                summary.ran, summary.reused
            );
            print_class_summary(&summary.class, &opts.out);
            // Exit 1 when kgrade itself failed somewhere: `--resume` retries those.
            if summary.class.errors().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("kgrade grade: {}", printable(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// What the cluster wants passed through to Slurm.
struct Cluster {
    sbatch: grade::slurm::SbatchOptions,
    container: Option<PathBuf>,
}

fn emit_slurm_scripts(
    catalog: &Catalog,
    opts: &grade::Options,
    shards: usize,
    cluster: Cluster,
) -> ExitCode {
    let fail = |e: String| {
        eprintln!("kgrade grade --emit-slurm: {e}");
        ExitCode::from(2)
    };
    if shards == 0 {
        return fail("the number of shards must be at least 1".into());
    }
    let target_count = match grade::select_targets(catalog, &opts.assignment, &opts.targets) {
        Ok(t) => t.len(),
        Err(e) => return fail(e.to_string()),
    };
    let students = match grade::class::discover(&opts.dir, Some(&opts.out)) {
        Ok(s) => s.len(),
        Err(e) => return fail(e.to_string()),
    };
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let spec = grade::slurm::SlurmSpec {
        kgrade: std::env::current_exe().unwrap_or_else(|_| "kgrade".into()),
        root: absolute(&catalog.root),
        dir: absolute(&opts.dir),
        out: absolute(&opts.out),
        assignment: opts.assignment.clone(),
        targets: opts.targets.clone(),
        target_count,
        jobs: opts.jobs,
        shards,
        students,
        sbatch: cluster.sbatch,
        container: cluster.container.map(|c| absolute(&c)),
    };
    match grade::slurm::write(&spec) {
        Ok(paths) => {
            for p in &paths {
                println!("{}", p.display());
            }
            println!(
                "submit with: sh {}",
                spec.out.join("slurm/submit.sh").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}
