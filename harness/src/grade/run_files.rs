//! Bookkeeping for resumable grading: where each run's files go, the key a
//! finished run is filed under, and placing a finished run atomically.
//!
//! A run (student or reference, on one target) is done when its directory
//! holds `done.json` with the key it would have now and no error. The key is
//! the sha256 of the submission's digest and of every input that can change a
//! result: the target's entry in targets.toml, the assignment's contract and
//! spec parameters (not its rubric: scores are recomputed at every report),
//! the kernel config fragments, the guest tests' sources, the kernel source
//! actually used and the reference solution.

use super::GradeError;
use crate::ioerr::io;
use crate::source::{hex, KernelSource};
use crate::target::{Catalog, Target};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Written last into a run's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The key the run is filed under (see [`run_key`]).
    pub key: String,
    /// The target it ran on.
    pub target: String,
    /// The submission's digest (or why it could not be read).
    #[serde(rename = "submission")]
    pub submission_digest: String,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
    /// An infrastructure error (not the student's doing): the run is redone
    /// by the next `--resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub const DONE: &str = "done.json";

pub fn student_dir(out: &Path, student_dir: &str) -> PathBuf {
    out.join("students").join(student_dir)
}

pub fn run_dir(out: &Path, student_dir_name: &str, target: &str) -> PathBuf {
    student_dir(out, student_dir_name).join(crate::paths::component(target))
}

/// Where the reference solution's run on `target` goes (its result.json,
/// serial.log), beside the students'.
pub fn reference_run_dir(out: &Path, target: &str) -> PathBuf {
    out.join("reference").join(crate::paths::component(target))
}

/// What identifies a submission for caching: the digest of its patches, or,
/// when it cannot be loaded, the digest of why (a fixed submission changes it).
pub fn submission_digest(path: &Path) -> String {
    match crate::submission::load(path) {
        Ok(sub) => sub.digest(),
        Err(e) => format!("unreadable-{}", hex(&Sha256::digest(e.to_string()))),
    }
}

pub fn run_key(inputs: &str, submission_digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(inputs.as_bytes());
    h.update([0]);
    h.update(submission_digest.as_bytes());
    hex(&h.finalize())
}

fn hash_file(h: &mut Sha256, root: &Path, path: &Path) -> Result<(), GradeError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    h.update(
        path.strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .as_bytes(),
    );
    h.update([0]);
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(&bytes);
    Ok(())
}

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The key of everything but the submission, for one target.
pub fn inputs_key(
    catalog: &Catalog,
    target: &Target,
    src: &KernelSource,
    reference_digest: &str,
) -> Result<String, GradeError> {
    let root = &catalog.root;
    let mut h = Sha256::new();
    h.update(b"kgrade-inputs-v1\0");
    h.update(target.name.as_bytes());
    h.update([0]);
    let a = &target.assignment;
    let contract = serde_json::json!({
        "syscalls": a.syscalls,
        "fragment": a.fragment,
        "case_timeout_ms": a.case_timeout_ms,
        "params": a.params,
    });
    h.update(contract.to_string().as_bytes());
    h.update([0]);
    // The target's own series and arch entries: an edit to another target
    // leaves this one's results standing.
    let targets_toml = root.join("configs/targets.toml");
    let text = std::fs::read_to_string(&targets_toml).map_err(io(&targets_toml))?;
    let table: toml::Value = toml::from_str(&text)
        .map_err(|e| GradeError::Class(format!("{} is not valid: {e}", targets_toml.display())))?;
    for (section, name) in [("series", &target.series_name), ("arch", &target.arch_name)] {
        let entry = table.get(section).and_then(|s| s.get(name.as_str()));
        h.update(serde_json::to_string(&entry).unwrap_or_default().as_bytes());
        h.update([0]);
    }
    for fragment in target.fragments() {
        hash_file(&mut h, root, &catalog.fragment_path(&fragment))?;
    }
    let guest = root.join("guest-tests");
    for f in files_under(&guest.join("src"))
        .into_iter()
        .chain(files_under(&guest.join("protocol/src")))
        .chain([guest.join("Cargo.toml"), guest.join("protocol/Cargo.toml")])
    {
        hash_file(&mut h, root, &f)?;
    }
    h.update(src.version.as_bytes());
    h.update([0]);
    h.update(src.origin.as_bytes());
    h.update([0]);
    h.update(reference_digest.as_bytes());
    Ok(hex(&h.finalize()))
}

/// Whether `dir` holds a finished run filed under `key`.
pub fn is_done(dir: &Path, key: &str) -> bool {
    read_done(dir).is_some_and(|d| d.key == key && d.error.is_none())
        && crate::report::RunResult::read(dir).is_ok()
}

