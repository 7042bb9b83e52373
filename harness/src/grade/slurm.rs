//! `kgrade grade --emit-slurm N`: an sbatch array script (one task per
//! shard), a merge script, and submit.sh that queues the merge after the
//! array. Tasks share no writable state: each writes its own shard directory
//! and a node-local cache, and reads the class, the project and (optionally)
//! a read-only seed cache.

use super::GradeError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SlurmSpec {
    /// The kgrade binary the tasks run.
    pub kgrade: PathBuf,
    /// The project checkout (configs, kernel-patches, guest-tests).
    pub root: PathBuf,
    pub dir: PathBuf,
    pub out: PathBuf,
    pub assignment: String,
    pub targets: Vec<String>,
    pub jobs: usize,
    pub shards: usize,
    pub students: usize,
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
    let minutes = 30 + per_shard * spec.targets.len().max(1) * 4;
    format!("{:02}:{:02}:00", minutes / 60, minutes % 60)
}

pub fn scripts(spec: &SlurmSpec) -> Vec<(&'static str, String)> {
    let n = spec.shards;
    let out = &spec.out;
    let logs = out.join("slurm").join("logs");
    let targets = if spec.targets.is_empty() {
        String::new()
    } else {
        format!(" --targets {}", q(&spec.targets.join(",")))
    };
    let grade = format!(
        r#"#!/bin/bash
# kgrade: grade `{a}` in {n} shards, one Slurm array task each.
# Written by `kgrade grade --emit-slurm`; submit with submit.sh (it queues the merge).
#SBATCH --job-name=kgrade-{a}
#SBATCH --array=1-{n}
#SBATCH --cpus-per-task={cpus}
#SBATCH --mem=4G
#SBATCH --time={time}
#SBATCH --output={logs}/grade-%A_%a.log
set -euo pipefail
# No shared writable state: this task writes only its shard directory and a
# node-local cache. KGRADE_SEED_CACHE may name a read-only kgrade cache
# (tarballs/, ccache/) prepared once to spare each node a cold start.
export KGRADE_ROOT={root}
export KGRADE_CACHE="${{KGRADE_CACHE:-${{TMPDIR:-/tmp}}/kgrade-cache-${{USER:-kgrade}}}}"
mkdir -p "$KGRADE_CACHE"
if [ -n "${{KGRADE_SEED_CACHE:-}}" ]; then
    if [ -d "$KGRADE_SEED_CACHE/tarballs" ]; then
        cp -rn "$KGRADE_SEED_CACHE/tarballs" "$KGRADE_CACHE/"
    fi
    if [ -d "$KGRADE_SEED_CACHE/ccache" ]; then
        export CCACHE_SECONDARY_STORAGE="file:$KGRADE_SEED_CACHE/ccache|read-only"
    fi
fi
# --resume: a requeued task keeps what it finished.
exec {kgrade} grade {dir} --assignment {aq}{targets} --jobs {jobs} \
    --shard "${{SLURM_ARRAY_TASK_ID}}/{n}" --out {shards}/"${{SLURM_ARRAY_TASK_ID}}" --resume
"#,
        a = spec.assignment,
        aq = q(&spec.assignment),
        cpus = spec.jobs.max(2),
        time = time_limit(spec),
        logs = qp(&logs),
        root = qp(&spec.root),
        kgrade = qp(&spec.kgrade),
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
#SBATCH --output={logs}/merge-%j.log
set -euo pipefail
export KGRADE_ROOT={root}
exec {kgrade} merge {inputs} --out {out}
"#,
        a = spec.assignment,
        logs = qp(&logs),
        root = qp(&spec.root),
        kgrade = qp(&spec.kgrade),
        inputs = inputs.join(" "),
        out = qp(out),
    );
    let submit = format!(
        r#"#!/bin/sh
# Queues the grading array, then the merge once every task has ended (a
# failed shard makes the merge say which students are missing).
set -eu
cd "$(dirname "$0")"
mkdir -p {logs}
array=$(sbatch --parsable grade.sbatch)
sbatch --dependency=afterany:"${{array%%;*}}" merge.sbatch
"#,
        logs = qp(&logs),
    );
    vec![
        ("grade.sbatch", grade),
        ("merge.sbatch", merge),
        ("submit.sh", submit),
    ]
}

/// Writes the scripts into `OUT/slurm/` and returns their paths.
pub fn write(spec: &SlurmSpec) -> Result<Vec<PathBuf>, GradeError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = spec.out.join("slurm");
    let mut written = Vec::new();
    for (name, text) in scripts(spec) {
        let path = dir.join(name);
        super::record::write_atomic(&path, text.as_bytes()).map_err(|source| GradeError::Io {
            path: path.clone(),
            source,
        })?;
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
            jobs: 2,
            shards: 4,
            students: 200,
        }
    }

    #[test]
    fn one_array_task_per_shard_then_a_merge() {
        let s = scripts(&spec());
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
        // 50 students x 2 targets x 4 min + 30 min.
        assert!(grade.contains("--time=07:10:00"), "{grade}");
        let merge = &s[1].1;
        assert!(merge.contains(
            "merge '/scratch/out/shards/1' '/scratch/out/shards/2' '/scratch/out/shards/3' '/scratch/out/shards/4' --out '/scratch/out'"
        ), "{merge}");
        assert!(s[2].1.contains("--dependency=afterany"));
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
