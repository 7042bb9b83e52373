//! `bench`: what a kernel costs with kgrade against a bare `make` of the same
//! tree and .config, measured one thing at a time in one run (P1), what a
//! student rebuild costs after the reference (P2), boots per arch (P3),
//! optionally `kunit.py run` on the same tree (P4), and what a class costs.
//! A benchmark, not a test: it fails only when something cannot be measured.

use anyhow::{bail, Context, Result};
use kgrade::paths;
use kgrade::source::{self, KernelSource};
use kgrade::target::{Catalog, Target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use xshell::{cmd, Shell};

pub struct Options {
    pub target: String,
    pub kunit: bool,
    pub skip_p3: bool,
    pub students: u32,
    pub targets: u32,
    pub machines: u32,
}

// ---------------------------------------------------------------- the table

/// One line of the table: seconds, and a ratio to another line.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub part: &'static str,
    pub what: String,
    pub seconds: Option<f64>,
    pub ratio: Option<f64>,
    /// What the ratio is taken against (empty: no ratio).
    pub of: String,
}

impl Row {
    fn new(part: &'static str, what: impl Into<String>, seconds: f64) -> Row {
        Row {
            part,
            what: what.into(),
            seconds: Some(seconds),
            ratio: None,
            of: String::new(),
        }
    }

    fn against(mut self, base: f64, of: &str) -> Row {
        self.ratio = self.seconds.and_then(|s| ratio(s, base));
        self.of = of.to_string();
        self
    }
}

/// `a / b`, or nothing when `b` is no time at all.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// A class graded on this machine, one kernel build at a time: each target's
/// reference once (cold), then every student on every target.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub students: u32,
    pub targets: u32,
    pub machines: u32,
    pub cold_s: f64,
    pub per_run_s: f64,
}

impl Projection {
    pub fn total_s(&self) -> f64 {
        let targets = f64::from(self.targets);
        let runs = f64::from(self.students) * targets;
        (targets * self.cold_s + runs * self.per_run_s) / f64::from(self.machines.max(1))
    }
}

/// `4 h 07 min`, `12 min 05 s`, `45.2 s`.
pub fn human(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        _ if seconds < 60.0 => format!("{seconds:.1} s"),
        _ if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub ram_gib: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub target: String,
    /// `6.1.192 (Debian linux-source-6.1 (...))`: read from the tree built.
    pub kernel: String,
    pub jobs: usize,
    pub rows: Vec<Row>,
    pub projection: Option<Projection>,
    pub notes: Vec<String>,
}

