//! `cargo xtask fresh-root`: the image recipe tested on a machine with
//! nothing installed. An `mmdebstrap --variant=minbase bookworm` root
//! filesystem stands in for the container (no registry image can be pulled
//! here, and podman cannot run): every instruction of images/Containerfile
//! runs in it (COPY as a fresh `git clone` of HEAD), then kgrade grades the
//! reference and a failing submission on one target, and the Gradescope
//! bundle's setup.sh and run_autograder run against a Gradescope-shaped
//! /autograder tree. Each stage is timed.
//!
//! The root gets the host's resolv.conf, hosts and locally added CA
//! certificates (this network's TLS proxy), nothing else from the host.
//! The root runs under `unshare --mount` + `chroot` with /proc, /dev and
//! /sys mounted inside the new namespace only, so they vanish with it. The
//! kernel builds inside take the HOST's build lock: the root has its own
//! cache and lock file, which other kgrade runs on this machine cannot see.

use anyhow::{bail, ensure, Context, Result};
use kgrade::report::RunResult;
use kgrade::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One instruction of the Containerfile that the root can replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Env(String, String),
    Copy(String, String),
    Workdir(String),
    Run(String),
}

/// The image recipe's instructions, continuation lines joined. Only FROM
/// (a Debian 12 image), ENV, COPY, WORKDIR and RUN are allowed: anything
/// else could not be replayed here, so the test would not test the recipe.
pub fn parse_recipe(text: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut pending = String::new();
    let mut from = None;
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            pending.push_str(part);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let (op, rest) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        let rest = rest.trim().to_string();
        match op.to_ascii_uppercase().as_str() {
            "FROM" => from = Some(rest),
            "ENV" => {
                let (k, v) = rest
                    .split_once('=')
                    .with_context(|| format!("ENV without KEY=VALUE: {full}"))?;
                steps.push(Step::Env(k.trim().into(), v.trim().into()));
            }
            "COPY" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                ensure!(words.len() == 2, "COPY takes SRC DEST here: {full}");
                steps.push(Step::Copy(words[0].into(), words[1].into()));
            }
            "WORKDIR" => steps.push(Step::Workdir(rest)),
            "RUN" => steps.push(Step::Run(rest)),
            other => bail!("the recipe uses {other}, which fresh-root cannot replay: {full}"),
        }
    }
    ensure!(pending.is_empty(), "the recipe ends in a continuation line");
    let from = from.context("the recipe has no FROM")?;
    ensure!(
        from.ends_with("debian:12") || from.ends_with("debian:bookworm"),
        "the recipe starts FROM {from}; fresh-root builds Debian 12"
    );
    Ok(steps)
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where the root filesystem and the timings go.
    pub work: PathBuf,
    pub mirror: String,
    /// Reuse WORK/base.tar from an earlier run (the mmdebstrap output).
    pub reuse_base: bool,
    pub target: String,
    /// The failing submission: this mutant of the target's reference.
    pub mutant: String,
}

/// The root, entered for one shell command.
struct Root {
    dir: PathBuf,
    env: Vec<(String, String)>,
    workdir: String,
}

