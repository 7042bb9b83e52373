//! Submissions: one patch, a directory of `git format-patch` files, or a
//! `patch.tar.gz` holding `patch/`. Submissions are untrusted:
//!
//! - every name a patch could make GNU patch write to must stay in the tree,
//!   however it is spelled (quoted git names decoded), and no patch may make
//!   a symbolic link or another special file, nor carry a binary patch
//!   ([`diff`] reads patches the way patch does);
//! - nothing in a submission is a symbolic link: not the submission itself
//!   (the last component of the path given; the directories above it are the
//!   grader's), not any file or directory inside a submission folder, not an
//!   archive entry; `grade` hands each student's entry straight to [`load`],
//!   so a student cannot point kgrade at the reference or a host file;
//! - sizes are bounded before anything is read whole ([`Limits`]);
//! - refusal reasons are one bounded line without control characters.

mod archive;
pub mod diff;

use crate::text::one_line;
pub use diff::{check_relative, patched_paths};
use std::path::{Path, PathBuf};

/// Every message names paths a student chose: shown on one bounded line.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// The path given does not exist.
    #[error("submission {} does not exist", shown(.0))]
    Missing(PathBuf),
    /// It holds no patch.
    #[error("submission {} holds no patch (looked for *.patch, *.diff, patch/, patch.tar.gz)", shown(.path))]
    Empty {
        /// The submission.
        path: PathBuf,
    },
    /// Refused: a path or construct kgrade will not apply, or over a limit.
    #[error("refused: {0}")]
    Unsafe(String),
    /// It could not be read.
    #[error("cannot read submission {}: {}", shown(.path), one_line(.message, 200))]
    Unreadable {
        /// The submission.
        path: PathBuf,
        /// Why not.
        message: String,
    },
}

fn shown(path: &Path) -> String {
    one_line(&path.to_string_lossy(), 200)
}

impl SubmissionError {
    /// An `Unsafe` with its reason bounded and printable.
    fn refused(why: String) -> SubmissionError {
        SubmissionError::Unsafe(one_line(&why, 300))
    }
}

/// Bounds on what a submission may hold; over one, it is refused.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Files and directories in a submission folder or archive.
    pub entries: usize,
    /// One patch file.
    pub patch_bytes: u64,
    /// All patches together; for an archive, everything it expands to.
    pub total_bytes: u64,
}

impl Default for Limits {
    /// A course's patch is kilobytes; these leave room for any honest one.
    fn default() -> Limits {
        Limits {
            entries: 10_000,
            patch_bytes: 16 << 20,
            total_bytes: 64 << 20,
        }
    }
}

/// One patch file of a submission, in application order.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchFile {
    /// The file name, for reports.
    pub name: String,
    /// The patch text.
    pub text: String,
}

/// A loaded, validated submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Where it came from, for reports.
    pub origin: String,
    /// The patches, in the order they apply.
    pub patches: Vec<PatchFile>,
}

impl Submission {
    /// A stable key for caches: changes whenever any patch changes.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for p in &self.patches {
            h.update(p.name.as_bytes());
            h.update([0]);
            h.update(p.text.as_bytes());
            h.update([0]);
        }
        crate::source::hex(&h.finalize())
    }

    /// Every path the patches touch, after validating each patch.
    pub fn touched_paths(&self) -> Result<Vec<String>, SubmissionError> {
        let mut all = Vec::new();
        for p in &self.patches {
            let paths = diff::check(&p.text).map_err(|why| {
                SubmissionError::refused(format!("{}: {why}", one_line(&p.name, 100)))
            })?;
            for path in paths {
                if !all.contains(&path) {
                    all.push(path);
                }
            }
        }
        Ok(all)
    }
}

/// Loads a submission from a file or directory with the default [`Limits`].
pub fn load(path: &Path) -> Result<Submission, SubmissionError> {
    load_with(path, &Limits::default())
}