pub fn read_done(dir: &Path) -> Option<Done> {
    let text = std::fs::read_to_string(dir.join(DONE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `dir` with `.suffix` added to its last component (target names hold
/// dots, so `with_extension` would cut them).
pub fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

/// Writes `done` into `staging`, then puts `staging` where `dir` was: a
/// reader sees the old run or the new one, never half of one.
pub fn place(staging: &Path, dir: &Path, done: &Done) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(done).map_err(std::io::Error::other)?;
    std::fs::write(staging.join(DONE), text + "\n")?;
    if dir.exists() {
        // Renamed aside first: a crash here leaves the old run, or none.
        let old = sibling(dir, "old");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old)?;
        std::fs::rename(staging, dir)?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    } else {
        std::fs::rename(staging, dir)
    }
}

/// Writes a file through a fresh temporary file in the same directory,
/// renamed over `path` (tempfile's persist): a reader sees the old file or
/// the new one, and two writers never share a temporary name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    // Readable like any file written with the usual umask (tempfile makes 0600).
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunResult;
    use crate::verdict::Verdict;

    fn result() -> RunResult {
        RunResult {
            target: "t".into(),
            verdict: Verdict::Pass,
            reason: String::new(),
            submission_origin: String::new(),
            kernel: None,
            syscalls: Default::default(),
            missing_syscalls: vec![],
            wrong_syscall_numbers: vec![],
            tests: vec![],
            timings_s: Default::default(),
            details: String::new(),
            accel: String::new(),
            boots: vec![],
        }
    }

    fn done(key: &str, error: Option<&str>) -> Done {
        Done {
            key: key.into(),
            target: "t".into(),
            submission_digest: "abc".into(),
            seconds: 1.0,
            error: error.map(String::from),
        }
    }

    #[test]
    fn a_run_is_done_only_under_its_key_and_without_error() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("tracker_6.1_x86_64");
        let staging = sibling(&dir, "partial");
        assert!(staging.ends_with("tracker_6.1_x86_64.partial"));
        std::fs::create_dir_all(&staging).unwrap();
        result().write(&staging).unwrap();
        place(&staging, &dir, &done("k1", None)).unwrap();
        assert!(!staging.exists());
        assert!(is_done(&dir, "k1"));
        assert!(
            !is_done(&dir, "k2"),
            "a changed submission or input is redone"
        );

        std::fs::create_dir_all(&staging).unwrap();
        result().write(&staging).unwrap();
        place(&staging, &dir, &done("k1", Some("qemu missing"))).unwrap();
        assert!(!is_done(&dir, "k1"), "an infrastructure error is retried");
        assert!(!sibling(&dir, "old").exists());

        std::fs::remove_file(dir.join("result.json")).unwrap();
        place_plain(&dir, &done("k1", None));
        assert!(!is_done(&dir, "k1"), "no result, not done");
    }

    fn place_plain(dir: &Path, d: &Done) {
        std::fs::write(dir.join(DONE), serde_json::to_string(d).unwrap()).unwrap();
    }

    #[test]
    fn keys_depend_on_both_parts() {
        let a = run_key("inputs", "sub1");
        assert_eq!(a, run_key("inputs", "sub1"));
        assert_ne!(a, run_key("inputs", "sub2"));
        assert_ne!(a, run_key("inputs2", "sub1"));
    }

    #[test]
    fn submission_digests_follow_the_patches() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.patch");
        std::fs::write(&p, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
        let f1 = submission_digest(&p);
        std::fs::write(&p, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+c\n").unwrap();
        let f2 = submission_digest(&p);
        assert_ne!(f1, f2);
        let missing = submission_digest(&d.path().join("nope"));
        assert!(missing.starts_with("unreadable-"));
    }

    #[test]
    fn inputs_key_changes_with_params_but_not_the_rubric() {
        let root = crate::paths::project_root();
        let catalog = Catalog::load(&root).unwrap();
        let target = catalog.target("tracker/6.1/x86_64").unwrap().clone();
        let src = KernelSource {
            tree: "/nonexistent".into(),
            version: "6.1.176".into(),
            substitute: true,
            origin: "Debian".into(),
            tarball_sha256: None,
        };
        let k = inputs_key(&catalog, &target, &src, "ref").unwrap();
        let mut t2 = target.clone();
        t2.assignment.rubric.default = 7.0;
        assert_eq!(k, inputs_key(&catalog, &t2, &src, "ref").unwrap());
        t2.assignment
            .params
            .insert("heap_unit".into(), serde_json::json!("MiB"));
        assert_ne!(k, inputs_key(&catalog, &t2, &src, "ref").unwrap());
        assert_ne!(k, inputs_key(&catalog, &target, &src, "ref2").unwrap());
        let other = catalog.target("tracker/6.1/arm64").unwrap();
        assert_ne!(k, inputs_key(&catalog, other, &src, "ref").unwrap());
    }

    #[test]
    fn atomic_writes_replace_whole_files_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/report.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