impl Root {
    fn command(&self, script: &str) -> Command {
        let r = self.dir.display().to_string();
        let mut inner = vec![
            "/usr/bin/env".to_string(),
            "-i".into(),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "HOME=/root".into(),
            "USER=root".into(),
            "LANG=C.UTF-8".into(),
            "TERM=dumb".into(),
        ];
        inner.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        inner.extend([
            "/bin/sh".into(),
            "-ec".into(),
            format!("cd {} && {script}", self.workdir),
        ]);
        let quoted: Vec<String> = inner.iter().map(|w| shell_quote(w)).collect();
        let mounts = format!(
            "mount -t proc proc {r}/proc && mount --rbind /dev {r}/dev && mount --rbind /sys {r}/sys && exec chroot {r} {}",
            quoted.join(" "),
            r = shell_quote(&r),
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--fork", "sh", "-ec"])
            .arg(mounts);
        cmd
    }

    fn run(&self, script: &str) -> Result<()> {
        println!("fresh-root$ {script}");
        let st = self.command(script).status()?;
        ensure!(st.success(), "in the root, `{script}` failed ({st})");
        Ok(())
    }

    /// The same, holding the host's kernel build lock throughout.
    fn run_locked(&self, script: &str) -> Result<()> {
        let lock = kgrade::paths::build_lock();
        if let Some(dir) = lock.parent() {
            std::fs::create_dir_all(dir)?;
        }
        println!("fresh-root$ {script}   (under {})", lock.display());
        let inner = self.command(script);
        let mut cmd = Command::new("flock");
        cmd.arg(&lock)
            .arg(inner.get_program())
            .args(inner.get_args());
        let st = cmd.status()?;
        ensure!(st.success(), "in the root, `{script}` failed ({st})");
        Ok(())
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn run(cmd: &mut Command) -> Result<()> {
    println!("fresh-root: {cmd:?}");
    let st = cmd.status().with_context(|| format!("{cmd:?}"))?;
    ensure!(st.success(), "{cmd:?} failed ({st})");
    Ok(())
}

/// Refuses to delete a root that still has something mounted in it.
fn remove_root(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    if let Some(m) = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .find(|p| p.starts_with(&prefix))
    {
        bail!("{m} is still mounted: not removing {prefix}");
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

struct Clock(Vec<(String, f64)>);

impl Clock {
    fn time<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let r = f();
        self.0.push((what.to_string(), t.elapsed().as_secs_f64()));
        r
    }

    fn table(&self) -> String {
        let mut s = String::new();
        for (what, secs) in &self.0 {
            s.push_str(&format!("{:>8.0} s  {what}\n", secs));
        }
        let total: f64 = self.0.iter().map(|(_, s)| s).sum();
        s.push_str(&format!("{total:>8.0} s  total\n"));
        s
    }
}

pub fn run_all(project: &Path, opts: &Options) -> Result<()> {
    let recipe_path = project.join("images/Containerfile");
    let steps = parse_recipe(&std::fs::read_to_string(&recipe_path)?)?;
    let (assignment, series) = {
        let parts: Vec<&str> = opts.target.split('/').collect();
        ensure!(parts.len() == 3, "target {} is not a/s/arch", opts.target);
        (parts[0], parts[1])
    };
    let reference = project.join("kernel-patches").join(assignment).join(series);
    let mutant = reference
        .join("mutants")
        .join(format!("{}.patch", opts.mutant));
    ensure!(mutant.is_file(), "no mutant {}", mutant.display());
    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(project)
            .args(["rev-parse", "HEAD"])
            .output()?
            .stdout,
    )?;
    let head = head.trim().to_string();
    std::fs::create_dir_all(&opts.work)?;
    let work = std::path::absolute(&opts.work)?;
    let base = work.join("base.tar");
    let dir = work.join("root");
    let mut clock = Clock(Vec::new());

    if !(opts.reuse_base && base.is_file()) {
        clock.time("mmdebstrap --variant=minbase bookworm", || {
            let m = &opts.mirror;
            run(Command::new("mmdebstrap")
                .args(["--variant=minbase", "--mode=root", "bookworm"])
                .arg(&base)
                .arg(format!("deb {m}/debian bookworm main"))
                .arg(format!("deb {m}/debian bookworm-updates main"))
                .arg(format!("deb {m}/debian-security bookworm-security main")))
        })?;
    }
    remove_root(&dir)?;
    std::fs::create_dir_all(&dir)?;
    clock.time("unpack the root", || {
        run(Command::new("tar")
            .arg("-xf")
            .arg(&base)
            .arg("-C")
            .arg(&dir))?;
        // The network's settings, not kgrade's: name resolution, and the
        // CA certificates this site added (a TLS-inspecting proxy's), which
        // the recipe's ca-certificates install then trusts, as it would on
        // any machine of this network.
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            let dest = dir.join(f.trim_start_matches('/'));
            let _ = std::fs::remove_file(&dest);
            std::fs::copy(f, &dest).with_context(|| format!("copying {f}"))?;
        }
        let local_ca = Path::new("/usr/local/share/ca-certificates");
        if let Ok(entries) = std::fs::read_dir(local_ca) {
            let dest = dir.join("usr/local/share/ca-certificates");
            std::fs::create_dir_all(&dest)?;
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "crt") {
                    std::fs::copy(e.path(), dest.join(e.file_name()))?;
                }
            }
        }
        Ok(())
    })?;

    let mut root = Root {
        dir: dir.clone(),
        env: Vec::new(),
        workdir: "/".into(),
    };
    for step in &steps {
        match step {
            Step::Env(k, v) => root.env.push((k.clone(), v.clone())),
            Step::Workdir(w) => root.workdir = w.clone(),
            Step::Copy(src, dest) => {
                ensure!(src == ".", "COPY {src}: only the project (.) can be copied");
                let to = dir.join(dest.trim_start_matches('/'));
                clock.time(&format!("COPY: git clone of {}", &head[..12]), || {
                    run(Command::new("git")
                        .args(["clone", "--quiet", "--no-hardlinks"])
                        .arg(project)
                        .arg(&to))?;
                    run(Command::new("git")
                        .arg("-C")
                        .arg(&to)
                        .args(["checkout", "--quiet", "--detach", &head]))
                })?;
            }
            Step::Run(script) => clock.time(&format!("RUN {script}"), || root.run(script))?,
        }
    }

