//! `kgrade grade --emit-slurm N`: an sbatch array script (one task per
//! shard), a merge script, and submit.sh that queues the merge after the
//! array. Tasks share no writable state: each writes its own shard directory
//! and a node-local cache, and reads the class, the project and (optionally)
//! a read-only seed cache. submit.sh builds the guests once, on the
//! machine it runs on; each task starts with `kgrade doctor`.

use super::GradeError;
use crate::ioerr::io;
use std::path::{Path, PathBuf};

/// What `kgrade grade --emit-slurm` writes scripts for.
#[derive(Debug, Clone)]
pub struct SlurmSpec {
    /// The kgrade binary the tasks run (inside the container with `container`).
    pub kgrade: PathBuf,
    /// The project checkout (configs, kernel-patches, guest-tests).
    pub root: PathBuf,
    /// The class directory.
    pub dir: PathBuf,
    /// The output directory the merge writes.
    pub out: PathBuf,
    /// The assignment.
    pub assignment: String,
    /// As given with --targets (empty: every target of the assignment).
    pub targets: Vec<String>,
    /// How many targets that is.
    pub target_count: usize,
    /// Runs at once in each task.
    pub jobs: usize,
    /// Shards (array tasks).
    pub shards: usize,
    /// Students in the class.
    pub students: usize,
    /// Passed through to sbatch.
    pub sbatch: SbatchOptions,
    /// An Apptainer image (images/kgrade.def) each task runs kgrade in.
    pub container: Option<PathBuf>,
}

/// What the cluster wants on every job: passed through to sbatch.
#[derive(Debug, Clone, Default)]
pub struct SbatchOptions {
    /// `--account`.
    pub account: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// The array tasks' time limit (default: estimated from the class size).
    pub time: Option<String>,
    /// Any other sbatch flags, given to both sbatch calls in submit.sh.
    pub extra: Vec<String>,
}

/// Quotes a word for sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn qp(p: &Path) -> String {
    q(&p.display().to_string())
}

/// Per shard: a cold kernel build, then a few minutes per run.
fn time_limit(spec: &SlurmSpec) -> String {
    let per_shard = spec.students.div_ceil(spec.shards.max(1));
    let minutes = 30 + per_shard * spec.target_count.max(1) * 4;
    format!("{:02}:{:02}:00", minutes / 60, minutes % 60)
}

/// An #SBATCH value: sbatch reads these lines without a shell, so a value
/// must be one plain word.
fn directive(flag: &str, value: &str) -> Result<String, GradeError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err(GradeError::Class(format!(
            "--slurm-{flag} `{value}` must be one word without spaces"
        )));
    }
    Ok(format!("#SBATCH --{flag}={value}\n"))
}

/// The #SBATCH lines every job gets (account, partition).
fn common_directives(o: &SbatchOptions) -> Result<String, GradeError> {
    let mut s = String::new();
    if let Some(a) = &o.account {
        s.push_str(&directive("account", a)?);
    }
    if let Some(p) = &o.partition {
        s.push_str(&directive("partition", p)?);
    }
    Ok(s)
}

/// How a task calls kgrade: the binary, or the binary inside the image
/// with the checkout, the class, the output and the cache bound.
fn kgrade_call(spec: &SlurmSpec) -> String {
    match &spec.container {
        None => qp(&spec.kgrade),
        Some(image) => format!(
            "apptainer exec --bind {root} --bind {dir} --bind {out} --bind \"$KGRADE_CACHE\" {image} kgrade",
            root = qp(&spec.root),
            dir = qp(&spec.dir),
            out = qp(&spec.out),
            image = qp(image),
        ),
    }
}

