//! Where things live: the project checkout and the cache.

use std::path::{Path, PathBuf};

/// The project root: `$KGRADE_ROOT`, else the nearest ancestor of the current
/// directory holding `configs/targets.toml`, else the checkout this binary was
/// built from.
pub fn project_root() -> PathBuf {
    if let Some(root) = std::env::var_os("KGRADE_ROOT") {
        return PathBuf::from(root);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("configs/targets.toml").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"));
    built_from.parent().unwrap_or(built_from).to_path_buf()
}

/// The cache root: `$KGRADE_CACHE`, else `$XDG_CACHE_HOME/kgrade`, else
/// `~/.cache/kgrade`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KGRADE_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("kgrade");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("kgrade")
}

/// The lock every kernel build takes, so a 2-core machine never runs two.
pub fn build_lock() -> PathBuf {
    cache_root().join("build.lock")
}

/// An exclusive advisory lock on a file, released when dropped.
pub struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    /// Waits for the lock on `dir/lock`, creating the directory if needed.
    pub fn acquire(dir: &Path) -> std::io::Result<FileLock> {
        std::fs::create_dir_all(dir)?;
        FileLock::acquire_file(&dir.join("lock"))
    }

    /// Waits for the lock on the file `path` (created if needed, in an
    /// existing or new directory).
    pub fn acquire_file(path: &Path) -> std::io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a descriptor we own; released when the file closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLock(file))
    }

    /// Takes the lock on `dir/lock` if nobody holds it; `None` if somebody does.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<FileLock>> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(dir)?;
        let file = std::fs::File::create(dir.join("lock"))?;
        // SAFETY: as in `acquire`.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(FileLock(file)))
    }
}

/// Turns a target or student name into one safe path component.
pub fn component(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_not_taken_twice() {
        let d = tempfile::tempdir().unwrap();
        let first = FileLock::try_acquire(d.path()).unwrap();
        assert!(first.is_some());
        assert!(FileLock::try_acquire(d.path()).unwrap().is_none());
        drop(first);
        assert!(FileLock::try_acquire(d.path()).unwrap().is_some());
    }

    #[test]
    fn component_is_one_safe_segment() {
        assert_eq!(component("tracker/6.1/x86_64"), "tracker_6.1_x86_64");
        assert_eq!(component("../etc"), "_etc");
        assert!(!component("a/../../b").contains('/'));
    }
}