/// The Markdown the run writes and prints.
pub fn render(r: &Report) -> String {
    let mut s = format!("## kgrade bench, {}\n\n", r.date);
    s.push_str(&format!(
        "Machine: {}, {} cores, {:.1} GiB RAM. Kernel tree built: Linux {}. \
         Target {}, its .config as kgrade makes it, make -j{}.\n\n",
        r.machine.cpu, r.machine.cores, r.machine.ram_gib, r.kernel, r.target, r.jobs
    ));
    s.push_str("| part | what | seconds | ratio | ratio of |\n|---|---|---:|---:|---|\n");
    for row in &r.rows {
        let secs = row.seconds.map_or("-".into(), |v| format!("{v:.1}"));
        let ratio = row.ratio.map_or(String::new(), |v| format!("{v:.2}"));
        s.push_str(&format!(
            "| {} | {} | {secs} | {ratio} | {} |\n",
            row.part,
            row.what.replace('|', "\\|"),
            row.of
        ));
    }
    if let Some(p) = &r.projection {
        let runs = u64::from(p.students) * u64::from(p.targets);
        s.push_str(&format!(
            "\nA class of {} students x {} targets on {} machine(s): {} cold reference builds \
             ({:.1} s each) + {runs} student runs ({:.1} s each, the typical P2 run with its \
             boot and tests), one kernel build at a time per machine: **{}**.\n",
            p.students,
            p.targets,
            p.machines,
            p.targets,
            p.cold_s,
            p.per_run_s,
            human(p.total_s())
        ));
    }
    if !r.notes.is_empty() {
        s.push('\n');
        for n in &r.notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s
}

// ------------------------------------------------------- student submissions

/// A copy of the reference series in which one added line of each of
/// `files` is changed without changing what it means (a trailing comment
/// in C, one more blank in a syscall table), as a student's own version of
/// the same change would differ. Returns the series and the files changed.
pub fn vary_series(
    patches: &[(String, String)],
    files: &[String],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut varied: Vec<&String> = Vec::new();
    let series = patches
        .iter()
        .map(|(name, text)| {
            let mut current: Option<&str> = None;
            let mut out = String::with_capacity(text.len() + 64);
            for line in text.split_inclusive('\n') {
                if let Some(path) = line.strip_prefix("+++ b/") {
                    current = Some(path.trim_end());
                } else if line.starts_with("diff ") {
                    current = None;
                }
                let wanted = current.and_then(|c| files.iter().find(|f| f.as_str() == c));
                if let Some(file) = wanted.filter(|f| !varied.contains(f)) {
                    if let Some(new) = line
                        .strip_prefix('+')
                        .filter(|_| !line.starts_with("+++"))
                        .and_then(|body| vary_line(file, body.trim_end_matches('\n')))
                    {
                        varied.push(file);
                        out.push('+');
                        out.push_str(&new);
                        out.push('\n');
                        continue;
                    }
                }
                out.push_str(line);
            }
            (name.clone(), out)
        })
        .collect();
    (series, varied.into_iter().cloned().collect())
}

/// A copy of the reference series in which the first two syscalls the
/// patches add to a syscall table (`.tbl`) swap numbers, as a student who
/// added them in another order would have them: the lines keep their
/// numbers (the table stays sorted) and trade what follows, so the
/// generated unistd header differs from the reference's. Returns the series and the tables
/// changed (none when no table gains two entries).
pub fn renumber_series(patches: &[(String, String)]) -> (Vec<(String, String)>, Vec<String>) {
    let added = |line: &str, in_table: bool| {
        in_table
            && !line.starts_with("+++")
            && line
                .strip_prefix('+')
                .is_some_and(|b| b.starts_with(|c: char| c.is_ascii_digit()))
    };
    // The first two new lines: (number, the rest of the line).
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut table = String::new();
    for (_, text) in patches {
        let mut in_table = false;
        for line in text.lines() {
            if let Some(path) = line.strip_prefix("+++ b/") {
                in_table = path.ends_with(".tbl") && (table.is_empty() || table == path);
                if in_table {
                    table = path.to_string();
                }
            } else if added(line, in_table) && entries.len() < 2 {
                let body = &line[1..];
                let number_len = body
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(body.len());
                let (number, rest) = body.split_at(number_len);
                entries.push((number.to_string(), rest.to_string()));
            }
        }
    }
    if entries.len() < 2 {
        return (patches.to_vec(), Vec::new());
    }
    let mut seen = 0;
    let series = patches
        .iter()
        .map(|(name, text)| {
            let mut in_table = false;
            let mut out = String::with_capacity(text.len());
            for line in text.split_inclusive('\n') {
                if let Some(path) = line.strip_prefix("+++ b/") {
                    in_table = path.trim_end() == table;
                } else if seen < 2 && added(line, in_table) {
                    let newline = if line.ends_with('\n') { "\n" } else { "" };
                    out.push('+');
                    out.push_str(&entries[seen].0);
                    out.push_str(&entries[1 - seen].1);
                    out.push_str(newline);
                    seen += 1;
                    continue;
                }
                out.push_str(line);
            }
            (name.clone(), out)
        })
        .collect();
    (series, vec![table])
}

/// The same line, changed in a way the compiler and the table scripts ignore.
fn vary_line(path: &str, body: &str) -> Option<String> {
    let trimmed = body.trim();
    if path.ends_with(".c") || path.ends_with(".h") {
        let in_comment =
            trimmed.starts_with('*') || trimmed.starts_with("/*") || body.contains("*/");
        (trimmed.ends_with(';') && !in_comment && !trimmed.starts_with('#'))
            .then(|| format!("{body} /* bench */"))
    } else if path.ends_with(".tbl") {
        // `nr abi name entry`: one more blank between fields.
        (trimmed.starts_with(|c: char| c.is_ascii_digit()) && body.contains('\t'))
            .then(|| body.replacen('\t', " \t", 1))
    } else {
        None
    }
}

/// Files the patches create (`--- /dev/null`).
pub fn new_files(patches: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, text) in patches {
        let mut from_null = false;
        for line in text.lines() {
            if line.starts_with("--- ") {
                from_null = line == "--- /dev/null";
            } else if let Some(path) = line.strip_prefix("+++ b/") {
                if from_null && !out.iter().any(|p| p == path) {
                    out.push(path.to_string());
                }
                from_null = false;
            }
        }
    }
    out
}

/// Files the patches touch at all.
fn touched(patches: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, text) in patches {
        for path in text.lines().filter_map(|l| l.strip_prefix("+++ b/")) {
            if !out.iter().any(|p| p == path) {
                out.push(path.to_string());
            }
        }
    }
    out
}

// ------------------------------------------------------------ measurements

/// One `kgrade run` as result.json tells it, with the wall time around it.
#[derive(Debug, Clone)]
struct KgradeRun {
    wall: f64,
    stages: BTreeMap<String, f64>,
    verdict: String,
    tree: String,
}

impl KgradeRun {
    /// The run without the time it waited for another kgrade's build.
    fn net(&self) -> f64 {
        self.wall - self.stage("wait")
    }

    fn stage(&self, key: &str) -> f64 {
        self.stages.get(key).copied().unwrap_or(0.0)
    }
}

/// A kgrade cache made for this run, removed when dropped (also on error):
/// the pristine tree and what the machine knows (the tarball's sha256, the
/// KVM probe) are there already; no ccache, no workspace. Its build lock is
/// the machine's, so its builds still go one at a time with everybody's.
struct FreshCache {
    dir: tempfile::TempDir,
}

