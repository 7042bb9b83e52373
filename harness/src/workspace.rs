//! A run's own copy of the pristine tree with the submission applied.
//!
//! The copy is a hard-link farm (`cp -al`): cheap, and GNU patch replaces the
//! files it changes instead of writing through the link, so the pristine tree
//! in the cache is never touched.

use crate::process::{self, ToolError};
use crate::submission::{self, PatchFile, Submission, SubmissionError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Held for a whole run: two runs of the same submission (or a mutant over
/// the reference) must not interleave.
pub type WorkspaceLock = crate::paths::FileLock;

const OVERLAY_MARK: &str = "overlay.active";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{patch} does not apply:\n{output}")]
    DoesNotApply {
        patch: String,
        output: String,
        rejects: String,
    },
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Takes a workspace's trees away but keeps its lock file, so a run waiting
/// on the lock finds an empty directory and prepares it afresh. For runs
/// whose tree nobody builds again (a class's submissions: about 100 MB each,
/// and ccache makes a rerun cheap).
pub fn discard(dir: &Path) {
    // The stamp first: a half-removed tree must never look reusable.
    let _ = std::fs::remove_file(dir.join("applied.sha256"));
    for tree in ["src", "build"] {
        let _ = std::fs::remove_dir_all(dir.join(tree));
    }
    let _ = std::fs::remove_file(dir.join(OVERLAY_MARK));
}

pub struct Workspace {
    /// Holds `src`, `build` and the bookkeeping files.
    pub dir: PathBuf,
    /// The patched source tree.
    pub src: PathBuf,
    /// The out-of-tree build directory (`make O=`).
    pub build: PathBuf,
}

impl Workspace {
    /// Makes (or reuses, when the same patches were already applied) the
    /// workspace `dir` from `pristine` plus `patches`.
    pub fn prepare(
        dir: &Path,
        pristine: &Path,
        submission: &Submission,
    ) -> Result<Workspace, WorkspaceError> {
        let src = dir.join("src");
        let build = dir.join("build");
        let stamp = dir.join("applied.sha256");
        let digest = submission.digest();
        // An overlay left on by an interrupted run makes the tree unknown.
        let reusable = !dir.join(OVERLAY_MARK).exists()
            && std::fs::read_to_string(&stamp)
                .map(|s| s.trim() == digest)
                .unwrap_or(false);
        if !reusable {
            let _ = std::fs::remove_file(&stamp);
            if src.exists() {
                std::fs::remove_dir_all(&src).map_err(|source| WorkspaceError::Io {
                    path: src.clone(),
                    source,
                })?;
            }
            std::fs::create_dir_all(dir).map_err(|source| WorkspaceError::Io {
                path: dir.into(),
                source,
            })?;
            process::run_ok(Command::new("cp").arg("-al").arg(pristine).arg(&src))?;
            let _ = std::fs::remove_file(dir.join(OVERLAY_MARK));
            let ws = Workspace {
                dir: dir.into(),
                src: src.clone(),
                build: build.clone(),
            };
            for patch in &submission.patches {
                ws.patch(patch, false)?;
            }
            std::fs::write(&stamp, &digest).map_err(|source| WorkspaceError::Io {
                path: stamp.clone(),
                source,
            })?;
        }
        Ok(Workspace {
            dir: dir.into(),
            src,
            build,
        })
    }

    /// Applies a patch over the prepared tree, to be taken off again with
    /// [`Workspace::remove_overlay`]: mutants go over the reference this way
    /// so each rebuild only recompiles what the mutant changed.
    pub fn add_overlay(&self, patch: &PatchFile) -> Result<(), WorkspaceError> {
        let mark = self.dir.join(OVERLAY_MARK);
        std::fs::write(&mark, &patch.name)
            .map_err(|source| WorkspaceError::Io { path: mark, source })?;
        self.patch(patch, false)
    }

    pub fn remove_overlay(&self, patch: &PatchFile) -> Result<(), WorkspaceError> {
        self.patch(patch, true)?;
        let _ = std::fs::remove_file(self.dir.join(OVERLAY_MARK));
        Ok(())
    }

    /// Applies one patch; on failure keeps the rejected hunks for the report.
    fn patch(&self, patch: &PatchFile, reverse: bool) -> Result<(), WorkspaceError> {
        let scratch = &self.dir;
        for path in submission::patched_paths(&patch.text) {
            submission::check_no_symlinks(&self.src, &path)?;
        }
        let input = scratch.join("current.patch");
        let rejects = scratch.join("rejects.rej");
        let _ = std::fs::remove_file(&rejects);
        std::fs::write(&input, &patch.text).map_err(|source| WorkspaceError::Io {
            path: input.clone(),
            source,
        })?;
        let mut cmd = Command::new("patch");
        cmd.args(["-p1", "--batch", "--forward", "--no-backup-if-mismatch"])
            .arg("--reject-file")
            .arg(&rejects)
            .arg("-d")
            .arg(&self.src)
            .arg("-i")
            .arg(&input);
        if reverse {
            cmd.arg("-R");
        }
        let out = process::run(&mut cmd)?;
        if out.status.success() {
            return Ok(());
        }
        Err(WorkspaceError::DoesNotApply {
            patch: patch.name.clone(),
            output: process::combined(&out),
            rejects: std::fs::read_to_string(&rejects).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("pristine/kernel")).unwrap();
        std::fs::write(d.path().join("pristine/kernel/a.c"), "one\ntwo\nthree\n").unwrap();
        d
    }

    fn sub(text: &str) -> Submission {
        Submission {
            origin: "test".into(),
            patches: vec![PatchFile {
                name: "0001-x.patch".into(),
                text: text.into(),
            }],
        }
    }

    const GOOD: &str =
        "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";
    const BAD: &str =
        "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,3 +1,3 @@\n one\n-deux\n+TWO\n three\n";

    #[test]
    fn applies_without_touching_the_pristine_tree() {
        let d = tree();
        let ws = Workspace::prepare(&d.path().join("ws"), &d.path().join("pristine"), &sub(GOOD))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.src.join("kernel/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("pristine/kernel/a.c")).unwrap(),
            "one\ntwo\nthree\n"
        );
    }

    #[test]
    fn a_patch_that_does_not_apply_reports_its_hunks() {
        let d = tree();
        let err = Workspace::prepare(&d.path().join("ws"), &d.path().join("pristine"), &sub(BAD))
            .err()
            .unwrap();
        match err {
            WorkspaceError::DoesNotApply {
                patch,
                output,
                rejects,
            } => {
                assert_eq!(patch, "0001-x.patch");
                assert!(output.contains("FAILED"), "{output}");
                assert!(rejects.contains("-deux"), "{rejects}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn discard_drops_the_trees_but_not_the_lock() {
        let d = tree();
        let (ws_dir, pristine) = (d.path().join("ws"), d.path().join("pristine"));
        let _lock = WorkspaceLock::acquire(&ws_dir).unwrap();
        let ws = Workspace::prepare(&ws_dir, &pristine, &sub(GOOD)).unwrap();
        std::fs::create_dir_all(&ws.build).unwrap();
        discard(&ws_dir);
        assert!(!ws.src.exists() && !ws.build.exists());
        assert!(!ws_dir.join("applied.sha256").exists());
        assert!(ws_dir.join("lock").exists());
        // The next run prepares it afresh.
        let again = Workspace::prepare(&ws_dir, &pristine, &sub(GOOD)).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.src.join("kernel/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
    }

    #[test]
    fn overlay_applies_and_reverts() {
        let d = tree();
        let ws = Workspace::prepare(&d.path().join("ws"), &d.path().join("pristine"), &sub(GOOD))
            .unwrap();
        let overlay = PatchFile {
            name: "m.patch".into(),
            text: "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n"
                .into(),
        };
        ws.add_overlay(&overlay).unwrap();
        assert!(std::fs::read_to_string(ws.src.join("kernel/a.c"))
            .unwrap()
            .contains("\n2\n"));
        ws.remove_overlay(&overlay).unwrap();
        assert!(std::fs::read_to_string(ws.src.join("kernel/a.c"))
            .unwrap()
            .contains("TWO"));
    }
}
