//! The one I/O error of the crate: what failed, on which path.

use std::path::{Path, PathBuf};

/// An I/O error and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("I/O on {path}: {source}")]
pub struct IoError {
    /// The file or directory the operation was on.
    pub path: PathBuf,
    /// What the operating system said.
    pub source: std::io::Error,
}

/// For `map_err`: an `io::Error` on `path` as an [`IoError`], which `?`
/// turns into any error type with an `Io(#[from] IoError)` variant.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IoError + '_ {
    move |source| IoError {
        path: path.to_path_buf(),
        source,
    }
}