impl FreshCache {
    fn new(warm: &Path, src: &KernelSource) -> Result<FreshCache> {
        let parent = warm.join("bench");
        std::fs::create_dir_all(&parent)?;
        let dir = tempfile::Builder::new()
            .prefix("cache-")
            .tempdir_in(&parent)?;
        let fresh = dir.path();
        // sources/<key>/<top dir>: the extracted tarball, hard-linked (the
        // pristine tree is never written, kgrade's workspaces link it too).
        let extracted = src
            .tree
            .parent()
            .filter(|p| p.parent() == Some(&warm.join("sources")))
            .with_context(|| {
                format!(
                    "{} is not an extracted tarball in {}",
                    src.tree.display(),
                    warm.display()
                )
            })?;
        let sources = fresh.join("sources");
        std::fs::create_dir_all(&sources)?;
        let sh = Shell::new()?;
        cmd!(sh, "cp -al {extracted} {sources}/").quiet().run()?;
        // The tarballs (linked: kgrade replaces, never rewrites them) and
        // what it remembers of them (copied with their times): hashing or
        // downloading a tarball is not building.
        let tarballs = fresh.join("tarballs");
        std::fs::create_dir_all(&tarballs)?;
        for e in std::fs::read_dir(warm.join("tarballs"))?.flatten() {
            let (from, to) = (e.path(), tarballs.join(e.file_name()));
            if e.file_name().to_string_lossy().contains(".tar.") && !is_note(&from) {
                std::fs::hard_link(&from, &to)?;
            } else {
                cmd!(sh, "cp -p {from} {to}").quiet().run()?;
            }
        }
        if warm.join("kvm-probe").is_file() {
            std::fs::copy(warm.join("kvm-probe"), fresh.join("kvm-probe"))?;
        }
        std::os::unix::fs::symlink(warm.join("build.lock"), fresh.join("build.lock"))?;
        Ok(FreshCache { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// kgrade's small files beside a tarball (its sha256, a failed download).
fn is_note(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "sha256" || e == "unreachable" || e == "partial")
}

struct Bench {
    sh: Shell,
    root: PathBuf,
    kgrade: PathBuf,
    /// Build dirs and copies: removed at the end.
    scratch: PathBuf,
    /// Each run's result.json and logs: kept (small), replaced next run.
    logs: PathBuf,
    jobs: usize,
    log: Vec<String>,
}

impl Bench {
    /// `kgrade run` of `target` (the reference, or `submission`), with
    /// `cache` as its cache (None: the normal one); `fill`: with
    /// `--fill-cache`, as `kgrade grade` builds a class's reference.
    fn kgrade_run(
        &mut self,
        label: &str,
        target: &str,
        submission: Option<&Path>,
        cache: Option<&Path>,
        fill: bool,
    ) -> Result<KgradeRun> {
        let out = self.logs.join(label);
        let _ = std::fs::remove_dir_all(&out);
        let kgrade = &self.kgrade;
        let mut c = cmd!(self.sh, "{kgrade} run --target {target} --out {out}").quiet();
        if let Some(s) = submission {
            c = c.args(["--submission".as_ref(), s.as_os_str()]);
        }
        if fill {
            c = c.arg("--fill-cache");
        }
        if let Some(cache) = cache {
            // Offline: the fresh cache has what the warm one resolved, and a
            // download attempt is not part of a build.
            c = c.env("KGRADE_CACHE", cache).env("KGRADE_OFFLINE", "1");
        }
        eprintln!("bench: {label}: kgrade run --target {target}");
        let started = Instant::now();
        let done = c.ignore_status().output()?;
        let wall = started.elapsed().as_secs_f64();
        let result = out.join("result.json");
        let text = std::fs::read_to_string(&result).with_context(|| {
            format!(
                "{label}: kgrade wrote no result.json (exit {:?}): {}",
                done.status.code(),
                String::from_utf8_lossy(&done.stderr).trim()
            )
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let stages = v["timings_s"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, s)| Some((k.clone(), s.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let run = KgradeRun {
            wall,
            stages,
            verdict: v["verdict"].as_str().unwrap_or("?").to_string(),
            tree: v["kernel"]["tree"].as_str().unwrap_or("").to_string(),
        };
        eprintln!(
            "bench: {label}: {} in {:.1} s (waited {:.1} s for the build lock)",
            run.verdict,
            run.wall,
            run.stage("wait")
        );
        Ok(run)
    }

    /// A bare `make olddefconfig && make -jN image` in a new build dir, under
    /// the machine's build lock (timed once the lock is ours).
    fn bare_make(
        &mut self,
        target: &Target,
        tree: &Path,
        config: &Path,
        jobs: usize,
    ) -> Result<(f64, f64)> {
        let o = self.scratch.join(format!("bare-j{jobs}"));
        std::fs::create_dir_all(&o)?;
        std::fs::copy(config, o.join(".config"))?;
        let arch = &target.arch;
        let mut vars = vec![
            format!("O={}", o.display()),
            format!("ARCH={}", arch.make_arch),
            format!("CC={}gcc", arch.cross_compile),
        ];
        if !arch.cross_compile.is_empty() {
            vars.push(format!("CROSS_COMPILE={}", arch.cross_compile));
        }
        let image = &arch.make_target;
        let j = format!("-j{jobs}");
        let env = [
            ("KBUILD_BUILD_TIMESTAMP", "2000-01-01"),
            ("KBUILD_BUILD_USER", "kgrade"),
            ("KBUILD_BUILD_HOST", "kgrade"),
            ("LC_ALL", "C"),
        ];
        eprintln!("bench: bare make -j{jobs} {image}: waiting for the build lock");
        let _lock = paths::FileLock::acquire_file(&paths::build_lock())?;
        let step = |args: Vec<String>, what: &str| -> Result<f64> {
            eprintln!("bench: bare make {what}");
            let vars = vars.clone();
            let log = self.logs.join(format!(
                "bare-j{jobs}-{}.log",
                args.last().map_or("", |a| a.as_str())
            ));
            let started = Instant::now();
            let done = cmd!(self.sh, "make -C {tree} {vars...} {args...}")
                .envs(env)
                .quiet()
                .ignore_status()
                .output()?;
            let took = started.elapsed().as_secs_f64();
            let mut text = done.stdout;
            text.extend_from_slice(&done.stderr);
            std::fs::write(&log, &text)?;
            if !done.status.success() {
                bail!("bare make {what} failed; see {}", log.display());
            }
            Ok(took)
        };
        let config_s = step(vec!["olddefconfig".into()], "olddefconfig")?;
        let build_s = step(vec![j, image.clone()], &format!("-j{jobs} {image}"))?;
        if !o.join(&arch.image).is_file() {
            bail!("bare make built no {}", arch.image);
        }
        self.log.push(format!(
            "bare -j{jobs}: olddefconfig {config_s:.1} s, {image} {build_s:.1} s"
        ));
        Ok((config_s, build_s))
    }

    /// `kunit.py run --arch=x86_64` with its build dir outside the tree.
    fn kunit(&mut self, tree: &Path) -> Result<f64> {
        let o = self.scratch.join("kunit");
        let kunit = tree.join("tools/testing/kunit/kunit.py");
        if !kunit.is_file() {
            bail!("{} is missing", kunit.display());
        }
        let jobs = format!("--jobs={}", self.jobs);
        let build_dir = format!("--build_dir={}", o.display());
        eprintln!("bench: kunit.py: waiting for the build lock");
        let _lock = paths::FileLock::acquire_file(&paths::build_lock())?;
        eprintln!("bench: kunit.py run --arch=x86_64");
        let started = Instant::now();
        let done = cmd!(
            self.sh,
            "python3 {kunit} run --arch=x86_64 {build_dir} {jobs}"
        )
        // No __pycache__ in the (linked) tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .quiet()
        .ignore_status()
        .output()?;
        let took = started.elapsed().as_secs_f64();
        let log = self.logs.join("kunit.log");
        let mut text = done.stdout;
        text.extend_from_slice(&done.stderr);
        std::fs::write(&log, &text)?;
        let summary = String::from_utf8_lossy(&text)
            .lines()
            .rev()
            .find(|l| l.contains("Testing complete") || l.contains("passed"))
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        if !done.status.success() && summary.is_empty() {
            bail!("kunit.py failed; see {}", log.display());
        }
        self.log.push(format!("kunit.py: {summary}"));
        Ok(took)
    }
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let cpu = field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("CPU part"))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ram_gib: kib / (1024.0 * 1024.0),
    }
}

fn read_series(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "patch"))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no .patch files in {}", dir.display());
    }
    names
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            Ok((name, std::fs::read_to_string(&p)?))
        })
        .collect()
}