pub(crate) fn load_with(path: &Path, limits: &Limits) -> Result<Submission, SubmissionError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|_| SubmissionError::Missing(path.into()))?;
    let origin = path.display().to_string();
    if meta.file_type().is_symlink() {
        return Err(SubmissionError::refused(format!(
            "{} is a symbolic link (give the file or folder itself)",
            file_name(path)
        )));
    }
    let patches = if meta.is_dir() {
        refuse_links_inside(path, limits)?;
        let tarball = path.join("patch.tar.gz");
        if path.join("patch").is_dir() {
            read_patch_dir(&path.join("patch"), limits)?
        } else if tarball.is_file() {
            read_tarball(&tarball, limits)?
        } else {
            read_patch_dir(path, limits)?
        }
    } else if !meta.is_file() {
        return Err(SubmissionError::refused(format!(
            "{} is not a regular file or folder",
            file_name(path)
        )));
    } else if is_tarball(path) {
        read_tarball(path, limits)?
    } else {
        vec![read_patch(path, limits)?]
    };
    if patches.is_empty() {
        return Err(SubmissionError::Empty { path: path.into() });
    }
    let total: u64 = patches.iter().map(|p| p.text.len() as u64).sum();
    if total > limits.total_bytes {
        return Err(SubmissionError::refused(format!(
            "its patches hold {total} bytes, over the {}-byte limit",
            limits.total_bytes
        )));
    }
    let sub = Submission { origin, patches };
    sub.touched_paths()?;
    Ok(sub)
}

fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "patch".into());
    one_line(&name, 100)
}

fn is_tarball(path: &Path) -> bool {
    let n = file_name(path);
    n.ends_with(".tar.gz") || n.ends_with(".tgz")
}

fn is_patch_name(name: &str) -> bool {
    name.ends_with(".patch") || name.ends_with(".diff")
}

fn unreadable(path: &Path) -> impl Fn(std::io::Error) -> SubmissionError + '_ {
    move |e| SubmissionError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Refuses a submission folder with a symbolic link anywhere inside it, or
