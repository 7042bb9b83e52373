//! `kgrade merge`: shard outputs combined into the outputs of one run.
//!
//! Every input must have been graded with the same assignment, targets and
//! inputs (the keys in grade.json) from the same class, and together they
//! must hold every student exactly once. Each student's runs and the
//! reference's are copied as they are; the reports are then written exactly
//! as `kgrade grade` writes them, so gradebook.csv, summary.md and the HTML
//! index are byte-identical to an unsharded run's that got the same results.

use super::class_results::ClassResults;
use super::manifest::Manifest;
use super::run_files;
use super::{class_reports, select_targets, GradeError};
use crate::ioerr::io;
use crate::paths::FileLock;
use crate::target::Catalog;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<(), GradeError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&src))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}

/// Replaces `to` with a copy of `from`, through a staging directory.
fn replace_with_copy(from: &Path, to: &Path) -> Result<(), GradeError> {
    let staging = run_files::sibling(to, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    copy_tree(from, &staging)?;
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(io(to))?;
    }
    Ok(std::fs::rename(&staging, to).map_err(io(to))?)
}

/// Checks that the inputs are shards of one grading and returns, per
/// student `dir`, the input holding it.
fn plan(manifests: &[(PathBuf, Manifest)]) -> Result<BTreeMap<String, PathBuf>, GradeError> {
    let (first_path, first) = &manifests[0];
    let mismatch = |path: &Path, what: &str| {
        GradeError::Class(format!(
            "{} and {} were not graded alike: {what} differ{}",
            first_path.display(),
            path.display(),
            if what == "inputs" {
                " (configs, guest tests, kernel source or reference solution changed between them)"
            } else {
                ""
            }
        ))
    };
    for (path, m) in &manifests[1..] {
        if m.assignment != first.assignment {
            return Err(mismatch(path, "assignments"));
        }
        if m.targets != first.targets {
            return Err(mismatch(path, "targets"));
        }
        if m.inputs != first.inputs {
            return Err(mismatch(path, "inputs"));
        }
        if m.class != first.class {
            return Err(mismatch(path, "classes"));
        }
        if m.shard.map(|s| s.count) != first.shard.map(|s| s.count) {
            return Err(mismatch(path, "shard counts"));
        }
    }
    let mut holder: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, m) in manifests {
        for s in &m.students {
            if let Some(other) = holder.insert(s.clone(), path.clone()) {
                return Err(GradeError::Class(format!(
                    "student `{s}` is in both {} and {}",
                    other.display(),
                    path.display()
                )));
            }
        }
    }
    let missing: Vec<&str> = first
        .class
        .iter()
        .filter(|s| !holder.contains_key(&s.dir))
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        let mut shards = String::new();
        if let Some(count) = first.shard.map(|s| s.count) {
            let have: Vec<usize> = manifests
                .iter()
                .filter_map(|(_, m)| m.shard.map(|s| s.index))
                .collect();
            let absent: Vec<String> = (1..=count)
                .filter(|i| !have.contains(i))
                .map(|i| format!("{i}/{count}"))
                .collect();
            if !absent.is_empty() {
                shards = format!(" (shards missing: {})", absent.join(", "));
            }
        }
        return Err(GradeError::Class(format!(
            "{} of {} students are in no input{shards}: {}",
            missing.len(),
            first.class.len(),
            missing.join(", ")
        )));
    }
    Ok(holder)
}

