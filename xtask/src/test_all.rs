//! `test-all`: the reference solution of every target must pass every test,
//! and every mutant must fail at least one of the tests it names.

use anyhow::{bail, Context, Result};
use kgrade::pipeline::{self, Request};
use kgrade::report::RunResult;
use kgrade::source::SourceError;
use kgrade::target::{Catalog, Target};
use kgrade::verdict::{Outcome, Verdict};
use kgrade::{doctor, mutants, paths, source};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use xshell::{cmd, Shell};

/// Installs what is missing (when it can) and fails with the list otherwise.
fn ensure_prerequisites(catalog: &Catalog) -> Result<()> {
    let missing: Vec<_> = doctor::checks(catalog)
        .into_iter()
        .filter(|c| !c.ok)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "test-all: {} prerequisites missing; running setup",
        missing.len()
    );
    crate::setup::run(true)?;
    let still: Vec<String> = doctor::checks(catalog)
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({})", c.what, c.fix))
        .collect();
    if !still.is_empty() {
        bail!("missing prerequisites:\n  {}", still.join("\n  "));
    }
    Ok(())
}

fn progress(label: &str) -> impl FnMut(&str) + '_ {
    move |stage: &str| eprintln!("  [{label}] {stage}")
}

/// Which targets get their mutants run.
pub enum Mutants {
    All,
    None,
    On(Vec<String>),
}

impl Mutants {
    fn wanted(&self, target: &str) -> bool {
        match self {
            Mutants::All => true,
            Mutants::None => false,
            Mutants::On(list) => list.iter().any(|t| t == target),
        }
    }
}

/// `--kernel-src SERIES=PATH`.
pub fn parse_kernel_src(arg: &str) -> std::result::Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((series, path)) if !series.is_empty() && !path.is_empty() => {
            Ok((series.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "expected SERIES=PATH (e.g. 4.15=/tmp/k415/linux-4.15), got `{arg}`"
        )),
    }
}

/// Kernel trees given on the command line, by series.
pub type Sources = BTreeMap<String, PathBuf>;

