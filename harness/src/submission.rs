//! Submissions: one patch, a directory of `git format-patch` files, or a
//! `patch.tar.gz` holding `patch/`. Submissions are untrusted: archive entries
//! and patched paths that could escape the tree are refused.

use flate2::read::GzDecoder;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error("submission {0} does not exist")]
    Missing(PathBuf),
    #[error("submission {path} holds no patch (looked for *.patch, *.diff, patch/, patch.tar.gz)")]
    Empty { path: PathBuf },
    #[error("refused: {0}")]
    Unsafe(String),
    #[error("cannot read submission {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
}

/// One patch file of a submission, in application order.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchFile {
    pub name: String,
    pub text: String,
}

/// A loaded, validated submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Where it came from, for reports.
    pub origin: String,
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

    /// Every path the patches touch, after validating each one.
    pub fn touched_paths(&self) -> Result<Vec<String>, SubmissionError> {
        let mut all = Vec::new();
        for p in &self.patches {
            for path in patched_paths(&p.text) {
                check_relative(&path).map_err(|why| {
                    SubmissionError::Unsafe(format!("{}: path `{path}` {why}", p.name))
                })?;
                if !all.contains(&path) {
                    all.push(path);
                }
            }
            if let Some(line) = p.text.lines().find(|l| is_symlink_mode(l)) {
                return Err(SubmissionError::Unsafe(format!(
                    "{}: creates a symbolic link (`{line}`)",
                    p.name
                )));
            }
        }
        Ok(all)
    }
}

fn is_symlink_mode(line: &str) -> bool {
    ["new file mode 120000", "new mode 120000", "old mode 120000"]
        .iter()
        .any(|m| line.trim_end() == *m)
}

/// Loads a submission from a file or directory.
pub fn load(path: &Path) -> Result<Submission, SubmissionError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|_| SubmissionError::Missing(path.into()))?;
    let origin = path.display().to_string();
    let unreadable = |e: std::io::Error| SubmissionError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let patches = if meta.is_dir() {
        let tarball = path.join("patch.tar.gz");
        if path.join("patch").is_dir() {
            read_patch_dir(&path.join("patch"))?
        } else if tarball.is_file() {
            read_tarball(&tarball)?
        } else {
            read_patch_dir(path)?
        }
    } else if is_tarball(path) {
        read_tarball(path)?
    } else {
        let bytes = std::fs::read(path).map_err(unreadable)?;
        vec![PatchFile {
            name: file_name(path),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }]
    };
    if patches.is_empty() {
        return Err(SubmissionError::Empty { path: path.into() });
    }
    let sub = Submission { origin, patches };
    sub.touched_paths()?;
    Ok(sub)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "patch".into())
}

fn is_tarball(path: &Path) -> bool {
    let n = file_name(path);
    n.ends_with(".tar.gz") || n.ends_with(".tgz")
}

fn is_patch_name(name: &str) -> bool {
    name.ends_with(".patch") || name.ends_with(".diff")
}

/// `*.patch` / `*.diff` files of a directory, in name order (format-patch
/// numbers them). Symbolic links are refused.
fn read_patch_dir(dir: &Path) -> Result<Vec<PatchFile>, SubmissionError> {
    let unreadable = |e: std::io::Error| SubmissionError::Unreadable {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_patch_name(&name) {
            continue;
        }
        if entry.file_type().map_err(unreadable)?.is_symlink() {
            return Err(SubmissionError::Unsafe(format!(
                "{name} is a symbolic link"
            )));
        }
        names.push(name);
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).map_err(unreadable)?;
            Ok(PatchFile {
                name,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
        .collect()
}

/// Reads `patch/*.patch` (or top-level patches) from a gzipped tar without
/// writing anything to disk; any entry that is not a plain file or directory
/// with a safe relative path refuses the whole archive.
fn read_tarball(path: &Path) -> Result<Vec<PatchFile>, SubmissionError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| SubmissionError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let mut found = Vec::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let entry_path = entry.path().map_err(unreadable)?.into_owned();
        let shown = entry_path.display().to_string();
        check_relative(&shown)
            .map_err(|why| SubmissionError::Unsafe(format!("archive entry `{shown}` {why}")))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(SubmissionError::Unsafe(format!(
                "archive entry `{shown}` is a {kind:?}, not a regular file"
            )));
        }
        let parts: Vec<String> = entry_path
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let name = parts.last().cloned().unwrap_or_default();
        let in_patch_dir = parts.len() == 2 && parts[0] == "patch";
        if is_patch_name(&name) && (parts.len() == 1 || in_patch_dir) {
            let mut bytes = Vec::new();
            // A bound on what we read: a "patch" of hundreds of MiB is not a patch.
            entry
                .by_ref()
                .take(64 << 20)
                .read_to_end(&mut bytes)
                .map_err(unreadable)?;
            found.push((
                in_patch_dir,
                PatchFile {
                    name,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                },
            ));
        }
    }
    // patch/ wins over loose files when both are present.
    let want_dir = found.iter().any(|(d, _)| *d);
    let mut patches: Vec<PatchFile> = found
        .into_iter()
        .filter(|(d, _)| *d == want_dir)
        .map(|(_, p)| p)
        .collect();
    patches.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(patches)
}

/// Why a relative path is unsafe, if it is.
pub fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.starts_with('/') {
        return Err("is absolute");
    }
    if path.contains('\0') {
        return Err("contains a NUL byte");
    }
    if Path::new(path).components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err("climbs out of the tree with `..`");
    }
    Ok(())
}

/// Paths a unified or git diff touches, with the leading `a/`/`b/` stripped
/// (as `patch -p1` would).
pub fn patched_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |p: String| {
        if !p.is_empty() && p != "/dev/null" && !out.contains(&p) {
            out.push(p);
        }
    };
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("+++ ")
            .or_else(|| line.strip_prefix("--- "))
        {
            let raw = rest.split('\t').next().unwrap_or("").trim_end();
            if raw == "/dev/null" {
                continue;
            }
            push(strip_one(raw));
        } else if let Some(rest) = line.strip_prefix("diff --git ") {
            for part in rest.split_whitespace() {
                push(strip_one(part));
            }
        } else if let Some(p) = ["rename from ", "rename to ", "copy from ", "copy to "]
            .iter()
            .find_map(|k| line.strip_prefix(k))
        {
            push(p.trim_end().to_string());
        }
    }
    out
}

/// `patch -p1`: drop the first path component. A path with only one component
/// (or an absolute one) is kept whole, so that it is judged as it stands.
fn strip_one(raw: &str) -> String {
    if raw.starts_with('/') {
        return raw.to_string();
    }
    match raw.split_once('/') {
        Some((_, rest)) => rest.to_string(),
        None => raw.to_string(),
    }
}

/// Refuses a path whose directories pass through a symbolic link in the tree:
/// `patch` would write wherever the link points.
pub fn check_no_symlink_dirs(tree: &Path, path: &str) -> Result<(), SubmissionError> {
    let mut cur = tree.to_path_buf();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        cur.push(part);
        if std::fs::symlink_metadata(&cur)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err(SubmissionError::Unsafe(format!(
                "path `{path}` goes through the symbolic link `{}`",
                cur.strip_prefix(tree).unwrap_or(&cur).display()
            )));
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
        assert!(check_no_symlink_dirs(dir.path(), "real/f.c").is_ok());
        assert!(check_no_symlink_dirs(dir.path(), "link/f.c").is_err());
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
}