    // No network here: kgrade builds the Debian stand-in without trying kernel.org.
    if let Ok(v) = std::env::var("KGRADE_OFFLINE") {
        root.env.push(("KGRADE_OFFLINE".into(), v));
    }
    root.workdir = "/tmp".into();
    // The class: the reference as a student, and the reference plus the mutant.
    let class = dir.join("tmp/class");
    let _ = std::fs::remove_dir_all(&class);
    for student in ["good", "bad"] {
        std::fs::create_dir_all(class.join(student))?;
        for f in std::fs::read_dir(&reference)? {
            let p = f?.path();
            if p.extension().is_some_and(|e| e == "patch") {
                std::fs::copy(
                    &p,
                    class.join(student).join(p.file_name().unwrap_or_default()),
                )?;
            }
        }
    }
    std::fs::copy(&mutant, class.join("bad/0099-mutant.patch"))?;
    let t = &opts.target;
    clock.time(&format!("kgrade grade (reference, good, bad) on {t}, cold"), || {
        root.run_locked(&format!(
            "kgrade grade /tmp/class --assignment {assignment} --targets {t} --jobs 1 --out /tmp/grades"
        ))
    })?;
    let students = dir.join("tmp/grades/students");
    let target_dir = t.replace('/', "_");
    let verdict = |s: &str| -> Result<Verdict> {
        let run = students.join(s).join(&target_dir);
        let result = RunResult::read(&run)
            .with_context(|| format!("reading {}/result.json", run.display()))?;
        Ok(result.verdict)
    };
    let (good, bad) = (verdict("good")?, verdict("bad")?);
    ensure!(
        good == Verdict::Pass,
        "the reference graded {}",
        good.as_str()
    );
    ensure!(bad == Verdict::Fail, "the mutant graded {}", bad.as_str());
    let gradebook = std::fs::read_to_string(dir.join("tmp/grades/gradebook.csv"))?;
    println!("fresh-root: gradebook.csv\n{gradebook}");

    // Gradescope: the bundle unzipped as Gradescope does, then its scripts.
    let zip = work.join("autograder.zip");
    crate::gradescope::bundle(project, assignment, std::slice::from_ref(t), &zip)?;
    let ag = dir.join("autograder");
    let _ = std::fs::remove_dir_all(&ag);
    std::fs::create_dir_all(ag.join("submission"))?;
    std::fs::create_dir_all(ag.join("results"))?;
    run(Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(ag.join("source")))?;
    for f in std::fs::read_dir(class.join("bad"))? {
        let p = f?.path();
        std::fs::copy(
            &p,
            ag.join("submission")
                .join(p.file_name().unwrap_or_default()),
        )?;
    }
    root.workdir = "/autograder".into();
    clock.time("gradescope setup.sh (image build)", || {
        root.run_locked("bash /autograder/source/setup.sh")
    })?;
    clock.time("gradescope run_autograder (the failing submission)", || {
        root.run_locked("cp source/run_autograder run_autograder && ./run_autograder")
    })?;
    let results_path = ag.join("results/results.json");
    let results = crate::gradescope::check_results(&std::fs::read_to_string(&results_path)?)?;
    let score = results["score"].as_f64().unwrap_or(-1.0);
    let tests = results["tests"].as_array().map(Vec::len).unwrap_or(0);
    let failed = results["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["status"] == "failed")
        .count();
    let max: f64 = results["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["max_score"].as_f64())
        .sum();
    ensure!(
        tests > 0 && failed > 0 && score < max && score > 0.0,
        "results.json does not show a partly failing submission: score {score}/{max}, {failed} of {tests} tests failed"
    );
    let output = results["output"].as_str().unwrap_or_default();
    println!(
        "fresh-root: results.json follows Gradescope's format: score {score}/{max}, {failed} of {tests} tests failed; output:\n{output}"
    );
    std::fs::copy(&results_path, work.join("results.json"))?;
    let table = clock.table();
    std::fs::write(work.join("times.txt"), &table)?;
    println!("fresh-root: passed\n{table}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_recipe_can_be_replayed() {
        let text =
            std::fs::read_to_string(kgrade::paths::project_root().join("images/Containerfile"))
                .unwrap();
        let steps = parse_recipe(&text).unwrap();
        assert!(steps.contains(&Step::Copy(".".into(), "/opt/kgrade".into())));
        assert!(steps
            .iter()
            .any(|s| matches!(s, Step::Run(r) if r.starts_with("cargo xtask setup"))));
        assert!(steps
            .iter()
            .any(|s| matches!(s, Step::Run(r) if r.starts_with("kgrade guests"))));
    }

    #[test]
    fn continuations_join_and_unknown_instructions_fail() {
        let steps =
            parse_recipe("FROM debian:12\n# c\nRUN a \\\n    b\nENV K=v w\nWORKDIR /x\n").unwrap();
        assert_eq!(
            steps,
            [
                Step::Run("a  b".into()),
                Step::Env("K".into(), "v w".into()),
                Step::Workdir("/x".into())
            ]
        );
        let e = parse_recipe("FROM debian:12\nUSER nobody\n").unwrap_err();
        assert!(e.to_string().contains("USER"), "{e}");
        let e = parse_recipe("FROM ubuntu:24.04\n").unwrap_err();
        assert!(e.to_string().contains("ubuntu"), "{e}");
    }
}