/// Merges `inputs` into `out` and writes its reports.
pub fn merge(
    catalog: &Catalog,
    inputs: &[PathBuf],
    out: &Path,
) -> Result<ClassResults, GradeError> {
    if inputs.is_empty() {
        return Err(GradeError::Class("nothing to merge".into()));
    }
    let mut manifests = Vec::new();
    for p in inputs {
        manifests.push((p.clone(), Manifest::read(p)?));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let out_real = out.canonicalize().map_err(io(out))?;
    for p in inputs {
        if p.canonicalize().ok().as_deref() == Some(out_real.as_path()) {
            return Err(GradeError::Class(format!(
                "{} is both an input and the output",
                p.display()
            )));
        }
    }
    let holder = plan(&manifests)?;
    let _lock = FileLock::try_acquire(out)
        .map_err(io(out))?
        .ok_or_else(|| GradeError::Busy(out.to_path_buf()))?;
    let first = &manifests[0].1;
    let targets = select_targets(catalog, &first.assignment, &first.targets)?;
    let rubric = targets[0].assignment.rubric()?;
    for s in &first.class {
        let from = run_files::student_dir(&holder[&s.dir], &s.dir);
        let to = run_files::student_dir(out, &s.dir);
        if from.is_dir() {
            replace_with_copy(&from, &to)?;
        }
    }
    for t in &first.targets {
        let finished = manifests
            .iter()
            .map(|(p, _)| run_files::reference_run_dir(p, t))
            .find(|d| {
                run_files::read_done(d).is_some_and(|d| d.error.is_none())
                    && crate::report::RunResult::read(d).is_ok()
            });
        if let Some(from) = finished {
            replace_with_copy(&from, &run_files::reference_run_dir(out, t))?;
        }
    }
    let merged = Manifest {
        shard: None,
        students: first.class.iter().map(|s| s.dir.clone()).collect(),
        ..first.clone()
    };
    merged.write(out)?;
    class_reports::write_reports(out, &merged, &rubric)
}

#[cfg(test)]
mod tests {
    use super::super::class::{Shard, Student};
    use super::*;

    fn manifest(shard: Option<Shard>, students: &[&str]) -> Manifest {
        let class = ["ann", "bob", "cy"]
            .iter()
            .map(|n| Student {
                name: n.to_string(),
                dir: n.to_string(),
                path: PathBuf::new(),
            })
            .collect();
        Manifest {
            assignment: "tracker".into(),
            targets: vec!["tracker/6.1/x86_64".into()],
            inputs: [("tracker/6.1/x86_64".to_string(), "k".to_string())]
                .into_iter()
                .collect(),
            shard,
            class,
            students: students.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn shard(i: usize) -> Option<Shard> {
        Some(Shard { index: i, count: 2 })
    }

    #[test]
    fn shards_that_cover_the_class_merge() {
        let m = [
            ("a".into(), manifest(shard(1), &["ann", "cy"])),
            ("b".into(), manifest(shard(2), &["bob"])),
        ];
        let h = plan(&m).unwrap();
        assert_eq!(h["cy"], PathBuf::from("a"));
        assert_eq!(h["bob"], PathBuf::from("b"));
    }

    #[test]
    fn a_missing_shard_is_named() {
        let m = [("a".into(), manifest(shard(1), &["ann", "cy"]))];
        let e = plan(&m).unwrap_err().to_string();
        assert!(e.contains("bob") && e.contains("2/2"), "{e}");
    }

    #[test]
    fn mismatched_or_overlapping_inputs_are_refused() {
        let mut other = manifest(shard(2), &["bob"]);
        other
            .inputs
            .insert("tracker/6.1/x86_64".into(), "changed".into());
        let e = plan(&[
            ("a".into(), manifest(shard(1), &["ann", "cy"])),
            ("b".into(), other),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("inputs differ"), "{e}");
        let e = plan(&[
            ("a".into(), manifest(shard(1), &["ann", "cy"])),
            ("b".into(), manifest(shard(2), &["bob", "cy"])),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("`cy` is in both"), "{e}");
        let e = plan(&[
            ("a".into(), manifest(shard(1), &["ann", "cy"])),
            (
                "b".into(),
                manifest(Some(Shard { index: 2, count: 3 }), &["bob"]),
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("shard counts"), "{e}");
    }

    /// A grade.json edited to walk out of the output: every name that
    /// becomes a path is refused before anything is copied or written.
    #[test]
    fn manifest_names_that_would_escape_are_refused() {
        for bad in [
            "../../etc",
            "a/b",
            "..",
            ".hidden",
            "",
            "x\0y",
            "esc\u{1b}",
            "caf\u{e9}",
        ] {
            let mut m = manifest(None, &["ann", "bob", "cy"]);
            m.students[1] = bad.into();
            assert!(m.check_names().is_err(), "students: {bad:?}");
            let mut m = manifest(None, &["ann", "bob", "cy"]);
            m.class[0].dir = bad.into();
            assert!(m.check_names().is_err(), "class: {bad:?}");
            let dir = tempfile::tempdir().unwrap();
            m.write(dir.path()).unwrap();
            let e = Manifest::read(dir.path()).unwrap_err().to_string();
            assert!(e.contains("not a student folder name"), "{e}");
        }
        for bad in [
            "../x/y",
            "tracker/6.1",
            "tracker/../x86_64",
            "a/b/c/d",
            "t/6.1/.x",
        ] {
            let mut m = manifest(None, &["ann"]);
            m.targets = vec![bad.into()];
            assert!(m.check_names().is_err(), "target: {bad:?}");
        }
        assert!(manifest(None, &["ann", "bob", "cy"]).check_names().is_ok());
    }
}
