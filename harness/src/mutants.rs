//! Mutants: deliberately wrong solutions, each a patch over the reference,
//! listed in `mutants/mutants.toml` with the mistake and the tests that must
//! catch it.

use crate::submission::PatchFile;
use serde::Deserialize;
use std::path::Path;

/// A deliberate mistake in the reference solution, which the tests must catch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// Its name: its patch is `mutants/<name>.patch`.
    pub name: String,
    /// What it gets wrong.
    pub mistake: String,
    /// The tests expected to fail on it (`suite.case`).
    pub caught_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct MutantsFile {
    mutant: Vec<Mutant>,
}

/// Why the mutants could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MutantError {
    /// `mutants.toml` could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// `mutants.toml` is not valid, or names an unknown test.
    #[error("{0} is not valid: {1}")]
    Invalid(String, String),
}

/// The mutants of a reference directory (none when it has no `mutants/`).
pub fn load(reference_patches: &Path) -> Result<Vec<(Mutant, PatchFile)>, MutantError> {
    let dir = reference_patches.join("mutants");
    let list = dir.join("mutants.toml");
    if !list.is_file() {
        return Ok(vec![]);
    }
    let shown = list.display().to_string();
    let text = std::fs::read_to_string(&list).map_err(|e| MutantError::Read(shown.clone(), e))?;
    let file: MutantsFile =
        toml::from_str(&text).map_err(|e| MutantError::Invalid(shown.clone(), e.to_string()))?;
    let known: Vec<String> = kgrade_protocol::CATALOGUE
        .iter()
        .map(|c| c.full_name())
        .collect();
    let mut out = Vec::new();
    for m in file.mutant {
        if let Some(bad) = m.caught_by.iter().find(|n| !known.contains(n)) {
            return Err(MutantError::Invalid(
                shown,
                format!("mutant {} names unknown test `{bad}`", m.name),
            ));
        }
        let path = dir.join(format!("{}.patch", m.name));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| MutantError::Read(path.display().to_string(), e))?;
        out.push((
            m.clone(),
            PatchFile {
                name: format!("{}.patch", m.name),
                text,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `mutants/` directory in the project loads: its list parses, names
    /// only catalogue tests, and has a patch for each mutant.
    #[test]
    fn every_mutant_list_in_the_project_loads() {
        let patches = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("kernel-patches");
        let mut lists = 0;
        for assignment in std::fs::read_dir(&patches).unwrap() {
            let assignment = assignment.unwrap().path();
            if !assignment.is_dir() {
                continue;
            }
            for series in std::fs::read_dir(&assignment).unwrap() {
                let series = series.unwrap().path();
                if !series.join("mutants").is_dir() {
                    continue;
                }
                let mutants = load(&series).unwrap();
                assert!(mutants.len() >= 3, "{}", series.display());
                for (m, patch) in &mutants {
                    assert!(!m.caught_by.is_empty(), "{}", m.name);
                    assert!(patch.text.starts_with("--- a/"), "{}", m.name);
                }
                lists += 1;
            }
        }
        assert!(lists >= 6, "found {lists} mutant lists");
    }
}
