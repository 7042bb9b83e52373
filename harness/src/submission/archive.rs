//! Reading `patch.tar.gz` without trusting it: nothing is written to disk,
//! every entry must be a plain file or directory with a safe relative name,
//! and the archive is bounded before anything is read whole: entries, each
//! patch's size, and the bytes the gzip stream expands to (a gzip bomb stops
//! at the cap, not at the end of the disk or memory).

use super::diff::check_relative;
use super::{Limits, PatchFile, SubmissionError};
use crate::text::one_line;
use std::cell::Cell;
use std::io::Read;
use std::path::Component;
use std::rc::Rc;

/// Passes at most `left` bytes through, then fails and says so in `over`.
struct Capped<R> {
    inner: R,
    left: u64,
    over: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed tells a full stream from a capped one.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.over.set(true);
            return Err(std::io::Error::other("archive over its size cap"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads `patch/*.patch` (or top-level patches) from the gzipped tar in
/// `data`. Any entry that is not a plain file or directory, or whose name
/// could leave the tree, refuses the whole archive.
pub fn read(
    data: impl Read,
    origin: &str,
    limits: &Limits,
) -> Result<Vec<PatchFile>, SubmissionError> {
    let over = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: flate2::read::GzDecoder::new(data),
        left: limits.total_bytes,
        over: over.clone(),
    };
    let mut archive = tar::Archive::new(capped);
    let too_big = || {
        SubmissionError::refused(format!(
            "{origin} expands to more than {} bytes",
            limits.total_bytes
        ))
    };
    let unreadable = |e: std::io::Error| {
        if over.get() {
            too_big()
        } else {
            SubmissionError::Unreadable {
                path: origin.into(),
                message: one_line(&e.to_string(), 200),
            }
        }
    };
    let mut found = Vec::new();
    let mut count = 0usize;
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        count += 1;
        if count > limits.entries {
            return Err(SubmissionError::refused(format!(
                "{origin} holds more than {} entries",
                limits.entries
            )));
        }
        let entry_path = entry.path().map_err(unreadable)?.into_owned();
        let shown = entry_path.to_string_lossy().into_owned();
        check_relative(&shown).map_err(|why| {
            SubmissionError::refused(format!("archive entry `{}` {why}", one_line(&shown, 120)))
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(SubmissionError::refused(format!(
                "archive entry `{}` is a {kind:?}, not a regular file",
                one_line(&shown, 120)
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
        if !(super::is_patch_name(&name) && (parts.len() == 1 || in_patch_dir)) {
            continue;
        }
        // The header's size first: nothing over the cap is read at all.
        let size = entry.size();
        if size > limits.patch_bytes {
            return Err(SubmissionError::refused(format!(
                "archive entry `{}` is {size} bytes, over the {}-byte limit for a patch",
                one_line(&shown, 120),
                limits.patch_bytes
            )));
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(limits.patch_bytes)
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
    if over.get() {
        return Err(too_big());
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
