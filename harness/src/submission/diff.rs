//! What a patch would do to the tree, read the way GNU patch 2.7 reads it:
//! every file name it could write to, and every mode it could give a file.
//!
//! GNU patch looks for headers between hunks after skipping any run of
//! spaces, tabs and `X`s at the start of a line, takes a file's mode from
//! `old mode`, `new mode`, `new file mode`, `deleted file mode` and from the
//! third field of an `index` line (any spaces before the six octal digits,
//! a CR after them), reads C-quoted names (`"a/\056\056/x"`), and creates a
//! symbolic link whenever a mode says 120000. Checked with Debian's patch
//! 2.7.6: each of those spellings made a link; the other special types
//! (010000 fifo, 020000 char, 060000 block, 140000 socket, 160000 gitlink)
//! came out as regular files, and `GIT binary patch` is refused by patch.
//!
//! This reader is deliberately a superset of patch's: every line is looked at
//! as a possible header, hunk bodies included, so no header can hide from it
//! in a hunk whose length patch counts differently. The cost is that a
//! context line which itself reads like a header with an unsafe name or a
//! non-regular mode refuses the patch.

use std::path::{Component, Path};

/// Why kgrade will not apply a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A file name that leaves the tree (or cannot be a file name).
    Path {
        /// The file name.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A mode that makes a symbolic link or another non-regular file.
    Mode {
        /// The header line.
        line: String,
        /// The mode.
        mode: String,
    },
    /// A git binary patch: kgrade grades source.
    Binary,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::one_line;
        match self {
            Refusal::Path { path, why } => write!(f, "path `{}` {why}", one_line(path, 120)),
            Refusal::Mode { line, mode } if mode_type(mode) == Some(SYMLINK) => write!(
                f,
                "creates a symbolic link (`{}`)",
                one_line(line.trim(), 120)
            ),
            Refusal::Mode { line, .. } => write!(
                f,
                "sets a file type other than a regular file (`{}`)",
                one_line(line.trim(), 120)
            ),
            Refusal::Binary => write!(f, "holds a git binary patch (`GIT binary patch`)"),
        }
    }
}

const TYPE_MASK: u64 = 0o170000;
const REGULAR: u64 = 0o100000;
const SYMLINK: u64 = 0o120000;

/// Lines patch splits on; a CR before the newline is not part of the line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// A line as patch sees it when looking for a header.
fn header(line: &str) -> &str {
    line.trim_start_matches([' ', '\t', 'X'])
}

/// Decodes a git C-quoted name (after its opening quote); returns the name
/// and what follows the closing quote, or `None` if it is not well formed.
fn unquote(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &s[i + 1..])),
            b'\\' => {
                let c = *bytes.get(i + 1)?;
                i += 2;
                out.push(match c {
                    b'a' => 7,
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'v' => 11,
                    b'f' => 12,
                    b'r' => b'\r',
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'0'..=b'7' => {
                        let mut v = u32::from(c - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        (v & 0xff) as u8
                    }
                    _ => return None,
                });
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// The names a header's rest could mean: a quoted name decoded, else the
/// text up to a tab (names with spaces) and up to any white space.
fn names_in(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    let mut out = Vec::new();
    if let Some(quoted) = rest.strip_prefix('"') {
        if let Some((name, _)) = unquote(quoted) {
            out.push(name);
        }
    }
    let to_tab = rest.split('\t').next().unwrap_or("").trim_end();
    let to_space = rest.split_whitespace().next().unwrap_or("");
    out.push(to_tab.to_string());
    out.push(to_space.to_string());
    out
}

/// Every name on a `diff --git` line: quoted ones decoded, plus every
/// white-space separated word (unquoted names are split by patch that way).
fn git_names(mut rest: &str) -> Vec<String> {
    let mut out: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            if let Some((name, after)) = unquote(quoted) {
                out.push(name);
                rest = after;
                continue;
            }
        }
        rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    }
    out
}

/// `patch -p1`: drop the first path component. A path with only one
/// component (or an absolute one) is kept whole, so that it is judged as it
/// stands.
fn strip_one(raw: &str) -> String {
    if raw.starts_with('/') {
        return raw.to_string();
    }
    match raw.split_once('/') {
        Some((_, rest)) => rest.to_string(),
        None => raw.to_string(),
    }
}

