//! Pristine kernel sources: fetched or found once, extracted once into the
//! cache, never modified afterwards (each run works on its own copy).

use crate::ioerr::{io, IoError};
use crate::process::{self, ToolError};
use crate::target::Series;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why no kernel source is ready (never the submission's doing).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No source for the series could be found or fetched.
    #[error("no kernel source for series {series}: {tried}")]
    Unavailable {
        /// The series.
        series: String,
        /// Where it was looked for.
        tried: String,
    },
    /// A tarball whose sha256 is not the one expected.
    #[error("{path}: sha256 is {actual}, expected {expected}")]
    Checksum {
        /// The tarball.
        path: PathBuf,
        /// The sha256 the series names.
        expected: String,
        /// The tarball's own.
        actual: String,
    },
    /// A directory that is not a kernel tree.
    #[error("{path} is not a kernel tree (no Makefile with VERSION/PATCHLEVEL)")]
    NotATree {
        /// The directory.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A tool (tar, curl) failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// A pristine, extracted kernel tree and where it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelSource {
    /// The pristine tree, unpacked.
    pub tree: PathBuf,
    /// `VERSION.PATCHLEVEL.SUBLEVEL` read from the tree's Makefile.
    pub version: String,
    /// True when this is not the series' canonical kernel.org release.
    pub substitute: bool,
    /// A human description: "kernel.org 6.1.6", "Debian linux-source-6.1", a path.
    pub origin: String,
    /// sha256 of the tarball the tree was extracted from (None: a directory
    /// given with --kernel-src, which nothing can vouch for).
    pub tarball_sha256: Option<String>,
}

impl KernelSource {
    /// `major.minor` of the tree actually used.
    pub fn major_minor(&self) -> String {
        self.version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Finds the kernel for a series: an explicit `--kernel-src` (tree or tarball)
/// first, then the canonical tarball (cached, or downloaded unless offline),
/// then the offline substitute.
pub fn resolve(
    series_name: &str,
    series: &Series,
    explicit: Option<&Path>,
    cache: &Path,
) -> Result<KernelSource, SourceError> {
    if let Some(path) = explicit {
        return from_path(path, series, cache);
    }
    let mut tried = Vec::new();
    let canonical = &series.canonical;
    let tarballs = cache.join("tarballs");
    let file_name = canonical.url.rsplit('/').next().unwrap_or("linux.tar.xz");
    let cached = tarballs.join(file_name);
    // A failed download is not retried for an hour: offline machines would
    // otherwise pay curl's retries on every run.
    let failed_mark = tarballs.join(format!("{file_name}.unreachable"));
    let recently_failed = std::fs::metadata(&failed_mark)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() < 3600);
    // An all-zero sha256 means "not pinned yet": never download what cannot be checked.
    let pinned = canonical.sha256.chars().any(|c| c != '0');
    if !pinned {
        tried.push(format!("{} has no pinned sha256 yet", canonical.version));
    }
    if pinned && !cached.is_file() && recently_failed {
        tried.push(format!(
            "{} could not be downloaded within the last hour (see {})",
            canonical.url,
            failed_mark.display()
        ));
    }
    if pinned
        && !cached.is_file()
        && std::env::var_os("KGRADE_OFFLINE").is_none()
        && !recently_failed
    {
        match download(&canonical.url, &cached) {
            Ok(()) => {}
            Err(e) => {
                let _ = std::fs::write(&failed_mark, e.to_string());
                tried.push(format!("download {} failed ({e})", canonical.url))
            }
        }
    }
    if pinned && cached.is_file() {
        let actual = sha256_file(&cached)?;
        if actual != canonical.sha256 {
            // A corrupt or tampered download is never used, and not kept.
            let _ = std::fs::remove_file(&cached);
            return Err(SourceError::Checksum {
                path: cached,
                expected: canonical.sha256.clone(),
                actual,
            });
        }
        let tree = extract(&cached, &actual, cache)?;
        return Ok(KernelSource {
            version: tree_version(&tree)?,
            tree,
            substitute: false,
            origin: format!("kernel.org {}", canonical.version),
            tarball_sha256: Some(actual),
        });
    }
    if let Some(sub) = &series.substitute {
        if sub.tarball.is_file() {
            let key = sha256_remembered(&sub.tarball, cache)?;
            let tree = extract(&sub.tarball, &key, cache)?;
            let version = tree_version(&tree)?;
            return Ok(KernelSource {
                substitute: !same_release(&version, &canonical.version),
                origin: format!("Debian {} ({})", sub.package, sub.tarball.display()),
                version,
                tree,
                tarball_sha256: Some(key),
            });
        }
        tried.push(format!(
            "substitute {} not found (apt-get install {})",
            sub.tarball.display(),
            sub.package
        ));
    } else {
        tried.push(format!(
            "the series has no offline stand-in: pass --kernel-src with a Linux {} tree or tarball",
            canonical.version
        ));
    }
    Err(SourceError::Unavailable {
        series: series_name.to_string(),
        tried: tried.join("; "),
    })
}

fn from_path(path: &Path, series: &Series, cache: &Path) -> Result<KernelSource, SourceError> {
    let (tree, tarball_sha256) = if path.is_dir() {
        (path.to_path_buf(), None)
    } else {
        let key = sha256_remembered(path, cache)?;
        (extract(path, &key, cache)?, Some(key))
    };
    let version = tree_version(&tree)?;
    Ok(KernelSource {
        substitute: !same_release(&version, &series.canonical.version),
        origin: format!("local {}", path.display()),
        version,
        tree,
        tarball_sha256,
    })
}

/// Whether two kernel versions name the same release: kernel.org calls the
/// first release of a series "4.15", its Makefile says 4.15.0.
pub fn same_release(a: &str, b: &str) -> bool {
    let parts = |v: &str| {
        let mut p: Vec<&str> = v.split('.').collect();
        while p.len() < 3 {
            p.push("0");
        }
        p.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    parts(a) == parts(b)
}

fn download(url: &str, dest: &Path) -> Result<(), SourceError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let partial = dest.with_extension("partial");
    process::run_ok(
        Command::new("curl")
            .args(["-fsSL", "--connect-timeout", "10", "--retry", "2", "-o"])
            .arg(&partial)
            .arg(url),
    )?;
    Ok(std::fs::rename(&partial, dest).map_err(io(dest))?)
}

/// sha256 of a large tarball, remembered beside the cache keyed by the file's
/// path, size, mtime and inode: hashing 140 MiB on every run costs seconds.
fn sha256_remembered(path: &Path, cache: &Path) -> Result<String, SourceError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let stamp = format!(
        "{} {} {} {}",
        path.display(),
        meta.len(),
        meta.mtime(),
        meta.ino()
    );
    let memo = cache.join("tarballs").join(format!(
        "{}.sha256",
        crate::paths::component(&path.display().to_string())
    ));
    if let Ok(text) = std::fs::read_to_string(&memo) {
        if let Some((seen, sha)) = text.trim_end().rsplit_once(' ') {
            if seen == stamp && sha.len() == 64 {
                return Ok(sha.to_string());
            }
        }
    }
    let sha = sha256_file(path)?;
    if let Some(dir) = memo.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&memo, format!("{stamp} {sha}\n"));
    Ok(sha)
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, SourceError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub use crate::text::hex;

/// Extracts a trusted kernel tarball once, keyed by its sha256; the result is
/// the single top-level directory inside it.
fn extract(tarball: &Path, key: &str, cache: &Path) -> Result<PathBuf, SourceError> {
    let dest = cache.join("sources").join(&key[..16]);
    // Concurrent runs (parallel tests, graders) must not extract twice at once.
    let locks = cache.join("sources").join("locks").join(&key[..16]);
    let _lock = crate::paths::FileLock::acquire(&locks).map_err(io(&locks))?;
    if !dest.join(".complete").is_file() {
        let staging = cache
            .join("sources")
            .join(format!("{}.partial", &key[..16]));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        process::run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(tarball)
                .arg("-C")
                .arg(&staging),
        )?;
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&staging, &dest).map_err(io(&dest))?;
        std::fs::write(dest.join(".complete"), tarball.display().to_string()).map_err(io(&dest))?;
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&dest).map_err(io(&dest))? {
        let entry = entry.map_err(io(&dest))?;
        if entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ if dest.join("Makefile").is_file() => Ok(dest),
        _ => Err(SourceError::NotATree { path: dest }),
    }
}