pub fn run(only: &[String], mutants: &Mutants, sources: &Sources, out: &Path) -> Result<()> {
    let root = paths::project_root();
    let catalog = Catalog::load(&root)?;
    ensure_prerequisites(&catalog)?;
    let targets: Vec<_> = catalog
        .targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(&t.name))
        .collect();
    if targets.is_empty() {
        bail!("no target matches {only:?}");
    }
    if let Some(stray) = sources
        .keys()
        .find(|s| !catalog.targets.iter().any(|t| &t.series_name == *s))
    {
        bail!("--kernel-src names series {stray}, which no target uses");
    }
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    let mut skipped = 0;
    // Every reference first, then the mutants: a reference's finished build
    // seeds the other assignments' references on the same tree and arch
    // (one cold kernel per tree and arch), and a mutant's overlay would
    // unmark it as a seed.
    let mut references = Vec::new();
    for target in targets {
        let started = Instant::now();
        let dir = out.join(paths::component(&target.name));
        let kernel_src = sources.get(&target.series_name).map(PathBuf::as_path);
        // A series with no offline stand-in (4.15) is optional: without its
        // tarball or a tree on the command line, its targets are skipped,
        // unless KGRADE_REQUIRE_SOURCES is set (CI, which is online: a failed
        // download there must fail the job, not pass it as skipped).
        let src = match source::resolve(
            &target.series_name,
            &target.series,
            kernel_src,
            &paths::cache_root(),
        ) {
            Ok(src) => src,
            Err(e @ SourceError::Unavailable { .. })
                if target.series.substitute.is_none()
                    && std::env::var_os("KGRADE_REQUIRE_SOURCES").is_none() =>
            {
                let why = format!(
                    "{e}; or: cargo xtask test-all --kernel-src {}=PATH",
                    target.series_name
                );
                println!("test-all: SKIPPED {}: {why}", target.name);
                lines.push(format!("{:<24} SKIPPED: {why}", target.name));
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("{}: kernel source", target.name)),
        };
        eprintln!("test-all: {} reference", target.name);
        let reference_out = dir.join("reference");
        let req = Request {
            fill_cache: fills_for_mutants(&catalog, target, mutants),
            ..reference_request(&catalog, target, sources, &reference_out)
        };
        let reference = pipeline::run(&req, &mut progress("reference"))
            .with_context(|| format!("{}: reference run", target.name))?;
        print!("{}", reference.table());
        if reference.verdict != Verdict::Pass {
            problems.push(format!(
                "{}: the reference got `{}` ({})",
                target.name,
                reference.verdict.as_str(),
                reference.reason
            ));
        }
        let serial = dir.join("reference").join("serial.log");
        if reference.verdict == Verdict::Pass {
            let snapshots = crate::serial_snapshot::snapshot_dir();
            if let Err(why) = crate::serial_snapshot::check(&snapshots, &target.name, &serial) {
                problems.push(format!("{}: {why}", target.name));
            }
        }
        references.push((target, src, reference, started.elapsed()));
    }
    for (target, src, reference, reference_time) in references {
        let started = Instant::now();
        let dir = out.join(paths::component(&target.name));
        let reference_out = dir.join("reference");
        let req = reference_request(&catalog, target, sources, &reference_out);
        let mut caught = 0;
        let mut mutant_count = 0;
        if mutants.wanted(&target.name) {
            let ref_dir = pipeline::reference_patches_dir(
                &root,
                &target.assignment.name,
                &src,
                &target.series_name,
            )?;
            for (mutant, patch) in mutants::load(&ref_dir)? {
                mutant_count += 1;
                eprintln!("test-all: {} mutant {}", target.name, mutant.name);
                let mutant_out = dir.join("mutants").join(&mutant.name);
                let mutant_req = Request {
                    out: &mutant_out,
                    overlay: Some(&patch),
                    ..req.clone()
                };
                let r = pipeline::run(&mutant_req, &mut progress(&mutant.name))
                    .with_context(|| format!("{}: mutant {}", target.name, mutant.name))?;
                match judge_mutant(&r, &mutant.caught_by) {
                    Ok(by) => {
                        caught += 1;
                        println!("mutant {:<32} caught by {by}", mutant.name);
                    }
                    Err(why) => {
                        println!("mutant {:<32} NOT CAUGHT: {why}", mutant.name);
                        problems.push(format!(
                            "{}: mutant {} ({}) {why}",
                            target.name, mutant.name, mutant.mistake
                        ));
                    }
                }
            }
        }
        let t = &reference.timings_s;
        let stage = |k: &str| t.get(k).copied().unwrap_or(0.0);
        let make = stage("config") + stage("build");
        let own = stage("source") + stage("patch") + stage("guest");
        lines.push(format!(
            "{:<24} reference {:<12} {:>3}/{:<3} tests   mutants caught {caught}/{mutant_count}   {:.0} s (kernel {}{})",
            target.name,
            reference.verdict.as_str(),
            reference.passed(),
            reference.tests.len(),
            (reference_time + started.elapsed()).as_secs_f64(),
            reference.kernel.as_ref().map(|k| k.version.as_str()).unwrap_or("?"),
            match &reference.kernel {
                Some(k) if k.substitute => format!(", substitute from {}", k.origin),
                Some(k) if k.tarball_sha256.is_none() => format!(", tree {}", k.tree),
                _ => String::new(),
            },
        ));
        // Under its target's line.
        lines.push(format!(
            "{:<24} make {make:.1} s, harness's own stages {own:.1} s ({:.1}% of make), boot + tests {:.1} s",
            "",
            if make > 0.0 { 100.0 * own / make } else { 0.0 },
            stage("boot"),
        ));
    }
    println!("\ntest-all summary:");
    for l in &lines {
        println!("  {l}");
    }
    if problems.is_empty() {
        let note = match skipped {
            0 => String::new(),
            n => format!(" ({n} target(s) skipped for want of a kernel source, see above)"),
        };
        println!("test-all: all references pass, all mutants caught{note}");
        Ok(())
    } else {
        bail!("test-all found problems:\n  {}", problems.join("\n  "))
    }
}

/// Whether a reference's build should fill the compiler cache: when
/// mutants will rebuild over it or over a reference it seeds (same series
/// and arch). Elsewhere nothing reads what it would put there.
fn fills_for_mutants(catalog: &Catalog, target: &Target, mutants: &Mutants) -> bool {
    catalog.targets.iter().any(|t| {
        t.series_name == target.series_name
            && t.arch_name == target.arch_name
            && mutants.wanted(&t.name)
    })
}