/// The file type bits of an octal mode word, if it is one. A word longer
/// than patch's six digits is judged both as patch reads it (the first six)
/// and whole, and the more dangerous answer wins.
fn mode_type(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let value = |digits: &str| {
        digits.bytes().fold(0u64, |v, d| {
            v.saturating_mul(8).saturating_add(u64::from(d - b'0'))
        })
    };
    let first_six = value(&word[..word.len().min(6)]) & TYPE_MASK;
    let whole = value(word) & TYPE_MASK;
    let irregular = |t: u64| t != 0 && t != REGULAR;
    Some(if first_six == SYMLINK || whole == SYMLINK {
        SYMLINK
    } else if irregular(first_six) {
        first_six
    } else {
        whole
    })
}

fn irregular_mode(line: &str, word: &str) -> Result<(), Refusal> {
    match mode_type(word) {
        Some(t) if t != 0 && t != REGULAR => Err(Refusal::Mode {
            line: line.to_string(),
            mode: word.to_string(),
        }),
        _ => Ok(()),
    }
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
    if path.chars().any(char::is_control) {
        return Err("contains a control character");
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

/// What one patch file touches, or why it is refused.
#[derive(Debug, Default)]
struct Scan {
    /// Names as patch would use them (after `-p1`), in order, once each.
    paths: Vec<String>,
    refusal: Option<Refusal>,
}

impl Scan {
    fn name(&mut self, name: String, strip: bool) {
        if name.is_empty() || name == "/dev/null" {
            return;
        }
        let name = if strip { strip_one(&name) } else { name };
        if self.refusal.is_none() {
            if let Err(why) = check_relative(&name) {
                self.refusal = Some(Refusal::Path {
                    path: name.clone(),
                    why,
                });
            }
        }
        if !self.paths.contains(&name) {
            self.paths.push(name);
        }
    }

    fn refuse(&mut self, r: Refusal) {
        self.refusal.get_or_insert(r);
    }
}

fn scan(text: &str) -> Scan {
    let mut scan = Scan::default();
    for line in lines(text) {
        let s = header(line);
        // RFC 934 quoting (`- --- name`) is undone for `---` only, as patch does.
        let mut dashes = s;
        while let Some(rest) = dashes.strip_prefix("- ") {
            dashes = rest;
        }
        if let Some(rest) = s
            .strip_prefix("+++ ")
            .or_else(|| s.strip_prefix("*** "))
            .or_else(|| dashes.strip_prefix("--- "))
        {
            for n in names_in(rest) {
                scan.name(n, true);
            }
        } else if let Some(rest) = s.strip_prefix("Index:") {
            for n in names_in(rest) {
                scan.name(n, true);
            }
        } else if let Some(rest) = s.strip_prefix("diff --git ") {
            for n in git_names(rest) {
                scan.name(n, true);
            }
        } else if let Some(rest) = ["rename from ", "rename to ", "copy from ", "copy to "]
            .iter()
            .find_map(|k| s.strip_prefix(k))
        {
            // Git writes these without the a/ b/ prefix.
            for n in names_in(rest) {
                scan.name(n, false);
            }
            scan.name(rest.trim().to_string(), false);
        } else if let Some(rest) = [
            "old mode ",
            "new mode ",
            "deleted file mode ",
            "new file mode ",
        ]
        .iter()
        .find_map(|k| s.strip_prefix(k))
        {
            let word = rest.split_whitespace().next().unwrap_or("");
            if let Err(r) = irregular_mode(line, word) {
                scan.refuse(r);
            }
        } else if let Some(rest) = s.strip_prefix("index ") {
            for word in rest.split_whitespace().skip(1) {
                if let Err(r) = irregular_mode(line, word) {
                    scan.refuse(r);
                }
            }
        } else if s.starts_with("GIT binary patch") {
            scan.refuse(Refusal::Binary);
        }
    }
    scan
}

/// Every name a patch could make GNU patch write, with `a/`/`b/` stripped
/// as `-p1` does; unsafe ones included (see [`check`]).
pub fn patched_paths(text: &str) -> Vec<String> {
    scan(text).paths
}

/// The names a patch touches, or the first reason to refuse it.
pub fn check(text: &str) -> Result<Vec<String>, Refusal> {
    let scan = scan(text);
    match scan.refusal {
        Some(r) => Err(r),
        None => Ok(scan.paths),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &str = "--- a/kernel/sys.c\n+++ b/kernel/sys.c\n@@ -1 +1 @@\n-x\n+y\n";

    #[test]
    fn paths_of_unified_and_git_diffs() {
        assert_eq!(check(SIMPLE).unwrap(), vec!["kernel/sys.c"]);
        let git = "diff --git a/x/y.c b/x/y.c\nnew file mode 100644\nindex 0000000..1234567\n--- /dev/null\n+++ b/x/y.c\n";
        assert_eq!(check(git).unwrap(), vec!["x/y.c"]);
        let stamped = "--- a/k/a b.c\t2024-01-01 10:00:00 +0100\n+++ b/k/a b.c\t2024-01-01\n";
        assert!(check(stamped).unwrap().contains(&"k/a b.c".to_string()));
        let exec = "diff --git a/s.sh b/s.sh\nold mode 100644\nnew mode 100755\n";
        assert!(check(exec).is_ok());
    }

    /// Each spelling below made Debian's GNU patch 2.7.6 create a symbolic
    /// link (tried in a scratch tree).
    #[test]
    fn every_symlink_spelling_patch_obeys_is_refused() {
        let tail =
            "--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n";
        for head in [
            "new file mode 120000\n",
            "new file mode  120000\n",
            "  new file mode 120000\n",
            "\tnew file mode 120000\n",
            "XXnew file mode 120000\n",
            "new file mode 120000\r\n",
            "index 0000000..1111111 120000\n",
            "index 0000000..1111111\t 120000\n",
            "old mode 100644\nnew mode 120000\n",
            "deleted file mode 120000\n",
            "new file mode 0120000\n",
        ] {
            let text = format!("diff --git a/l b/l\n{head}{tail}");
            match check(&text) {
                Err(Refusal::Mode { .. }) => {}
                other => panic!("{head:?}: {other:?}"),
            }
            let shown = check(&text).unwrap_err().to_string();
            assert!(shown.contains("symbolic link"), "{shown}");
        }
    }

    #[test]
    fn special_file_modes_and_binary_patches_are_refused() {
        for mode in ["020000", "060000", "010000", "140000", "160000", "040000"] {
            let text =
                format!("diff --git a/s b/s\nnew file mode {mode}\n--- /dev/null\n+++ b/s\n");
            let err = check(&text).unwrap_err();
            assert!(matches!(err, Refusal::Mode { .. }), "{mode}: {err:?}");
            assert!(err.to_string().contains("other than a regular file"));
        }
        let bin = "diff --git a/b b/b\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 5\nMcmZ?wbYu_%00Dsk_y7O^\n";
        assert_eq!(check(bin).unwrap_err(), Refusal::Binary);
    }

    #[test]
    fn escaping_paths_are_refused_however_spelled() {
        for bad in [
            "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n",
            "--- /etc/passwd\n+++ /etc/passwd\n",
            "diff --git a/x b/x\nrename from x\nrename to ../y\n",
            "diff --git a/x b/x\ncopy from x\ncopy to \"\\056\\056/y\"\n",
            "diff --git \"a/\\056\\056/x\" \"b/\\056\\056/x\"\n",
            "--- \"a/\\056\\056/x\"\n+++ \"b/\\056\\056/x\"\n",
            "  --- a/../x\n  +++ b/../x\n",
            "- --- a/../x\n",
            "X+++ b/../x\n",
            "*** a/../x\t2024\n--- b/ok.c\n",
            "Index: a/../x\n",
            "diff --git \"a/x\\000/../../y\" b/z\n",
            "+++ \"b/x\\ny\"\n",
        ] {
            match check(bad) {
                Err(Refusal::Path { .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn quoted_names_are_decoded() {
        assert_eq!(
            unquote(r#"a/\056\056/x\t\"q\\" rest"#),
            Some(("a/../x\t\"q\\".to_string(), " rest"))
        );
        assert_eq!(unquote(r"a/\303\251.c"), None);
        assert_eq!(
            unquote(r#"a/\303\251.c""#).map(|(n, _)| n),
            Some("a/é.c".to_string())
        );
        assert_eq!(unquote(r#"bad\q""#), None);
        assert_eq!(git_names(r#""a/x y" "b/x y""#).last().unwrap(), "b/x y");
    }

    /// Refusal texts are one bounded line whatever the patch holds.
    #[test]
    fn refusals_are_short_and_printable() {
        let name = format!("a/{}\u{1b}[2J/../x", "d/".repeat(5000));
        let err = check(&format!("--- {name}\n")).unwrap_err().to_string();
        assert!(err.chars().count() < 200, "{}", err.len());
        assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
    }
}

/// Properties over generated patches, a few hundred cases each run.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A path component as written in a patch (`quoted` in git's C quoting,
    /// each byte possibly as an octal escape) and what it means.
    fn component() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "kernel", "..", ".", "x y", "é", "f.c", "...", ".x",
        ])
        .prop_map(str::to_string)
    }

    fn octal_all(s: &str) -> String {
        s.bytes().map(|b| format!("\\{b:03o}")).collect()
    }

    fn spelled(path: &str, quoted: bool, escape: bool) -> String {
        match (quoted, escape) {
            (false, _) => path.to_string(),
            (true, false) => format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\"")),
            (true, true) => format!("\"{}\"", octal_all(path)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn never_panics_on_any_text(text in "\\PC*") {
            let _ = check(&text);
            let _ = patched_paths(&text);
        }

        #[test]
        fn never_panics_on_header_soup(
            parts in prop::collection::vec(prop::sample::select(vec![
                "diff --git ", "--- ", "+++ ", "*** ", "Index:", "index ", "new file mode ",
                "old mode ", "rename to ", "\"", "\\", "\\0", "\\377", "\\q", "..", "/", "a/",
                " ", "\t", "X", "\n", "\r\n", "120000", "100644", "GIT binary patch", "- ",
            ]), 0..40)
        ) {
            let text: String = parts.concat();
            let _ = check(&text);
        }

        /// Whatever the header, prefix, quoting or escaping: a name with a
        /// `..` component or a leading `/` is never accepted.
        #[test]
        fn never_accepts_a_path_that_escapes(
            parts in prop::collection::vec(component(), 1..6),
            absolute in any::<bool>(),
            quoted in any::<bool>(),
            escape in any::<bool>(),
            indent in "[ \tX]{0,3}",
            kind in 0usize..7,
        ) {
            let body = parts.join("/");
            let with_prefix = if absolute { format!("/{body}") } else { format!("a/{body}") };
            let bare = if absolute { format!("/{body}") } else { body.clone() };
            let name = spelled(&with_prefix, quoted, escape);
            let line = match kind {
                0 => format!("--- {name}\t2024-01-01"),
                1 => format!("+++ {name}"),
                2 => format!("*** {name}"),
                3 => format!("Index: {name}"),
                4 => format!("diff --git {name} {name}"),
                5 => format!("rename to {}", spelled(&bare, quoted, escape)),
                _ => format!("copy from {}", spelled(&bare, quoted, escape)),
            };
            let text = format!("{indent}{line}\n");
            let escapes = absolute || parts.iter().any(|p| p == "..");
            match check(&text) {
                Ok(paths) => {
                    prop_assert!(!escapes, "accepted {text:?} as {paths:?}");
                    for p in paths {
                        prop_assert!(check_relative(&p).is_ok(), "{p:?}");
                    }
                }
                Err(_) => prop_assert!(escapes, "refused a safe {text:?}"),
            }
        }

        /// Any mode with a file type other than a regular file, on any mode
        /// line, in any of the spellings patch accepts, is refused.
        #[test]
        fn never_accepts_a_special_file_mode(
            kind in prop::sample::select(vec![0o01u32, 0o02, 0o04, 0o06, 0o12, 0o14, 0o16]),
            perms in 0u32..0o10000,
            key in prop::sample::select(vec![
                "new file mode", "deleted file mode", "old mode", "new mode", "index 00..11",
            ]),
            indent in "[ \tX]{0,3}",
            gap in "[ \t]{0,2}",
            cr in any::<bool>(),
        ) {
            let mode = format!("{:06o}", (kind << 12) | perms);
            let text = format!(
                "diff --git a/f b/f\n{indent}{key} {gap}{mode}{}\n",
                if cr { "\r" } else { "" }
            );
            let refused = matches!(check(&text), Err(Refusal::Mode { .. }));
            prop_assert!(refused, "{text:?}");
        }
    }
}