/// Reads `VERSION.PATCHLEVEL.SUBLEVEL` from a tree's top Makefile.
pub fn tree_version(tree: &Path) -> Result<String, SourceError> {
    let makefile = tree.join("Makefile");
    let text = std::fs::read_to_string(&makefile).map_err(|_| SourceError::NotATree {
        path: tree.to_path_buf(),
    })?;
    parse_version(&text).ok_or_else(|| SourceError::NotATree {
        path: tree.to_path_buf(),
    })
}

fn parse_version(makefile: &str) -> Option<String> {
    let field = |name: &str| {
        makefile.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let v = field("VERSION")?;
    let p = field("PATCHLEVEL")?;
    let s = field("SUBLEVEL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".into());
    Some(format!("{v}.{p}.{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_makefile() {
        let mk = "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 176\nEXTRAVERSION =\n";
        assert_eq!(parse_version(mk).as_deref(), Some("6.1.176"));
        assert_eq!(
            parse_version("VERSION = 4\nPATCHLEVEL = 15\nSUBLEVEL = 0\n").as_deref(),
            Some("4.15.0")
        );
        assert_eq!(parse_version("nothing"), None);
    }

    #[test]
    fn first_releases_have_two_spellings() {
        assert!(same_release("4.15.0", "4.15"));
        assert!(same_release("6.1.6", "6.1.6"));
        assert!(!same_release("6.1.176", "6.1.6"));
        assert!(!same_release("4.15.1", "4.15"));
    }

    fn series_without_substitute() -> Series {
        Series {
            canonical: crate::target::Canonical {
                version: "4.15".into(),
                url: "https://example.invalid/linux-4.15.tar.xz".into(),
                sha256: "5a26478906d5005f4f809402e981518d2b8844949199f60c4b6e1f986ca2a769".into(),
            },
            substitute: None,
        }
    }

    #[test]
    fn an_unreachable_series_without_stand_in_says_what_to_pass() {
        let cache = tempfile::tempdir().unwrap();
        // A download failed a moment ago: no new attempt, no network needed.
        let tarballs = cache.path().join("tarballs");
        std::fs::create_dir_all(&tarballs).unwrap();
        std::fs::write(tarballs.join("linux-4.15.tar.xz.unreachable"), "offline").unwrap();
        let err = resolve("4.15", &series_without_substitute(), None, cache.path()).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("series 4.15"), "{text}");
        assert!(
            text.contains("could not be downloaded within the last hour"),
            "{text}"
        );
        assert!(
            text.contains("no offline stand-in: pass --kernel-src with a Linux 4.15 tree"),
            "{text}"
        );
    }

    #[test]
    fn a_local_tree_of_the_canonical_release_is_no_substitute() {
        let cache = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(
            tree.path().join("Makefile"),
            "VERSION = 4\nPATCHLEVEL = 15\nSUBLEVEL = 0\nEXTRAVERSION =\n",
        )
        .unwrap();
        let src = resolve(
            "4.15",
            &series_without_substitute(),
            Some(tree.path()),
            cache.path(),
        )
        .unwrap();
        assert_eq!(src.version, "4.15.0");
        assert!(!src.substitute);
        assert!(src.origin.starts_with("local "), "{}", src.origin);
        assert_eq!(src.tarball_sha256, None);
        assert_eq!(src.major_minor(), "4.15");
    }

    #[test]
    fn sha256_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