/// The run of a target's reference solution, into `out`.
fn reference_request<'a>(
    catalog: &'a Catalog,
    target: &'a kgrade::target::Target,
    sources: &'a Sources,
    out: &'a Path,
) -> Request<'a> {
    Request {
        catalog,
        target,
        submission_path: None,
        kernel_src: sources.get(&target.series_name).map(PathBuf::as_path),
        out,
        overlay: None,
        only: vec![],
        discard_workspace: false,
        allow_unsandboxed: false,
        build_timeout: None,
        // The mutants that follow rebuild over it.
        fill_cache: true,
    }
}

/// A mutant is caught when a test it names did not pass. A build failure
/// does not count: a mutant must compile to prove anything about the tests.
fn judge_mutant(r: &RunResult, caught_by: &[String]) -> std::result::Result<String, String> {
    match r.verdict {
        Verdict::PatchFailed | Verdict::BuildFailed | Verdict::Rejected | Verdict::BootFailed => {
            return Err(format!(
                "did not reach the tests: {} ({})",
                r.verdict.as_str(),
                r.reason
            ))
        }
        _ => {}
    }
    let failed: Vec<&str> = r
        .tests
        .iter()
        .filter(|t| t.outcome != Outcome::Pass && t.outcome != Outcome::NotRun)
        .map(|t| t.name.as_str())
        .collect();
    let named: Vec<&str> = failed
        .iter()
        .copied()
        .filter(|n| caught_by.iter().any(|c| c == n))
        .collect();
    if named.is_empty() {
        Err(format!(
            "no named test failed (failed: {failed:?}, named: {caught_by:?})"
        ))
    } else {
        Ok(named.join(", "))
    }
}

/// What CI runs: everything that proves the grader right, on real kernels.
pub fn ci() -> Result<()> {
    let sh = Shell::new()?;
    let root = paths::project_root();
    let _cd = sh.push_dir(&root);
    crate::setup::run(true)?;
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --quiet -- -D warnings"
    )
    .run()?;
    cmd!(sh, "cargo nextest run --workspace --no-fail-fast").run()?;
    // Every target's reference, and every mutant directory once: tracker's
    // mutants change the same tracker.c on every arch, so x86_64 alone
    // catches what arm64 would (the arm64 reference still runs), and running
    // them all would add half an hour to CI. `cargo xtask test-all` runs all.
    // pfstat's 4.15 target is skipped unless its tarball is in the cache:
    // CI has no 4.15 tree, and Debian's 6.1 stands in (pfstat/6.1/i386).
    let mutants = Mutants::On(vec![
        "tracker/6.1/x86_64".into(),
        "pfstat/6.1/i386".into(),
        // memuse's mutants run once per mutants directory CI builds (6.1,
        // and 6.12 for the offline 6.13 series), one arch each: they are cheap.
        "memuse/6.1/x86_64".into(),
        "memuse/6.13/arm64".into(),
    ]);
    run(
        &[],
        &mutants,
        &Sources::new(),
        &root.join("target/kgrade-test-all"),
    )?;
    // The end-to-end tests last: the references' builds above fill the
    // shared ccache and seed every student build, which reads both only.
    cmd!(
        sh,
        "cargo nextest run --workspace --run-ignored only --no-fail-fast"
    )
    .run()?;
    Ok(())
}

/// One matrix entry per target, for GitHub Actions.
pub fn matrix() -> Result<()> {
    let catalog = Catalog::load(&paths::project_root())?;
    let names: Vec<&str> = catalog.targets.iter().map(|t| t.name.as_str()).collect();
    println!("{}", serde_json::json!({ "target": names }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_src_arguments() {
        assert_eq!(
            parse_kernel_src("4.15=/tmp/k415/linux-4.15").unwrap(),
            ("4.15".to_string(), PathBuf::from("/tmp/k415/linux-4.15"))
        );
        assert_eq!(
            parse_kernel_src("6.1=a=b").unwrap(),
            ("6.1".to_string(), PathBuf::from("a=b"))
        );
        for bad in ["/tmp/linux", "=x", "4.15="] {
            assert!(parse_kernel_src(bad).unwrap_err().contains("SERIES=PATH"));
        }
    }
}
