//! `grade.json`: what an output directory holds (assignment, targets, inputs,
//! shard and students), so reports can be rebuilt and shards merged safely.

use super::class::{Shard, Student};
use super::GradeError;
use crate::ioerr::{io, IoError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST: &str = "grade.json";

/// `grade.json`: what an output directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The assignment graded.
    pub assignment: String,
    /// Its targets, in order.
    pub targets: Vec<String>,
    /// Per target, the key of every input but the submission (run_files.rs).
    pub inputs: BTreeMap<String, String>,
    /// Which shard of the class this directory holds; none for a whole class.
    #[serde(default)]
    pub shard: Option<Shard>,
    /// The whole class, sorted, even in a shard: merge checks coverage with it.
    pub class: Vec<Student>,
    /// The students graded here (`dir` names), in class order.
    pub students: Vec<String>,
}

impl Manifest {
    /// Reads `out/grade.json`.
    pub fn read(out: &Path) -> Result<Manifest, GradeError> {
        let path = out.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            GradeError::Class(format!("{} is not a kgrade manifest: {e}", path.display()))
        })?;
        manifest
            .check_names()
            .map_err(|why| GradeError::Class(format!("{}: {why}", path.display())))?;
        Ok(manifest)
    }

    /// Every name that becomes a path (`students/<dir>/`, `report/<dir>.html`,
    /// `reference/<target>/`) must be one kgrade itself would have made: a
    /// manifest is read back from shard artifacts anyone may have edited.
    pub fn check_names(&self) -> Result<(), String> {
        let dirs = self
            .students
            .iter()
            .chain(self.class.iter().map(|s| &s.dir));
        for dir in dirs {
            if dir.is_empty() || *dir != crate::paths::component(dir) {
                return Err(format!(
                    "`{}` is not a student folder name kgrade makes (letters, digits, `-`, `_`, `.`, not first)",
                    crate::text::one_line(dir, 80)
                ));
            }
        }
        for target in &self.targets {
            let parts: Vec<&str> = target.split('/').collect();
            let plain = |p: &&str| !p.is_empty() && *p == crate::paths::component(p);
            if parts.len() != 3 || !parts.iter().all(plain) {
                return Err(format!(
                    "`{}` is not a target name (assignment/series/arch)",
                    crate::text::one_line(target, 80)
                ));
            }
        }
        Ok(())
    }

    /// Writes `out/grade.json`, replacing any older one whole.
    pub fn write(&self, out: &Path) -> Result<(), GradeError> {
        let path = out.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        super::run_files::write_atomic(&path, text.as_bytes())
            .map_err(|source| GradeError::Io(IoError { path, source }))
    }

    /// The graded students, with their names.
    pub fn graded(&self) -> Vec<&Student> {
        self.class
            .iter()
            .filter(|s| self.students.contains(&s.dir))
            .collect()
    }
}
