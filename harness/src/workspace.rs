//! A run's own copy of the pristine tree with the submission applied.
//!
//! The copy is a real one (reflinked where the filesystem can), made and
//! patched inside the sandbox: a hard-link farm would let a build write
//! through a link into the pristine tree every later run copies. Inside the
//! sandbox every workspace sits at the same paths (`/kgrade/src`,
//! `/kgrade/build`), so compiler command lines, and with them ccache's keys,
//! are the same for every submission.

use crate::ioerr::{io, IoError};
use crate::sandbox::{self, Ended, Limits, Mount, Sandbox, SandboxError, Step};
use crate::submission::{self, PatchFile, Submission, SubmissionError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held for a whole run: two runs of the same submission (or a mutant over
/// the reference) must not interleave.
pub type WorkspaceLock = crate::paths::FileLock;

const OVERLAY_MARK: &str = "overlay.active";
/// Present while the build dir holds a finished build of exactly the
/// applied patches (no overlay since): then it may seed other workspaces.
const SEED_MARK: &str = "seed.ok";
/// Present while every object in the build dir went into the shared
/// compiler cache as it was made (`kbuild::CompilerCache::Fill`), from the
/// first one on: a later build may then find any of them there.
const CACHED_MARK: &str = "objects.cached";
/// Beside the build dir (the build cannot write it): the fragments the
/// build dir's .config was made from (`kbuild::configure`).
pub const CONFIG_STAMP: &str = "fragments.stamp";
/// Where the trees are seen inside the sandbox.
pub const SRC: &str = "/kgrade/src";
pub const BUILD: &str = "/kgrade/build";
const PRISTINE: &str = "/kgrade/pristine";
const INPUT: &str = "/kgrade/in";
/// Copying a kernel tree takes seconds; patching one, less.
const COPY_LIMIT: Duration = Duration::from_secs(600);
const PATCH_LIMIT: Duration = Duration::from_secs(120);
/// Rejected hunks shown to the student: enough to see what failed.
const REJECTS_CAP: u64 = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{patch} does not apply:\n{output}")]
    DoesNotApply {
        patch: String,
        output: String,
        rejects: String,
    },
    #[error("{patch}: `patch` did not finish: {why}")]
    PatchLimit { patch: String, why: String },
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("copying the kernel tree failed: {0}")]
    Copy(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Takes a workspace's trees away but keeps its lock file, so a run waiting
/// on the lock finds an empty directory and prepares it afresh. For runs
/// whose tree nobody builds again (a class's submissions: about 1 GB each,
/// and ccache makes a rerun cheap).
pub fn discard(dir: &Path) {
    // The stamp first: a half-removed tree must never look reusable.
    let _ = std::fs::remove_file(dir.join("applied.sha256"));
    for tree in ["src", "build", "tmp", "in"] {
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
    /// Scratch space the build sees as /tmp (on disk, so it counts against
    /// the disk cap).
    pub tmp: PathBuf,
    /// Patches in, rejected hunks out.
    input: PathBuf,
    /// How this workspace's steps run.
    pub sandbox: Sandbox,
}

impl Workspace {
    /// Makes (or reuses, when the same patches were already applied) the
    /// workspace `dir` from `pristine` plus `patches`.
    pub fn prepare(
        dir: &Path,
        pristine: &Path,
        submission: &Submission,
        sandbox: &Sandbox,
    ) -> Result<Workspace, WorkspaceError> {
        let ws = Workspace {
            dir: dir.into(),
            src: dir.join("src"),
            build: dir.join("build"),
            tmp: dir.join("tmp"),
            input: dir.join("in"),
            sandbox: sandbox.clone(),
        };
        let stamp = dir.join("applied.sha256");
        let digest = submission.digest();
        // An overlay left on by an interrupted run makes the tree unknown.
        let reusable = !dir.join(OVERLAY_MARK).exists()
            && std::fs::read_to_string(&stamp)
                .map(|s| s.trim() == digest)
                .unwrap_or(false);
        if !reusable {
            let _ = std::fs::remove_file(&stamp);
            let _ = std::fs::remove_file(dir.join(SEED_MARK));
            if ws.src.exists() {
                std::fs::remove_dir_all(&ws.src).map_err(io(&ws.src))?;
            }
            ws.own_dirs()?;
            ws.copy_pristine(pristine)?;
            let _ = std::fs::remove_file(dir.join(OVERLAY_MARK));
            for patch in &submission.patches {
                ws.patch(patch, false, pristine)?;
            }
            std::fs::write(&stamp, &digest).map_err(io(&stamp))?;
        } else {
            ws.own_dirs()?;
        }
        Ok(ws)
    }

    /// The directories the sandboxed steps write, owned by their user.
    fn own_dirs(&self) -> Result<(), WorkspaceError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        // Not the source tree: as root its files are links to the pristine
        // tree and stay root's; `copy_pristine` makes it.
        for d in [&self.build, &self.tmp, &self.input] {
            self.sandbox.own(d)?;
        }
        Ok(())
    }

    /// The source tree as a step sees it; read-only unless `writable`.
    pub fn src_mount(&self, writable: bool) -> Mount {
        Mount {
            host: self.src.clone(),
            inside: SRC.into(),
            writable,
        }
    }

    pub fn build_mount(&self) -> Mount {
        Mount::rw(&self.build, BUILD)
    }

    pub fn tmp_mount(&self) -> Mount {
        Mount::rw(&self.tmp, "/tmp")
    }

    /// As root, a hard-link farm: the pristine files are root's and the steps
    /// run as the real `nobody`, who can neither write nor chmod them, and
    /// patch replaces the files it changes (new inodes in directories handed
    /// to nobody). Otherwise the step's user would own the pristine files
    /// through any link, so the copy is a real one (reflinked where the
    /// filesystem can): measured here, 7 s against 44-93 s for 6.1's 1.5 GB.
    fn copy_pristine(&self, pristine: &Path) -> Result<(), WorkspaceError> {
        if self.sandbox != (Sandbox::Bwrap { as_root: true }) {
            self.sandbox.own(&self.src)?;
            return self.copy_tree(pristine, self.src_mount(true));
        }
        let out = std::process::Command::new("cp")
            .arg("-al")
            .arg(pristine)
            .arg(&self.src)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(io(&self.src))?;
        if !out.status.success() {
            return Err(WorkspaceError::Copy(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
        Ok(sandbox::own_dirs_only(&self.src).map_err(io(&self.src))?)
    }

    /// Says that the build dir now holds a finished build of the applied
    /// patches alone; called after a trusted build without an overlay.
    pub fn mark_seed(&self) {
        let _ = std::fs::write(self.dir.join(SEED_MARK), "");
    }

    /// Whether every object in the build dir is also in the compiler cache.
    pub fn objects_cached(&self) -> bool {
        self.dir.join(CACHED_MARK).exists()
    }

    /// Records whether every object in the build dir is also in the
    /// compiler cache (after a build, by how it used the cache).
    pub fn set_objects_cached(&self, cached: bool) -> Result<(), WorkspaceError> {
        let mark = self.dir.join(CACHED_MARK);
        if cached {
            std::fs::write(&mark, "").map_err(io(&mark))?;
        } else if let Err(e) = std::fs::remove_file(&mark) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io(&mark)(e).into());
            }
        }
        Ok(())
    }

    /// Whether the build dir holds nothing configured yet.
    pub fn build_is_empty(&self) -> bool {
        !self.build.join(".config").exists()
    }

    /// Empties the build dir, so the next build starts from nothing.
    pub fn reset_build(&self) -> Result<(), WorkspaceError> {
        for mark in [SEED_MARK, CACHED_MARK, CONFIG_STAMP] {
            let _ = std::fs::remove_file(self.dir.join(mark));
        }
        if self.build.exists() {
            std::fs::remove_dir_all(&self.build).map_err(io(&self.build))?;
        }
        self.sandbox.own(&self.build)?;
        Ok(())
    }

    /// Starts this workspace's build dir from `seed`'s finished build (the
    /// reference's, same kernel and config) instead of from nothing: make
    /// then rebuilds only what the patches change. Of the files either side
    /// patched (`touched`), one whose bytes equal the seed's copy takes the
    /// seed's time (the seed's objects, built from those bytes, stay good);
    /// every other one gets a fresh time, so no object built from the seed's
    /// version of it survives. kbuild's own command-line and CONFIG tracking
    /// does the rest. With `cached_only`, only a seed whose objects are all
    /// in the compiler cache will do. Returns whether it seeded.
    pub fn seed_build(
        &self,
        seed: &Path,
        touched: &[String],
        cached_only: bool,
    ) -> Result<bool, WorkspaceError> {
        if !self.build_is_empty() {
            return Ok(false);
        }
        if !seed.join(SEED_MARK).exists() || (cached_only && !seed.join(CACHED_MARK).exists()) {
            return Ok(false);
        }
        // Not waited for: a seed in use (its own build, or a run seeding
        // from this workspace) is skipped, so two runs never wait on each
        // other's workspace.
        let Some(_seed_lock) = WorkspaceLock::try_acquire(seed).map_err(io(seed))? else {
            return Ok(false);
        };
        if !seed.join(SEED_MARK).exists() || seed.join(OVERLAY_MARK).exists() {
            return Ok(false);
        }
        self.copy_tree(&seed.join("build"), self.build_mount())?;
        self.set_objects_cached(seed.join(CACHED_MARK).exists())?;
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        };
        let mut configure_again = false;
        for rel in touched {
            let same = unchanged_time(&seed.join("src"), rel, &self.src);
            configure_again |= same.is_none() && crate::kconfig::read_by_configure(rel);
            let path = self.src.join(rel);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            use std::os::unix::ffi::OsStrExt;
            let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
                continue;
            };
            let time = same.unwrap_or(now);
            let times = [time, time];
            // SAFETY: a NUL-terminated path and two timespecs we own.
            let rc = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if rc != 0 {
                return Err(io(&path)(std::io::Error::last_os_error()).into());
            }
        }
        // Nothing `configure` reads differs from the seed's tree: the seed's
        // .config (copied above) is what configuring would make again, so
        // its stamp says so (`kbuild::configure` then skips).
        if !configure_again {
            let ours = self.dir.join(CONFIG_STAMP);
            match std::fs::copy(seed.join(CONFIG_STAMP), &ours) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(&ours)(e).into())
                }
                _ => {}
            }
        }
        Ok(true)
    }

    /// Copies a tree into `to` inside the sandbox, keeping modes and times.
    fn copy_tree(&self, from: &Path, to: Mount) -> Result<(), WorkspaceError> {
        let from = Mount::ro(from, PRISTINE);
        let mut source = self.sandbox.path(&from).into_os_string();
        source.push("/.");
        let step = Step {
            program: "cp",
            args: vec![
                "-R".into(),
                "--preserve=mode,timestamps".into(),
                "--reflink=auto".into(),
                source,
                self.sandbox.path(&to).into_os_string(),
            ],
            cwd: self.sandbox.path(&to),
            mounts: vec![from, to],
            env: base_env(),
            limits: Limits::short(COPY_LIMIT),
        };
        let done = self.sandbox.run(&step)?;
        if !done.ended.success() {
            return Err(WorkspaceError::Copy(format!(
                "{:?}: {}",
                done.ended,
                done.output.lines().take(5).collect::<Vec<_>>().join("\n")
            )));
        }
        Ok(())
    }

    /// Applies a patch over the prepared tree, to be taken off again with
    /// [`Workspace::remove_overlay`]: mutants go over the reference this way
    /// so each rebuild only recompiles what the mutant changed.
    pub fn add_overlay(&self, patch: &PatchFile, pristine: &Path) -> Result<(), WorkspaceError> {
        let _ = std::fs::remove_file(self.dir.join(SEED_MARK));
        let mark = self.dir.join(OVERLAY_MARK);
        std::fs::write(&mark, &patch.name).map_err(io(&mark))?;
        self.patch(patch, false, pristine)
    }

    pub fn remove_overlay(&self, patch: &PatchFile, pristine: &Path) -> Result<(), WorkspaceError> {
        self.patch(patch, true, pristine)?;
        let _ = std::fs::remove_file(self.dir.join(OVERLAY_MARK));
        Ok(())
    }

    /// Applies one patch in the sandbox; on failure keeps the rejected hunks
    /// for the report.
    fn patch(
        &self,
        patch: &PatchFile,
        reverse: bool,
        pristine: &Path,
    ) -> Result<(), WorkspaceError> {
        let touched = submission::patched_paths(&patch.text);
        for path in &touched {
            submission::check_no_symlinks(&self.src, path)?;
        }
        let input = self.input.join("current.patch");
        let rejects = self.input.join("rejects.rej");
        let _ = std::fs::remove_file(&rejects);
        std::fs::write(&input, &patch.text).map_err(io(&input))?;
        let src = self.src_mount(true);
        let inp = Mount::rw(&self.input, INPUT);
        let (src_at, in_at) = (self.sandbox.path(&src), self.sandbox.path(&inp));
        let mut args: Vec<std::ffi::OsString> = vec![
            "-p1".into(),
            "--batch".into(),
            "--forward".into(),
            "--no-backup-if-mismatch".into(),
            "--reject-file".into(),
            in_at.join("rejects.rej").into(),
            "-d".into(),
            src_at.clone().into(),
            "-i".into(),
            in_at.join("current.patch").into(),
        ];
        if reverse {
            args.push("-R".into());
        }
        let step = Step {
            program: "patch",
            args,
            cwd: src_at,
            mounts: vec![src, inp],
            env: base_env(),
            limits: Limits::short(PATCH_LIMIT),
        };
        let done = self.sandbox.run(&step)?;
        match done.ended {
            Ended::Exited(s) if s.success() => {}
            Ended::Exited(_) => {
                return Err(WorkspaceError::DoesNotApply {
                    patch: patch.name.clone(),
                    output: done.output,
                    rejects: sandbox::read_untrusted(&self.input, "rejects.rej", REJECTS_CAP)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                })
            }
            other => {
                return Err(WorkspaceError::PatchLimit {
                    patch: patch.name.clone(),
                    why: format!("{other:?}"),
                })
            }
        }
        // Whatever spelling slipped past the submission's checks, a patch
        // that left a symbolic link or special file where the pristine tree
        // has none is refused.
        for path in &touched {
            let here = std::fs::symlink_metadata(self.src.join(path));
            let odd = here
                .as_ref()
                .map(|m| !m.is_file() && !m.is_dir())
                .unwrap_or(false);
            let was_odd = std::fs::symlink_metadata(pristine.join(path))
                .map(|m| !m.is_file() && !m.is_dir())
                .unwrap_or(false);
            if odd && !was_odd {
                return Err(SubmissionError::Unsafe(format!(
                    "{}: `{path}` became a symbolic link or special file",
                    patch.name
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// What every sandboxed step gets of an environment.
pub fn base_env() -> Vec<(String, std::ffi::OsString)> {
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME".into(), "/tmp".into()),
        ("LC_ALL".into(), "C".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ]
}

/// The seed's modification time of `rel` when the seed's copy and ours
/// hold the same bytes, or a syscall table the same entries (both regular
/// files reached through no link, at most [`SAME_BYTES_CAP`] long); `None`
/// when they differ or cannot be compared.
fn unchanged_time(seed_src: &Path, rel: &str, ours: &Path) -> Option<libc::timespec> {
    use std::os::unix::fs::MetadataExt;
    let theirs = crate::sandbox::read_untrusted(seed_src, rel, SAME_BYTES_CAP).ok()?;
    let mine = crate::sandbox::read_untrusted(ours, rel, SAME_BYTES_CAP).ok()?;
    let same_table = || {
        rel.ends_with(".tbl")
            && table_entries(&theirs).is_some_and(|t| table_entries(&mine) == Some(t))
    };
    if theirs != mine && !same_table() {
        return None;
    }
    let meta = std::fs::symlink_metadata(seed_src.join(rel)).ok()?;
    Some(libc::timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec(),
    })
}

/// A syscall table (`*.tbl`) as the scripts that make headers of it read
/// it: they keep the lines that start with a number and `read` each into
/// fields split at blanks, so a student's table that differs from the
/// reference's in blanks alone makes the same headers, and keeping the
/// seed's time spares the ~460 objects that include them. Comment and
/// blank lines are left out; every other line is kept, with whether it
/// starts with a blank (the scripts skip those). `None` where `read` would
/// see something else than the fields: a backslash, a carriage return.
fn table_entries(text: &[u8]) -> Option<Vec<(bool, Vec<&str>)>> {
    let text = std::str::from_utf8(text).ok()?;
    if text.contains(['\\', '\r']) {
        return None;
    }
    let blank = |c: char| c == ' ' || c == '\t';
    Some(
        text.lines()
            .filter(|l| !l.trim_matches(blank).is_empty() && !l.starts_with('#'))
            .map(|l| {
                let fields = l.split(blank).filter(|f| !f.is_empty()).collect();
                (l.starts_with(blank), fields)
            })
            .collect(),
    )
}

/// Larger files than this are taken as changed (a fresh time: rebuilt).
const SAME_BYTES_CAP: u64 = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syscall_table_that_differs_in_blanks_alone_is_unchanged() {
        let seed = tempfile::tempdir().unwrap();
        let ours = tempfile::tempdir().unwrap();
        let reference = "# comment\n450\tcommon\tx\tsys_x\n451\tcommon\tregister\tsys_register\n";
        std::fs::write(seed.path().join("a.tbl"), reference).unwrap();
        let same = |text: &str| {
            std::fs::write(ours.path().join("a.tbl"), text).unwrap();
            unchanged_time(seed.path(), "a.tbl", ours.path()).is_some()
        };
        assert!(same(reference));
        assert!(same(
            "450 common x   sys_x\n\n# mine\n451  common\tregister sys_register \n"
        ));
        // What the generators would read otherwise.
        assert!(!same(
            "450\tcommon\tx\tsys_x\n452\tcommon\tregister\tsys_register\n"
        ));
        assert!(!same(
            "450\tcommon\tx\tsys_x\n451\tcommon\tregister\tsys_register\t# c\n"
        ));
        assert!(!same(
            "450\tcommon\tx\tsys_x\n 451\tcommon\tregister\tsys_register\n"
        ));
        assert!(!same(
            "450\tcommon\tx\tsys_x\r\n451\tcommon\tregister\tsys_register\n"
        ));
        assert!(!same(
            "450\tcommon\tx\tsys_x\n451\tcommon\tregister\\ \tsys_register\n"
        ));
        // Only tables: a C file's blanks are the compiler's business.
        std::fs::write(seed.path().join("a.c"), "int a;\n").unwrap();
        std::fs::write(ours.path().join("a.c"), "int  a;\n").unwrap();
        assert!(unchanged_time(seed.path(), "a.c", ours.path()).is_none());
    }

    #[test]
    fn only_a_file_equal_to_the_seeds_keeps_the_seeds_time() {
        use std::os::unix::fs::MetadataExt;
        let seed = tempfile::tempdir().unwrap();
        let ours = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(seed.path().join("kernel")).unwrap();
        std::fs::create_dir_all(ours.path().join("kernel")).unwrap();
        for (name, theirs, mine) in [
            ("same.c", "int a;\n", "int a;\n"),
            ("diff.c", "int a;\n", "int b;\n"),
        ] {
            std::fs::write(seed.path().join("kernel").join(name), theirs).unwrap();
            std::fs::write(ours.path().join("kernel").join(name), mine).unwrap();
        }
        std::os::unix::fs::symlink(
            seed.path().join("kernel/same.c"),
            ours.path().join("kernel/link.c"),
        )
        .unwrap();
        std::fs::write(seed.path().join("kernel/link.c"), "int a;\n").unwrap();
        let seed_meta = std::fs::metadata(seed.path().join("kernel/same.c")).unwrap();
        let t = unchanged_time(seed.path(), "kernel/same.c", ours.path()).unwrap();
        assert_eq!(
            (t.tv_sec, t.tv_nsec),
            (seed_meta.mtime(), seed_meta.mtime_nsec())
        );
        assert!(unchanged_time(seed.path(), "kernel/diff.c", ours.path()).is_none());
        // A link is never compared, whatever it points at.
        assert!(unchanged_time(seed.path(), "kernel/link.c", ours.path()).is_none());
        // A file only one side has is changed.
        assert!(unchanged_time(seed.path(), "kernel/gone.c", ours.path()).is_none());
    }

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
        let ws = Workspace::prepare(
            &d.path().join("ws"),
            &d.path().join("pristine"),
            &sub(GOOD),
            &Sandbox::Off,
        )
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
    fn an_in_place_write_to_the_workspace_never_reaches_the_pristine_tree() {
        use std::io::Write;
        let d = tree();
        // kernel/b.c is not patched: a hard link would share its inode.
        std::fs::write(d.path().join("pristine/kernel/b.c"), "b\n").unwrap();
        let again = Workspace::prepare(
            &d.path().join("ws"),
            &d.path().join("pristine"),
            &sub(GOOD),
            &Sandbox::Off,
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(again.src.join("kernel/b.c"))
            .unwrap();
        f.write_all(b"EVIL\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("pristine/kernel/b.c")).unwrap(),
            "b\n"
        );
    }

    /// A workspace of the GOOD submission in `d/name`, unsandboxed.
    fn good_workspace(d: &tempfile::TempDir, name: &str) -> Workspace {
        let pristine = d.path().join("pristine");
        Workspace::prepare(&d.path().join(name), &pristine, &sub(GOOD), &Sandbox::Off).unwrap()
    }

    #[test]
    fn a_build_is_seeded_only_from_a_plain_finished_build_and_touched_files_are_fresh() {
        let d = tree();
        let pristine = d.path().join("pristine");
        let seed = good_workspace(&d, "ref");
        std::fs::write(seed.build.join(".config"), "CONFIG_X=y\n").unwrap();
        std::fs::write(seed.build.join("a.o"), "obj").unwrap();
        let student = good_workspace(&d, "st");
        // No finished build yet: nothing to seed from.
        assert!(!student.seed_build(&seed.dir, &[], false).unwrap());
        seed.mark_seed();
        let overlay = PatchFile {
            name: "m.patch".into(),
            text: "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n"
                .into(),
        };
        seed.add_overlay(&overlay, &pristine).unwrap();
        assert!(
            !student.seed_build(&seed.dir, &[], false).unwrap(),
            "a mutant's build"
        );
        seed.remove_overlay(&overlay, &pristine).unwrap();
        seed.mark_seed();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let f = std::fs::File::options()
            .write(true)
            .open(student.src.join("kernel/a.c"))
            .unwrap();
        f.set_modified(old).unwrap();
        assert!(student
            .seed_build(&seed.dir, &["kernel/a.c".to_string()], false)
            .unwrap());
        assert_eq!(
            std::fs::read_to_string(student.build.join("a.o")).unwrap(),
            "obj"
        );
        let mtime = std::fs::metadata(student.src.join("kernel/a.c"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(mtime > old + std::time::Duration::from_secs(1000));
        // Seeded once: a build dir with a config is left alone.
        assert!(!student.seed_build(&seed.dir, &[], false).unwrap());
    }

    #[test]
    fn a_build_that_must_fill_the_cache_is_seeded_only_from_cached_objects() {
        let d = tree();
        let seed = good_workspace(&d, "ref");
        std::fs::write(seed.build.join(".config"), "CONFIG_X=y\n").unwrap();
        seed.mark_seed();
        let student = good_workspace(&d, "st");
        assert!(!student.seed_build(&seed.dir, &[], true).unwrap());
        seed.set_objects_cached(true).unwrap();
        assert!(student.seed_build(&seed.dir, &[], true).unwrap());
        assert!(student.objects_cached(), "the seed's objects are cached");
        // A seed built without the cache hands on no such claim.
        let other = good_workspace(&d, "other");
        seed.set_objects_cached(false).unwrap();
        other.set_objects_cached(true).unwrap();
        assert!(other.seed_build(&seed.dir, &[], false).unwrap());
        assert!(!other.objects_cached());
        // Reset: the build dir is empty and nothing says otherwise.
        assert!(!other.build_is_empty());
        other.reset_build().unwrap();
        assert!(other.build_is_empty());
        assert!(other.build.is_dir());
        assert!(!other.dir.join(SEED_MARK).exists());
        assert!(!other.dir.join(CONFIG_STAMP).exists());
    }

    #[test]
    fn a_seeded_build_keeps_the_seeds_config_unless_a_file_configure_reads_differs() {
        let d = tree();
        let seed = good_workspace(&d, "ref");
        std::fs::write(seed.build.join(".config"), "CONFIG_X=y\n").unwrap();
        std::fs::write(seed.dir.join(CONFIG_STAMP), "CONFIG_X=y\n").unwrap();
        std::fs::write(seed.src.join("kernel/Kconfig"), "config X\n").unwrap();
        seed.mark_seed();
        let student = |name: &str, kconfig: &str, touched: &[&str]| {
            let ws = good_workspace(&d, name);
            std::fs::write(ws.src.join("kernel/Kconfig"), kconfig).unwrap();
            let touched: Vec<String> = touched.iter().map(|t| t.to_string()).collect();
            assert!(ws.seed_build(&seed.dir, &touched, false).unwrap());
            std::fs::read_to_string(ws.dir.join(CONFIG_STAMP)).ok()
        };
        let kept = Some("CONFIG_X=y\n".to_string());
        assert_eq!(student("c-only", "config X\n", &["kernel/a.c"]), kept);
        assert_eq!(
            student(
                "same-kconfig",
                "config X\n",
                &["kernel/a.c", "kernel/Kconfig"]
            ),
            kept
        );
        assert_eq!(
            student(
                "own-kconfig",
                "config Y\n",
                &["kernel/a.c", "kernel/Kconfig"]
            ),
            None,
            "a Kconfig file that differs: configured again"
        );
    }

    /// As root the tree is a hard-link farm: a step that tries to write
    /// through a link (chmod, then append) must not reach the pristine file.
    #[test]
    fn a_sandboxed_step_cannot_write_through_the_link_farm() {
        let Ok(sb @ Sandbox::Bwrap { as_root: true }) = Sandbox::probe() else {
            eprintln!("not root with a sandbox; skipped");
            return;
        };
        let d = tree();
        std::fs::write(d.path().join("pristine/kernel/b.c"), "b\n").unwrap();
        let ws = Workspace::prepare(
            &d.path().join("ws"),
            &d.path().join("pristine"),
            &sub(GOOD),
            &sb,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.src.join("kernel/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
        let step = Step {
            program: "sh",
            args: vec![
                "-c".into(),
                "chmod u+w kernel/b.c; echo EVIL >> kernel/b.c; rm -f kernel/b.c; echo new > kernel/b.c"
                    .into(),
            ],
            cwd: SRC.into(),
            mounts: vec![ws.src_mount(true)],
            env: base_env(),
            limits: Limits::short(Duration::from_secs(20)),
        };
        sb.run(&step).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("pristine/kernel/b.c")).unwrap(),
            "b\n"
        );
    }

    #[test]
    fn a_patch_that_does_not_apply_reports_its_hunks() {
        let d = tree();
        let err = Workspace::prepare(
            &d.path().join("ws"),
            &d.path().join("pristine"),
            &sub(BAD),
            &Sandbox::Off,
        )
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
        let ws = Workspace::prepare(&ws_dir, &pristine, &sub(GOOD), &Sandbox::Off).unwrap();
        std::fs::create_dir_all(&ws.build).unwrap();
        discard(&ws_dir);
        assert!(!ws.src.exists() && !ws.build.exists());
        assert!(!ws_dir.join("applied.sha256").exists());
        assert!(ws_dir.join("lock").exists());
        // The next run prepares it afresh.
        let again = Workspace::prepare(&ws_dir, &pristine, &sub(GOOD), &Sandbox::Off).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.src.join("kernel/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
    }

    #[test]
    fn overlay_applies_and_reverts() {
        let d = tree();
        let ws = Workspace::prepare(
            &d.path().join("ws"),
            &d.path().join("pristine"),
            &sub(GOOD),
            &Sandbox::Off,
        )
        .unwrap();
        let overlay = PatchFile {
            name: "m.patch".into(),
            text: "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n"
                .into(),
        };
        ws.add_overlay(&overlay, &d.path().join("pristine"))
            .unwrap();
        assert!(std::fs::read_to_string(ws.src.join("kernel/a.c"))
            .unwrap()
            .contains("\n2\n"));
        ws.remove_overlay(&overlay, &d.path().join("pristine"))
            .unwrap();
        assert!(std::fs::read_to_string(ws.src.join("kernel/a.c"))
            .unwrap()
            .contains("TWO"));
    }
}