/// Writes a series as a folder of format-patch files.
fn write_series(dir: &Path, series: &[(String, String)]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in series {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// The kgrade .config of the reference build in `cache`.
fn reference_config(cache: &Path, target: &Target) -> Result<PathBuf> {
    let dir = cache
        .join("workspaces")
        .join(paths::component(&target.name));
    std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path().join("build/.config"))
        .find(|c| c.is_file())
        .with_context(|| format!("no built workspace with a .config in {}", dir.display()))
}

/// The stages in the order a run goes through them (the lock wait left out).
const STAGES: [&str; 6] = ["source", "patch", "config", "build", "guest", "boot"];

fn stage_rows(part: &'static str, run: &KgradeRun, rows: &mut Vec<Row>) {
    let others = run
        .stages
        .keys()
        .filter(|k| k.as_str() != "wait" && !STAGES.contains(&k.as_str()));
    for k in STAGES.iter().copied().chain(others.map(String::as_str)) {
        if let Some(v) = run.stages.get(k) {
            rows.push(Row::new(part, format!("· stage {k}"), *v));
        }
    }
}

/// The 1-minute load average: a bench on a busy machine says so.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub fn run(opts: &Options) -> Result<()> {
    let root = paths::project_root();
    let catalog = Catalog::load(&root)?;
    let target = catalog.target(&opts.target)?;
    let warm = paths::cache_root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());

    eprintln!("bench: building kgrade (release)");
    cmd!(sh, "cargo build --quiet --release -p kgrade --bin kgrade").run()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let kgrade = target_dir.join("release/kgrade");
    // The guest /init is built once here, not inside a timed run.
    for t in catalog
        .targets
        .iter()
        .filter(|t| !opts.skip_p3 || t.arch_name == target.arch_name)
    {
        kgrade::guest::build(&root, &t.arch).with_context(|| format!("guest for {}", t.name))?;
    }
    let src = source::resolve(&target.series_name, &target.series, None, &warm)?;
    let bench_dir = target_dir.join("bench");
    std::fs::create_dir_all(bench_dir.join("logs"))?;
    let scratch = tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(&bench_dir)?;
    let mut b = Bench {
        sh: Shell::new()?,
        root: root.clone(),
        kgrade,
        scratch: scratch.path().to_path_buf(),
        logs: bench_dir.join("logs"),
        jobs,
        log: Vec::new(),
    };
    let load_before = load_average();
    let fresh = FreshCache::new(&warm, &src)?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // P1: kgrade cold, then bare make with the .config kgrade made.
    let cold = b.kgrade_run(
        "p1-kgrade-cold",
        &target.name,
        None,
        Some(fresh.path()),
        false,
    )?;
    if cold.verdict != "pass" {
        bail!(
            "the reference does not pass on {}: {}",
            target.name,
            cold.verdict
        );
    }
    if !Path::new(&cold.tree).starts_with(fresh.path()) {
        bail!("the cold run used {}, not the fresh cache", cold.tree);
    }
    let fresh_tree = PathBuf::from(&cold.tree);
    let config = reference_config(fresh.path(), target)?;
    let image = &target.arch.make_target;
    let mut bare_n = None;
    for j in std::iter::once(jobs).chain((jobs != 2).then_some(2)) {
        let (c, m) = b.bare_make(target, &fresh_tree, &config, j)?;
        let total = c + m;
        bare_n.get_or_insert(total);
        rows.push(
            Row::new(
                "P1",
                format!("bare `make olddefconfig && make -j{j} {image}` (gcc, no ccache)"),
                total,
            )
            .against(bare_n.unwrap_or(total), &format!("bare -j{jobs}")),
        );
    }
    let bare = bare_n.unwrap_or(0.0);
    let bare_of = format!("bare -j{jobs}");
    rows.push(
        Row::new(
            "P1",
            "kgrade reference run, cold (fresh cache, sources there, empty ccache)",
            cold.net(),
        )
        .against(bare, &bare_of),
    );
    stage_rows("P1", &cold, &mut rows);
    // The same, filling the compiler cache as `kgrade grade` does for the
    // students that follow, in a cache of its own; P2 runs in it.
    let filled = FreshCache::new(&warm, &src)?;
    let cold_fill = b.kgrade_run(
        "p1-kgrade-cold-fill",
        &target.name,
        None,
        Some(filled.path()),
        true,
    )?;
    rows.push(
        Row::new(
            "P1",
            "kgrade reference run, cold, filling the compiler cache for students (as `kgrade grade`)",
            cold_fill.net(),
        )
        .against(bare, &bare_of),
    );
    rows.push(Row::new("P1", "· stage build", cold_fill.stage("build")));

    // P2: students after the reference, in the cache it filled.
    let ref_dir = kgrade::pipeline::reference_patches_dir(
        &root,
        &target.assignment.name,
        &src,
        &target.series_name,
    )?;
    let reference = read_series(&ref_dir)?;
    let created = new_files(&reference);
    let c_file: Vec<String> = created
        .iter()
        .filter(|f| f.ends_with(".c"))
        .take(1)
        .cloned()
        .collect();
    if c_file.is_empty() {
        bail!("the reference in {} creates no .c file", ref_dir.display());
    }
    let all = touched(&reference);
    let mut typical: Vec<String> = all
        .iter()
        .filter(|f| {
            f.as_str() == "include/linux/syscalls.h"
                || target.arch.syscall_tables.iter().any(|t| t == *f)
                || created.contains(f)
        })
        .cloned()
        .collect();
    typical.dedup();
    let cold_of = "kgrade cold";
    let renumbered = renumber_series(&reference);
    for (label, files, what) in [
        ("p2-c-only", &c_file, "student: one line of the .c changed"),
        (
            "p2-typical",
            &typical,
            "student: syscalls.h, syscall table and new files changed",
        ),
        (
            "p2-renumbered",
            &Vec::new(),
            "student: the reference with two syscall numbers swapped",
        ),
    ] {
        let dir = b.scratch.join(label);
        let (series, changed) = if files.is_empty() {
            renumbered.clone()
        } else {
            vary_series(&reference, files)
        };
        if changed.is_empty() {
            notes.push(format!(
                "{label}: nothing in the reference to change; not run"
            ));
            continue;
        }
        write_series(&dir, &series)?;
        let run = b.kgrade_run(label, &target.name, Some(&dir), Some(filled.path()), false)?;
        // A time is only worth reporting for a run that did all its work.
        if run.verdict != "pass" {
            bail!(
                "{label}: the bench's student was graded {}, not pass (see {})",
                run.verdict,
                b.logs.join(label).display()
            );
        }
        rows.push(Row::new("P2", what, run.net()).against(cold.net(), cold_of));
        for k in ["config", "build"] {
            rows.push(Row::new("P2", format!("· stage {k}"), run.stage(k)));
        }
        if files.is_empty() {
            // What filling the cache buys: the same student after a
            // reference that compiled with gcc alone.
            let label = format!("{label}-unfilled");
            let run = b.kgrade_run(&label, &target.name, Some(&dir), Some(fresh.path()), false)?;
            rows.push(
                Row::new(
                    "P2",
                    "the same, after a reference built without filling the cache",
                    run.net(),
                )
                .against(cold.net(), cold_of),
            );
            rows.push(Row::new("P2", "· stage build", run.stage("build")));
        }
        let how = if files.is_empty() {
            "its first two new syscalls' numbers swapped in"
        } else {
            "one line changed in"
        };
        notes.push(format!(
            "{label}: the reference series with {how} {} (verdict {})",
            changed.join(", "),
            run.verdict
        ));
    }
    let typical_s = rows
        .iter()
        .find(|r| r.what.starts_with("student: syscalls.h"))
        .and_then(|r| r.seconds)
        .unwrap_or(0.0);

    // P3: boot and tests per arch.
    rows.push(Row::new(
        "P3",
        format!("boot + tests, {} (P1 cold run)", target.arch_name),
        cold.stage("boot"),
    ));
    if !opts.skip_p3 {
        let mut seen = vec![target.arch_name.clone()];
        for t in &catalog.targets {
            if seen.contains(&t.arch_name) {
                continue;
            }
            // Prefer the same assignment and series; any target of the arch
            // whose kernel is here will do (tried in that order: a series
            // without a stand-in may try the network).
            let mut candidates: Vec<&Target> = catalog
                .targets
                .iter()
                .filter(|c| c.arch_name == t.arch_name)
                .collect();
            candidates.sort_by_key(|c| {
                std::cmp::Reverse((
                    c.assignment.name == target.assignment.name,
                    c.series_name == target.series_name,
                    c.series.substitute.is_some(),
                ))
            });
            let pick = candidates
                .into_iter()
                .find(|c| source::resolve(&c.series_name, &c.series, None, &warm).is_ok());
            seen.push(t.arch_name.clone());
            let Some(pick) = pick else {
                notes.push(format!(
                    "P3 {}: no target with a kernel source here",
                    t.arch_name
                ));
                continue;
            };
            let label = format!("p3-{}", paths::component(&pick.name));
            let run = b.kgrade_run(&label, &pick.name, None, None, false)?;
            rows.push(Row::new(
                "P3",
                format!(
                    "boot + tests, {} ({}, warm cache: build {:.1} s)",
                    t.arch_name,
                    pick.name,
                    run.stage("build")
                ),
                run.stage("boot"),
            ));
            if run.verdict != "pass" {
                notes.push(format!(
                    "P3 {}: the reference run was {}",
                    pick.name, run.verdict
                ));
            }
        }
    }

    // P4: kunit.py on the same tree.
    if opts.kunit {
        let k = b.kunit(&fresh_tree)?;
        rows.push(
            Row::new("P4", "`kunit.py run --arch=x86_64` (same tree, O= dir)", k)
                .against(bare, &bare_of),
        );
    }

    notes.push(format!(
        "load average (1 min) at the start {load_before}, at the end {}; kgrade's \
         figures leave out its wait for the build lock",
        load_average()
    ));
    let version = source::tree_version(&fresh_tree)?;
    let report = Report {
        date: cmd!(sh, "date -u +%Y-%m-%dT%H:%MZ").quiet().read()?,
        machine: machine(),
        target: target.name.clone(),
        kernel: format!("{version} ({})", src.origin),
        jobs,
        rows,
        projection: Some(Projection {
            students: opts.students,
            targets: opts.targets,
            machines: opts.machines,
            cold_s: cold_fill.net(),
            per_run_s: typical_s,
        }),
        notes: notes.into_iter().chain(b.log.drain(..)).collect(),
    };
    let text = render(&report);
    let day = cmd!(sh, "date -u +%F").quiet().read()?;
    let file = bench_dir.join(format!("bench-{day}.md"));
    std::fs::write(&file, &text)?;
    print!("{text}");
    println!("\nwritten: {}", file.display());
    drop(fresh);
    drop(filled);
    drop(scratch);
    let _ = b.root;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_none_against_nothing() {
        assert_eq!(
            ratio(165.5, 117.0).map(|r| (r * 100.0).round()),
            Some(141.0)
        );
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 2.0), None);
    }

    #[test]
    fn projection_counts_one_cold_build_per_target() {
        let p = Projection {
            students: 200,
            targets: 4,
            machines: 2,
            cold_s: 100.0,
            per_run_s: 10.0,
        };
        // (4 x 100 + 800 x 10) / 2
        assert_eq!(p.total_s(), 4200.0);
        let none = Projection { machines: 0, ..p };
        assert_eq!(none.total_s(), 8400.0, "no machines counts as one");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(45.24), "45.2 s");
        assert_eq!(human(725.0), "12 min 05 s");
        assert_eq!(human(4.0 * 3600.0 + 7.0 * 60.0 + 20.0), "4 h 07 min");
    }

    #[test]
    fn table_has_seconds_ratios_and_projection() {
        let report = Report {
            date: "2026-12-03T07:00Z".into(),
            machine: Machine {
                cpu: "AMD EPYC".into(),
                cores: 2,
                ram_gib: 23.54,
            },
            target: "tracker/6.1/x86_64".into(),
            kernel: "6.1.192 (Debian linux-source-6.1)".into(),
            jobs: 2,
            rows: vec![
                Row::new("P1", "bare | make", 117.0).against(117.0, "bare -j2"),
                Row::new("P1", "kgrade cold", 165.5).against(117.0, "bare -j2"),
                Row::new("P1", "· stage build", 154.04),
            ],
            projection: Some(Projection {
                students: 200,
                targets: 4,
                machines: 1,
                cold_s: 165.5,
                per_run_s: 20.0,
            }),
            notes: vec!["a note".into()],
        };
        let t = render(&report);
        assert!(t.contains("AMD EPYC, 2 cores, 23.5 GiB RAM"), "{t}");
        assert!(t.contains("Linux 6.1.192 (Debian linux-source-6.1)"), "{t}");
        assert!(
            t.contains("| P1 | bare \\| make | 117.0 | 1.00 | bare -j2 |\n"),
            "{t}"
        );
        assert!(
            t.contains("| P1 | kgrade cold | 165.5 | 1.41 | bare -j2 |\n"),
            "{t}"
        );
        assert!(t.contains("| P1 | · stage build | 154.0 |  |  |\n"), "{t}");
        // 4 x 165.5 + 800 x 20 = 16662 s
        assert!(t.contains("800 student runs"), "{t}");
        assert!(t.contains("**4 h 37 min**"), "{t}");
        assert!(t.ends_with("- a note\n"), "{t}");
    }

    fn series() -> Vec<(String, String)> {
        let p1 = "\
diff --git a/include/linux/syscalls.h b/include/linux/syscalls.h
--- a/include/linux/syscalls.h
+++ b/include/linux/syscalls.h
@@ -1,2 +1,3 @@
 int a;
+/* a comment; */
+asmlinkage long sys_x(int y);
diff --git a/kernel/x.c b/kernel/x.c
new file mode 100644
--- /dev/null
+++ b/kernel/x.c
@@ -0,0 +1,2 @@
+#include <x.h>
+int x = 1;
";
        let p2 = "\
diff --git a/arch/x86/entry/syscalls/syscall_64.tbl b/arch/x86/entry/syscalls/syscall_64.tbl
--- a/arch/x86/entry/syscalls/syscall_64.tbl
+++ b/arch/x86/entry/syscalls/syscall_64.tbl
@@ -1,1 +1,2 @@
 # comment
+451\tcommon\tx\tsys_x
";
        vec![
            ("0001.patch".into(), p1.into()),
            ("0002.patch".into(), p2.into()),
        ]
    }

    #[test]
    fn renumbered_series_swaps_the_first_two_new_table_numbers_only() {
        let one = series();
        assert!(
            renumber_series(&one).1.is_empty(),
            "one new syscall: nothing to swap"
        );
        let table = "\
--- a/arch/x86/entry/syscalls/syscall_64.tbl
+++ b/arch/x86/entry/syscalls/syscall_64.tbl
@@ -1,1 +1,4 @@
 450\tcommon\tset_mempolicy_home_node\tsys_set_mempolicy_home_node
+451\tcommon\tregister\tsys_register
+452\tcommon\tfetch\tsys_fetch
+453\tcommon\treset\tsys_reset
";
        let (out, changed) = renumber_series(&[("0002.patch".into(), table.into())]);
        assert_eq!(changed, ["arch/x86/entry/syscalls/syscall_64.tbl"]);
        let lines: Vec<&str> = out[0].1.lines().collect();
        assert_eq!(
            lines[3],
            " 450\tcommon\tset_mempolicy_home_node\tsys_set_mempolicy_home_node"
        );
        // Still sorted: the numbers stay, the syscalls trade places.
        assert_eq!(lines[4], "+451\tcommon\tfetch\tsys_fetch");
        assert_eq!(lines[5], "+452\tcommon\tregister\tsys_register");
        assert_eq!(lines[6], "+453\tcommon\treset\tsys_reset");
        assert_eq!(out[0].1.len(), table.len());
    }

    #[test]
    fn varied_series_changes_one_added_line_per_file_and_nothing_else() {
        let files: Vec<String> = vec![
            "include/linux/syscalls.h".into(),
            "kernel/x.c".into(),
            "arch/x86/entry/syscalls/syscall_64.tbl".into(),
        ];
        let (v, changed) = vary_series(&series(), &files);
        assert_eq!(changed.len(), 3);
        assert!(
            v[0].1
                .contains("+asmlinkage long sys_x(int y); /* bench */\n"),
            "{}",
            v[0].1
        );
        assert!(
            v[0].1.contains("+/* a comment; */\n"),
            "comments are left alone"
        );
        assert!(v[0].1.contains("+#include <x.h>\n"));
        assert!(v[0].1.contains("+int x = 1; /* bench */\n"));
        assert!(v[1].1.contains("+451 \tcommon\tx\tsys_x\n"), "{}", v[1].1);
        assert_eq!(v[0].1.lines().count(), series()[0].1.lines().count());
        let (only_c, changed) = vary_series(&series(), &files[1..2]);
        assert_eq!(changed, ["kernel/x.c"]);
        assert!(only_c[0].1.contains("+asmlinkage long sys_x(int y);\n"));
        assert_eq!(only_c[1].1, series()[1].1);
    }

    #[test]
    fn new_files_are_those_from_dev_null() {
        assert_eq!(new_files(&series()), vec!["kernel/x.c".to_string()]);
        assert_eq!(touched(&series()).len(), 3);
    }

    #[test]
    fn the_tracker_reference_varies_where_a_student_differs() {
        let dir = kgrade::paths::project_root().join("kernel-patches/tracker/6.1");
        let reference = read_series(&dir).unwrap();
        let created = new_files(&reference);
        assert!(
            created.contains(&"kernel/tracker/tracker.c".to_string()),
            "{created:?}"
        );
        let mut files = vec![
            "include/linux/syscalls.h".to_string(),
            "arch/x86/entry/syscalls/syscall_64.tbl".to_string(),
        ];
        files.extend(created);
        let (varied, changed) = vary_series(&reference, &files);
        for f in [
            "include/linux/syscalls.h",
            "arch/x86/entry/syscalls/syscall_64.tbl",
            "kernel/tracker/tracker.c",
            "include/linux/resource_tracker.h",
        ] {
            assert!(changed.iter().any(|c| c == f), "{f} not in {changed:?}");
        }
        let differing = varied
            .iter()
            .zip(&reference)
            .flat_map(|((_, a), (_, b))| a.lines().zip(b.lines()).filter(|(x, y)| x != y))
            .count();
        assert_eq!(differing, changed.len(), "one line per changed file");
    }

    #[test]
    fn stages_come_in_run_order_without_the_lock_wait() {
        let run = KgradeRun {
            wall: 10.0,
            stages: [
                ("boot", 2.0),
                ("build", 5.0),
                ("wait", 3.0),
                ("source", 0.1),
                ("new", 1.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            verdict: "pass".into(),
            tree: String::new(),
        };
        assert_eq!(run.net(), 7.0);
        let mut rows = Vec::new();
        stage_rows("P1", &run, &mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            names,
            [
                "· stage source",
                "· stage build",
                "· stage boot",
                "· stage new"
            ]
        );
    }

    #[test]
    fn a_fresh_cache_has_the_sources_and_notes_but_no_build_and_goes_away() {
        use std::os::unix::fs::MetadataExt;
        let warm = tempfile::tempdir().unwrap();
        let w = warm.path();
        let tree = w.join("sources/0123456789abcdef/linux-x");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("Makefile"), "VERSION = 6\n").unwrap();
        std::fs::create_dir_all(w.join("tarballs")).unwrap();
        std::fs::write(w.join("tarballs/linux-x.tar.xz"), "tar").unwrap();
        std::fs::write(w.join("tarballs/linux-x.tar.xz.unreachable"), "offline").unwrap();
        // An old note: a copy dated now would make kgrade skip a download it would try.
        std::fs::File::options()
            .write(true)
            .open(w.join("tarballs/linux-x.tar.xz.unreachable"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
            .unwrap();
        std::fs::write(w.join("kvm-probe"), "tcg").unwrap();
        std::fs::create_dir_all(w.join("ccache-shared/0")).unwrap();
        let src = KernelSource {
            tree: tree.clone(),
            version: "6.0.0".into(),
            substitute: true,
            origin: "test".into(),
            tarball_sha256: None,
        };
        let fresh = FreshCache::new(w, &src).unwrap();
        let f = fresh.path().to_path_buf();
        assert!(f.starts_with(w.join("bench")));
        let copied = f.join("sources/0123456789abcdef/linux-x/Makefile");
        let meta = |p: &Path| std::fs::metadata(p).unwrap();
        assert_eq!(meta(&copied).ino(), meta(&tree.join("Makefile")).ino());
        let tarball = f.join("tarballs/linux-x.tar.xz");
        assert_eq!(
            meta(&tarball).ino(),
            meta(&w.join("tarballs/linux-x.tar.xz")).ino()
        );
        let note = f.join("tarballs/linux-x.tar.xz.unreachable");
        let warm_note = w.join("tarballs/linux-x.tar.xz.unreachable");
        assert_ne!(
            meta(&note).ino(),
            meta(&warm_note).ino(),
            "notes are copies"
        );
        assert_eq!(
            meta(&note).mtime(),
            meta(&warm_note).mtime(),
            "with their times"
        );
        assert_eq!(
            std::fs::read_link(f.join("build.lock")).unwrap(),
            w.join("build.lock")
        );
        assert!(f.join("kvm-probe").is_file());
        assert!(!f.join("ccache-shared").exists() && !f.join("workspaces").exists());
        drop(fresh);
        assert!(!f.exists());
        assert!(tree.join("Makefile").is_file(), "the warm tree stays");
    }
}