/// with more entries than the limit (the walk itself is bounded by it).
fn refuse_links_inside(dir: &Path, limits: &Limits) -> Result<(), SubmissionError> {
    let mut pending = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(unreadable(&d))? {
            let entry = entry.map_err(unreadable(&d))?;
            seen += 1;
            if seen > limits.entries {
                return Err(SubmissionError::refused(format!(
                    "the folder holds more than {} entries",
                    limits.entries
                )));
            }
            let kind = entry.file_type().map_err(unreadable(&d))?;
            let shown = || {
                let p = entry.path();
                one_line(&p.strip_prefix(dir).unwrap_or(&p).to_string_lossy(), 120)
            };
            if kind.is_symlink() {
                return Err(SubmissionError::refused(format!(
                    "{} is a symbolic link",
                    shown()
                )));
            }
            if kind.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

/// One patch file, refused over the size limit before it is read.
fn read_patch(path: &Path, limits: &Limits) -> Result<PatchFile, SubmissionError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW: a link swapped in after the check is not followed either.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(unreadable(path))?;
    let size = file.metadata().map_err(unreadable(path))?.len();
    if size > limits.patch_bytes {
        return Err(SubmissionError::refused(format!(
            "{} is {size} bytes, over the {}-byte limit for a patch",
            file_name(path),
            limits.patch_bytes
        )));
    }
    let mut bytes = Vec::new();
    file.take(limits.patch_bytes)
        .read_to_end(&mut bytes)
        .map_err(unreadable(path))?;
    Ok(PatchFile {
        name: file_name(path),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `*.patch` / `*.diff` files of a directory, in name order (format-patch
/// numbers them).
fn read_patch_dir(dir: &Path, limits: &Limits) -> Result<Vec<PatchFile>, SubmissionError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable(dir))? {
        let entry = entry.map_err(unreadable(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_patch_name(&name) {
            continue;
        }
        let kind = entry.file_type().map_err(unreadable(dir))?;
        if !kind.is_file() {
            return Err(SubmissionError::refused(format!(
                "{} is not a regular file",
                one_line(&name, 120)
            )));
        }
        paths.push((name, entry.path()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|(_, path)| read_patch(&path, limits))
        .collect()
}

fn read_tarball(path: &Path, limits: &Limits) -> Result<Vec<PatchFile>, SubmissionError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(unreadable(path))?;
    archive::read(std::io::BufReader::new(file), &file_name(path), limits)
}

/// Refuses a path that passes through a symbolic link in the tree, or is
/// one: patch would write wherever the link points, or retarget the link.
pub fn check_no_symlinks(tree: &Path, path: &str) -> Result<(), SubmissionError> {
    let mut cur = tree.to_path_buf();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        cur.push(part);
        if std::fs::symlink_metadata(&cur)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            let link = one_line(
                &cur.strip_prefix(tree).unwrap_or(&cur).to_string_lossy(),
                120,
            );
            return Err(SubmissionError::refused(if i + 1 == parts.len() {
                format!("path `{link}` is a symbolic link in the tree")
            } else {
                format!(
                    "path `{}` goes through the symbolic link `{link}`",
                    one_line(path, 120)
                )
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SIMPLE: &str = "--- a/kernel/sys.c\n+++ b/kernel/sys.c\n@@ -1 +1 @@\n-x\n+y\n";

    #[test]
    fn paths_of_a_unified_diff() {
        assert_eq!(patched_paths(SIMPLE), vec!["kernel/sys.c"]);
        let git = "diff --git a/x/y.c b/x/y.c\nnew file mode 100644\n--- /dev/null\n+++ b/x/y.c\n";
        assert_eq!(patched_paths(git), vec!["x/y.c"]);
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in [
            "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n",
            "--- /etc/passwd\n+++ /etc/passwd\n",
            "diff --git a/x b/x\nrename from x\nrename to ../y\n",
        ] {
            let sub = Submission {
                origin: "t".into(),
                patches: vec![PatchFile {
                    name: "p".into(),
                    text: bad.into(),
                }],
            };
            let err = sub.touched_paths().unwrap_err().to_string();
            assert!(err.starts_with("refused:"), "{err}");
        }
    }

    #[test]
    fn a_new_symlink_is_refused() {
        let text = "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc\n";
        let sub = Submission {
            origin: "t".into(),
            patches: vec![PatchFile {
                name: "p".into(),
                text: text.into(),
            }],
        };
        assert!(sub
            .touched_paths()
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
    }

    #[test]
    fn symlinked_directories_in_the_tree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../x", dir.path().join("real/l.c")).unwrap();
        assert!(check_no_symlinks(dir.path(), "real/f.c").is_ok());
        assert!(check_no_symlinks(dir.path(), "link/f.c").is_err());
        // The file itself: patch would retarget the link (`index .. 120000`)
        // or copy it elsewhere, where its relative target escapes.
        let why = check_no_symlinks(dir.path(), "real/l.c")
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("`real/l.c` is a symbolic link in the tree"),
            "{why}"
        );
    }

    fn tarball(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new()
            .suffix(".tar.gz")
            .tempfile()
            .unwrap();
        let gz = flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name to model a hostile archive.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
        f
    }

    #[test]
    fn patch_tarball_in_order() {
        let f = tarball(&[
            ("patch/0002-b.patch", SIMPLE.as_bytes()),
            ("patch/0001-a.patch", SIMPLE.as_bytes()),
            ("patch/notes.txt", b"hello"),
        ]);
        let sub = load(f.path()).unwrap();
        let names: Vec<&str> = sub.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch"]);
    }

    #[test]
    fn tarball_with_escaping_entry_is_refused() {
        let f = tarball(&[("../evil.patch", SIMPLE.as_bytes())]);
        let err = load(f.path()).unwrap_err().to_string();
        assert!(err.contains("refused") && err.contains(".."), "{err}");
    }

    #[test]
    fn tarball_with_symlink_entry_is_refused() {
        let f = tempfile::Builder::new()
            .suffix(".tar.gz")
            .tempfile()
            .unwrap();
        let gz = flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "patch/0001-x.patch", "/etc/passwd")
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let err = load(f.path()).unwrap_err().to_string();
        assert!(err.contains("refused") && err.contains("Symlink"), "{err}");
    }

    #[test]
    fn directory_of_patches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0002-b.patch"), SIMPLE).unwrap();
        std::fs::write(dir.path().join("0001-a.patch"), SIMPLE).unwrap();
        std::fs::write(dir.path().join("README"), "x").unwrap();
        let sub = load(dir.path()).unwrap();
        assert_eq!(sub.patches.len(), 2);
        assert_eq!(sub.patches[0].name, "0001-a.patch");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(empty.path()),
            Err(SubmissionError::Empty { .. })
        ));
    }

    fn refused(r: Result<Submission, SubmissionError>) -> String {
        match r {
            Err(SubmissionError::Unsafe(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn symbolic_links_anywhere_in_a_submission_are_refused() {
        let reference = tempfile::tempdir().unwrap();
        std::fs::write(reference.path().join("0001-ref.patch"), SIMPLE).unwrap();
        // patch/ pointing at the reference solution.
        let a = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(reference.path(), a.path().join("patch")).unwrap();
        assert!(refused(load(a.path())).contains("patch is a symbolic link"));
        // A link deep inside, even to an unused file.
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(b.path().join("patch/notes")).unwrap();
        std::fs::write(b.path().join("patch/0001-a.patch"), SIMPLE).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", b.path().join("patch/notes/x")).unwrap();
        assert!(refused(load(b.path())).contains("notes/x is a symbolic link"));
        // The entry itself: `grade` passes each student's entry as it is.
        let c = tempfile::tempdir().unwrap();
        let link = c.path().join("mallory.patch");
        std::os::unix::fs::symlink(reference.path().join("0001-ref.patch"), &link).unwrap();
        assert!(refused(load(&link)).contains("mallory.patch is a symbolic link"));
        // A FIFO would block the reader forever.
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("x.patch");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(refused(load(&fifo)).contains("not a regular file"));
        assert!(refused(load(d.path())).contains("not a regular file"));
    }

    #[test]
    fn oversized_submissions_are_refused_before_they_are_read() {
        let small = Limits {
            entries: 5,
            patch_bytes: 100,
            total_bytes: 1000,
        };
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.patch");
        std::fs::write(&big, "x".repeat(101)).unwrap();
        assert!(refused(load_with(&big, &small)).contains("over the 100-byte limit"));
        let many = tempfile::tempdir().unwrap();
        for i in 0..6 {
            std::fs::write(many.path().join(format!("{i}.txt")), "").unwrap();
        }
        assert!(refused(load_with(many.path(), &small)).contains("more than 5 entries"));
    }

    #[test]
    fn archives_are_bounded_in_entries_sizes_and_expansion() {
        let small = Limits {
            entries: 3,
            patch_bytes: 100,
            total_bytes: 4096,
        };
        let many = tarball(&[
            ("a.txt", b"x"),
            ("b.txt", b"x"),
            ("c.txt", b"x"),
            ("d.txt", b"x"),
        ]);
        assert!(refused(load_with(many.path(), &small)).contains("more than 3 entries"));
        let big = [b'y'; 101];
        let one_big = tarball(&[("patch/0001-x.patch", &big)]);
        assert!(refused(load_with(one_big.path(), &small)).contains("over the 100-byte limit"));
        // A gzip bomb: 64 MiB of zeros in a few KiB, stopped at 4 KiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb = tarball(&[("notes.txt", &zeros)]);
        assert!(std::fs::metadata(bomb.path()).unwrap().len() < 1 << 20);
        let started = std::time::Instant::now();
        assert!(refused(load_with(bomb.path(), &small)).contains("expands to more than 4096"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn archive_links_and_devices_are_refused() {
        for kind in [
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
        ] {
            let f = tempfile::Builder::new()
                .suffix(".tar.gz")
                .tempfile()
                .unwrap();
            let gz =
                flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_path("patch/0001-x.patch").unwrap();
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
            b.into_inner().unwrap().finish().unwrap();
            assert!(
                refused(load(f.path())).contains("not a regular file"),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn messages_about_a_submission_are_one_printable_line() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x/".repeat(150);
        let weird = dir.path().join(format!("{long}a\u{1b}[2J\nb"));
        std::fs::create_dir_all(&weird).unwrap();
        for e in [
            load(&weird).unwrap_err(),
            load(&weird.join("missing")).unwrap_err(),
        ] {
            let text = e.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(text.chars().count() < 320, "{}", text.len());
        }
    }

    /// Renaming or copying onto, or from, a link already in the tree: patch
    /// would replace it, or copy a relative link to where it points outside.
    #[test]
    fn copies_and_renames_touching_a_tree_symlink_are_refused() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("dir")).unwrap();
        std::fs::write(tree.path().join("reg.c"), "x").unwrap();
        std::os::unix::fs::symlink("../reg.c", tree.path().join("dir/link")).unwrap();
        for text in [
            "diff --git a/reg.c b/dir/link\nsimilarity index 100%\ncopy from reg.c\ncopy to dir/link\n",
            "diff --git a/dir/link b/x\nsimilarity index 100%\nrename from dir/link\nrename to x\n",
            "diff --git a/dir/link b/top\ncopy from dir/link\ncopy to top\n",
        ] {
            let refused = patched_paths(text)
                .iter()
                .any(|p| check_no_symlinks(tree.path(), p).is_err());
            assert!(refused, "{text}");
        }
    }

    /// The stricter reading must not refuse an honest patch: every reference
    /// solution and mutant in the repository passes it.
    #[test]
    fn every_patch_in_the_repository_is_accepted() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-patches");
        let mut pending = vec![root];
        let mut seen = 0;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if is_patch_name(&path.to_string_lossy()) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if let Err(why) = diff::check(&text) {
                        panic!("{}: {why}", path.display());
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen >= 10, "{seen}");
    }

    /// The name a reader uses is the PAX or GNU long name, not the header's.
    #[test]
    fn archive_long_and_pax_names_are_checked() {
        fn entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8]) {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::new(kind));
            h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_ustar_mut().unwrap().magic = *b"ustar\0";
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        for (kind, data) in [
            (b'x', "30 path=../../0001-evil.patch\n"),
            (b'L', "../../0001-evil.patch\0"),
        ] {
            let mut tar = Vec::new();
            entry(&mut tar, "ext", kind, data.as_bytes());
            entry(&mut tar, "patch/0001-ok.patch", b'0', SIMPLE.as_bytes());
            tar.resize(tar.len() + 1024, 0);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            let f = tempfile::Builder::new()
                .suffix(".tar.gz")
                .tempfile()
                .unwrap();
            std::fs::write(f.path(), gz.finish().unwrap()).unwrap();
            let why = refused(load(f.path()));
            assert!(
                why.contains("../../0001-evil.patch"),
                "{}: {why}",
                kind as char
            );
        }
    }

    /// The real GNU patch decides what is dangerous: every spelling that makes
    /// it create a symbolic link (or anything but files and directories) in a
    /// scratch tree must be one kgrade refuses. Skipped without `patch`.
    #[test]
    fn whatever_makes_gnu_patch_create_a_link_is_refused() {
        if !crate::process::have("patch") {
            return;
        }
        let tail =
            "--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+../../outside\n\\ No newline at end of file\n";
        let mut spellings: Vec<String> = [
            "new file mode 120000",
            "new file mode  120000",
            "  new file mode 120000",
            "\tnew file mode 120000",
            "XXnew file mode 120000",
            "new file mode\t120000",
            "new file mode 120000 ",
            "index 0000000..1111111 120000",
            "index 0000000..1111111  120000",
            "index 0000000..1111111\t120000",
            " index 0000000..1111111 120000",
            "new file mode 0120000",
            "new file mode 20000",
            "new file mode 020000",
            "new file mode 010000",
            "new file mode 140000",
        ]
        .iter()
        .map(|h| format!("diff --git a/l b/l\n{h}\n{tail}"))
        .collect();
        spellings.push(format!(
            "diff --git a/l b/l\r\nnew file mode 120000\r\n{}",
            tail.replace('\n', "\r\n")
        ));
        let mut made_links = 0;
        for text in &spellings {
            let dir = tempfile::tempdir().unwrap();
            let tree = dir.path().join("tree");
            std::fs::create_dir(&tree).unwrap();
            std::fs::write(dir.path().join("p"), text).unwrap();
            let _ = std::process::Command::new("patch")
                .args(["-p1", "--batch", "--forward", "-s", "-i"])
                .arg(dir.path().join("p"))
                .current_dir(&tree)
                .output()
                .unwrap();
            let made = std::fs::symlink_metadata(tree.join("l")).is_ok_and(|m| !m.is_file());
            if made {
                made_links += 1;
                let sub = Submission {
                    origin: "t".into(),
                    patches: vec![PatchFile {
                        name: "p".into(),
                        text: text.clone(),
                    }],
                };
                assert!(
                    sub.touched_paths().is_err(),
                    "patch made a link from {text:?}"
                );
            }
        }
        // The spellings above include ones patch 2.7 obeys.
        assert!(made_links >= 5, "{made_links}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use std::io::Read;

        /// A gzipped tar built from raw headers, hostile names included.
        fn raw_tarball(entries: &[(String, u8, Vec<u8>)]) -> Vec<u8> {
            let mut tar = Vec::new();
            for (name, kind, data) in entries {
                let mut h = tar::Header::new_old();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::new(*kind));
                let raw = &mut h.as_old_mut().name;
                let n = name.len().min(raw.len());
                raw[..n].copy_from_slice(&name.as_bytes()[..n]);
                h.set_cksum();
                tar.extend_from_slice(h.as_bytes());
                tar.extend_from_slice(data);
                tar.resize(tar.len().div_ceil(512) * 512, 0);
            }
            tar.resize(tar.len() + 1024, 0);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar).unwrap();
            gz.finish().unwrap()
        }

        fn entry() -> impl Strategy<Value = (String, u8, Vec<u8>)> {
            let part =
                prop::sample::select(vec!["patch", "..", ".", "a.patch", "x.diff", "/", "b"]);
            (
                prop::collection::vec(part, 1..4).prop_map(|p| p.join("/")),
                prop::sample::select(vec![b'0', b'0', b'5', b'1', b'2', b'3', b'6', b'x']),
                prop::collection::vec(any::<u8>(), 0..64),
            )
        }

        fn limits() -> Limits {
            Limits {
                entries: 16,
                patch_bytes: 1 << 10,
                total_bytes: 64 << 10,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn reader_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
                let _ = archive::read(&bytes[..], "t", &limits());
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, &bytes).unwrap();
                let _ = archive::read(&gz.finish().unwrap()[..], "t", &limits());
            }

            #[test]
            fn reader_never_panics_on_a_damaged_archive(
                entries in prop::collection::vec(entry(), 0..4),
                flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            ) {
                let mut tar = Vec::new();
                flate2::read::GzDecoder::new(&raw_tarball(&entries)[..])
                    .read_to_end(&mut tar)
                    .unwrap();
                for (at, byte) in flips {
                    let i = at.index(tar.len());
                    tar[i] = byte;
                }
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, &tar).unwrap();
                let _ = archive::read(&gz.finish().unwrap()[..], "t", &limits());
            }

            /// An archive is accepted only when every entry is a plain file or
            /// directory with a safe relative name.
            #[test]
            fn reader_never_accepts_an_escaping_or_special_entry(entries in prop::collection::vec(entry(), 1..5)) {
                let bad = entries.iter().any(|(name, kind, _)| {
                    check_relative(name.trim_end_matches('/')).is_err() || !matches!(kind, b'0' | b'5')
                });
                let result = archive::read(&raw_tarball(&entries)[..], "t", &limits());
                if bad {
                    prop_assert!(result.is_err(), "accepted {entries:?}");
                }
                if let Ok(patches) = result {
                    for p in patches {
                        prop_assert!(check_relative(&p.name).is_ok());
                    }
                }
            }
        }
    }
}