pub(crate) fn scripts(spec: &SlurmSpec) -> Result<Vec<(&'static str, String)>, GradeError> {
    let n = spec.shards;
    let out = &spec.out;
    let targets = if spec.targets.is_empty() {
        String::new()
    } else {
        format!(" --targets {}", q(&spec.targets.join(",")))
    };
    let common = common_directives(&spec.sbatch)?;
    let time = match &spec.sbatch.time {
        Some(t) => directive("time", t)?,
        None => format!("#SBATCH --time={}\n", time_limit(spec)),
    };
    let kgrade = kgrade_call(spec);
    let guests = out.join("slurm").join("guests");
    let grade = format!(
        r#"#!/bin/bash
# kgrade: grade `{a}` in {n} shards, one Slurm array task each.
# Written by `kgrade grade --emit-slurm`; submit with submit.sh (it builds
# the guests once and queues the merge).
#SBATCH --job-name=kgrade-{a}
#SBATCH --array=1-{n}
#SBATCH --cpus-per-task={cpus}
#SBATCH --mem=4G
{time}{common}#SBATCH --output=logs/grade-%A_%a.log
set -euo pipefail
# No shared writable state: this task writes only its shard directory and a
# node-local cache.
export KGRADE_ROOT={root}
export KGRADE_CACHE="${{KGRADE_CACHE:-${{TMPDIR:-/tmp}}/kgrade-cache-${{USER:-kgrade}}}}"
# The guest /init, built once by submit.sh: no Rust toolchain on the nodes.
export KGRADE_GUEST_DIR={guests}
mkdir -p "$KGRADE_CACHE"
# KGRADE_SEED_CACHE may name a kgrade cache prepared once (read-only here):
# - tarballs/: kernel.org tarballs (e.g. linux-6.1.6.tar.xz, checked against
#   the sha256 in configs/targets.toml), for nodes that cannot download;
# - ccache-shared/: a ccache directory filled by grading the reference once; it is
#   copied into this node's cache (ccache cannot read another cache's files
#   as remote storage), so the first build is mostly hits.
if [ -n "${{KGRADE_SEED_CACHE:-}}" ]; then
    mkdir -p "$KGRADE_CACHE/tarballs"
    for f in "$KGRADE_SEED_CACHE"/tarballs/*.tar.*; do
        [ -f "$f" ] && cp -n "$f" "$KGRADE_CACHE/tarballs/"
    done
    if [ -d "$KGRADE_SEED_CACHE/ccache-shared" ] && [ ! -e "$KGRADE_CACHE/ccache-shared/.kgrade-seeded" ]; then
        mkdir -p "$KGRADE_CACHE/ccache-shared"
        cp -a -n "$KGRADE_SEED_CACHE/ccache-shared/." "$KGRADE_CACHE/ccache-shared/"
        touch "$KGRADE_CACHE/ccache-shared/.kgrade-seeded"
    fi
fi
# What this node lacks for these targets, first, in the task's log.
{kgrade} doctor --assignment {aq}{targets}
# --resume: a requeued task keeps what it finished.
{kgrade} grade {dir} --assignment {aq}{targets} --jobs {jobs} \
    --shard "${{SLURM_ARRAY_TASK_ID}}/{n}" --out {shards}/"${{SLURM_ARRAY_TASK_ID}}" --resume
"#,
        a = spec.assignment,
        aq = q(&spec.assignment),
        cpus = spec.jobs.max(2),
        root = qp(&spec.root),
        guests = qp(&guests),
        dir = qp(&spec.dir),
        jobs = spec.jobs.max(1),
        shards = qp(&out.join("shards")),
    );
    let inputs: Vec<String> = (1..=n)
        .map(|i| qp(&out.join("shards").join(i.to_string())))
        .collect();
    let merge = format!(
        r#"#!/bin/bash
# kgrade: merge the {n} shards of `{a}` into one gradebook and report.
#SBATCH --job-name=kgrade-{a}-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=00:30:00
{common}#SBATCH --output=logs/merge-%j.log
set -euo pipefail
export KGRADE_ROOT={root}
export KGRADE_CACHE="${{KGRADE_CACHE:-${{TMPDIR:-/tmp}}/kgrade-cache-${{USER:-kgrade}}}}"
{kgrade} merge {inputs} --out {out}
"#,
        a = spec.assignment,
        root = qp(&spec.root),
        inputs = inputs.join(" "),
        out = qp(out),
    );
    let extra: Vec<String> = spec.sbatch.extra.iter().map(|f| q(f)).collect();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{} ", extra.join(" "))
    };
    let submit = format!(
        r#"#!/bin/sh
# Builds the guest /init for every arch once (into {guests}),
# queues the grading array, then the merge once every task has ended (a
# failed shard makes the merge say which students are missing). Logs go to
# logs/ beside this script.
set -eu
cd "$(dirname "$0")"
mkdir -p logs
(
    export KGRADE_ROOT={root}
    export KGRADE_CACHE="${{KGRADE_CACHE:-${{TMPDIR:-/tmp}}/kgrade-cache-${{USER:-kgrade}}}}"
    mkdir -p "$KGRADE_CACHE"
    {kgrade} guests --out {guests}
)
array=$(sbatch --parsable {extra}grade.sbatch)
sbatch --parsable {extra}--dependency=afterany:"${{array%%;*}}" merge.sbatch
"#,
        root = qp(&spec.root),
        guests = qp(&guests),
    );
    Ok(vec![
        ("grade.sbatch", grade),
        ("merge.sbatch", merge),
        ("submit.sh", submit),
    ])
}

/// Writes the scripts into `OUT/slurm/` and returns their paths.
pub fn write(spec: &SlurmSpec) -> Result<Vec<PathBuf>, GradeError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = spec.out.join("slurm");
    let mut written = Vec::new();
    for (name, text) in scripts(spec)? {
        let path = dir.join(name);
        super::run_files::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SlurmSpec {
        SlurmSpec {
            kgrade: "/opt/kgrade/bin/kgrade".into(),
            root: "/opt/kgrade".into(),
            dir: "/home/ta/class it's".into(),
            out: "/scratch/out".into(),
            assignment: "tracker".into(),
            targets: vec!["tracker/6.1/x86_64".into(), "tracker/6.1/arm64".into()],
            target_count: 2,
            jobs: 2,
            shards: 4,
            students: 200,
            sbatch: SbatchOptions::default(),
            container: None,
        }
    }

    #[test]
    fn one_array_task_per_shard_then_a_merge() {
        let s = scripts(&spec()).unwrap();
        let grade = &s[0].1;
        assert!(grade.contains("#SBATCH --array=1-4\n"), "{grade}");
        assert!(
            grade.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""),
            "{grade}"
        );
        assert!(
            grade.contains("--out '/scratch/out/shards'/\"${SLURM_ARRAY_TASK_ID}\" --resume"),
            "{grade}"
        );
        assert!(
            grade.contains("'/home/ta/class it'\\''s'"),
            "quoted: {grade}"
        );
        assert!(grade.contains("--targets 'tracker/6.1/x86_64,tracker/6.1/arm64'"));
        // sbatch reads #SBATCH lines without a shell: no quoting there.
        assert!(
            grade.contains("#SBATCH --output=logs/grade-%A_%a.log\n"),
            "{grade}"
        );
        // 50 students x 2 targets x 4 min + 30 min.
        assert!(grade.contains("--time=07:10:00"), "{grade}");
        let merge = &s[1].1;
        assert!(merge.contains(
            "merge '/scratch/out/shards/1' '/scratch/out/shards/2' '/scratch/out/shards/3' '/scratch/out/shards/4' --out '/scratch/out'"
        ), "{merge}");
        assert!(s[2].1.contains("--dependency=afterany"));
        // The guests are built once, before queueing, and every task uses them.
        let submit = &s[2].1;
        let guests = submit
            .find("guests --out '/scratch/out/slurm/guests'")
            .unwrap();
        assert!(guests < submit.find("sbatch").unwrap(), "{submit}");
        assert!(grade.contains("export KGRADE_GUEST_DIR='/scratch/out/slurm/guests'\n"));
        // doctor before grading.
        let doctor = grade
            .find("'/opt/kgrade/bin/kgrade' doctor --assignment 'tracker' --targets 'tracker/6.1/x86_64,tracker/6.1/arm64'\n")
            .unwrap();
        assert!(doctor < grade.find("kgrade' grade").unwrap(), "{grade}");
        // The seed's ccache is copied into the node's (a primary-layout cache
        // is no remote storage: ccache would miss every time).
        assert!(!grade.contains("SECONDARY_STORAGE") && !grade.contains("REMOTE_STORAGE"));
        assert!(grade.contains(
            "cp -a -n \"$KGRADE_SEED_CACHE/ccache-shared/.\" \"$KGRADE_CACHE/ccache-shared/\""
        ));
    }

    #[test]
    fn cluster_options_are_passed_to_sbatch() {
        let mut sp = spec();
        sp.sbatch = SbatchOptions {
            account: Some("cs331".into()),
            partition: Some("short".into()),
            time: Some("02:00:00".into()),
            extra: vec!["--qos=normal".into(), "--constraint=kvm&x86".into()],
        };
        sp.container = Some("/images/kgrade it.sif".into());
        let s = scripts(&sp).unwrap();
        let (grade, merge, submit) = (&s[0].1, &s[1].1, &s[2].1);
        for script in [grade, merge] {
            assert!(
                script.contains("#SBATCH --account=cs331\n#SBATCH --partition=short\n"),
                "{script}"
            );
        }
        assert!(grade.contains("#SBATCH --time=02:00:00\n") && !grade.contains("07:10:00"));
        assert!(
            submit.contains("sbatch --parsable '--qos=normal' '--constraint=kvm&x86' grade.sbatch"),
            "{submit}"
        );
        assert!(
            submit.contains("'--constraint=kvm&x86' --dependency=afterany"),
            "{submit}"
        );
        let exec = "apptainer exec --bind '/opt/kgrade' --bind '/home/ta/class it'\\''s' --bind '/scratch/out' --bind \"$KGRADE_CACHE\" '/images/kgrade it.sif' kgrade";
        assert!(
            grade.contains(&format!("{exec} doctor --assignment")),
            "{grade}"
        );
        assert!(grade.contains(&format!("{exec} grade ")), "{grade}");
        assert!(merge.contains(&format!("{exec} merge ")), "{merge}");
        assert!(submit.contains(&format!("{exec} guests ")), "{submit}");
        // A value sbatch would split is refused, not written.
        sp.sbatch.account = Some("cs 331".into());
        let e = scripts(&sp).unwrap_err().to_string();
        assert!(e.contains("--slurm-account"), "{e}");
    }

    #[test]
    fn scripts_are_valid_shell() {
        let d = tempfile::tempdir().unwrap();
        let mut sp = spec();
        sp.out = d.path().to_path_buf();
        for p in write(&sp).unwrap() {
            let st = std::process::Command::new("bash")
                .arg("-n")
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success(), "{}", p.display());
        }
    }
}
