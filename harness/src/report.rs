//! What a run leaves behind: `result.json`, and the table shown in a terminal.

use crate::verdict::{Outcome, TestResult, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The kernel a run built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelInfo {
    /// The version actually built (read from the tree).
    pub version: String,
    /// The series' canonical version (what the course asks for).
    pub canonical: String,
    /// True when the tree built is not the canonical release.
    pub substitute: bool,
    /// Where the tree came from (a cache, a tarball, a directory).
    pub origin: String,
    /// The pristine tree that was patched and built.
    #[serde(default)]
    pub tree: String,
    /// sha256 of the tarball that tree came from; absent for a directory
    /// given with --kernel-src.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tarball_sha256: Option<String>,
}

/// One boot of a run, as result.json records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootRecord {
    /// The plan the guest got (in the run's directory).
    pub plan: String,
    /// The console (in the run's directory).
    pub serial_log: String,
    /// How many cases it was asked to run.
    pub cases: usize,
    /// How QEMU ended: exited, timed-out or flooded.
    pub ended: String,
    /// What the boot came to.
    pub verdict: Verdict,
    /// One line on why.
    pub reason: String,
}

/// All a run leaves in result.json: its verdict and why, what was built,
/// every test's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// The target, `assignment/series/arch`.
    pub target: String,
    /// What the run came to.
    pub verdict: Verdict,
    /// One line on why: "40/40 tests passed", the failing patch, the panic line.
    pub reason: String,
    /// What was graded: the submission's origin (its path, or the
    /// reference's patches), with a mutant overlay's name.
    #[serde(rename = "submission")]
    pub submission_origin: String,
    /// The kernel built; absent in results from before it was recorded.
    pub kernel: Option<KernelInfo>,
    /// The syscalls found in the patched tree, by name, with their numbers.
    pub syscalls: BTreeMap<String, u32>,
    /// The assignment's syscalls the patched tree does not wire up.
    #[serde(default)]
    pub missing_syscalls: Vec<String>,
    /// Where the wiring departs from numbers the handout fixes (pfstat).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrong_syscall_numbers: Vec<String>,
    /// Every selected guest test, in run order.
    pub tests: Vec<TestResult>,
    /// Seconds per stage: source, patch, config, build, guest, boot.
    pub timings_s: BTreeMap<String, f64>,
    /// Longer evidence for failures: rejected hunks, first build errors, the
    /// kernel's crash report.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// QEMU accelerator used (tcg or kvm).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub accel: String,
    /// Each boot of the kernel: one, or more after crashes (see `boots`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boots: Vec<BootRecord>,
}

impl RunResult {
    /// How many tests passed.
    pub fn passed(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.outcome == Outcome::Pass)
            .count()
    }

    /// Writes `dir/result.json`, replacing any older one whole.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        // A fresh temporary file renamed over the old result: readers see
        // one whole result.json or the other.
        // Readable like any file written with the usual umask (tempfile makes 0600).
        let mut tmp = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)?;
        tmp.write_all((text + "\n").as_bytes())?;
        tmp.persist(dir.join("result.json")).map_err(|e| e.error)?;
        Ok(())
    }

    /// Reads `dir/result.json`.
    pub fn read(dir: &Path) -> std::io::Result<RunResult> {
        let text = std::fs::read_to_string(dir.join("result.json"))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// A plain-text table for the terminal.
    pub fn table(&self) -> String {
        let width = self
            .tests
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = String::new();
        for t in &self.tests {
            let mark = match t.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail => "FAIL",
                Outcome::Crash => "CRASH",
                Outcome::Timeout => "TIMEOUT",
                Outcome::NotRun => "NOT RUN",
                Outcome::Tampered => "TAMPERED",
            };
            let line = format!(
                "{:<width$}  {mark:<7}  {}",
                shown(&t.name),
                shown(&t.message)
            );
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s.push_str(&format!(
            "\n{}: {} ({})\n",
            self.target,
            self.verdict.as_str(),
            shown(&self.reason)
        ));
        if let Some(k) = &self.kernel {
            if k.substitute {
                s.push_str(&format!(
                    "note: built Linux {} from {} as a stand-in for {}\n",
                    k.version, k.origin, k.canonical
                ));
            } else if k.tarball_sha256.is_none() && !k.tree.is_empty() {
                s.push_str(&format!(
                    "note: built Linux {} from the tree {} (not checked against a pinned sha256)\n",
                    k.version, k.tree
                ));
            }
        }
        if self.boots.len() > 1 {
            for b in &self.boots {
                s.push_str(&format!(
                    "boot {}: {} case(s), {} ({})\n",
                    b.serial_log,
                    b.cases,
                    b.verdict.as_str(),
                    b.reason
                ));
            }
        }
        let times: Vec<String> = self
            .timings_s
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}s"))
            .collect();
        s.push_str(&format!("times: {}\n", times.join(", ")));
        s
    }
}

/// Guest- and build-derived text on one line of a terminal: no escape
/// sequences, no line breaks (the kernel under test writes these messages).
fn shown(s: &str) -> String {
    crate::text::printable(s).replace(['\n', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunResult {
        RunResult {
            target: "tracker/6.1/x86_64".into(),
            verdict: Verdict::Fail,
            reason: "1/2 tests passed".into(),
            submission_origin: "reference".into(),
            kernel: Some(KernelInfo {
                version: "6.1.176".into(),
                canonical: "6.1.6".into(),
                substitute: true,
                origin: "Debian linux-source-6.1".into(),
                tree: "/cache/sources/78cb/linux-source-6.1".into(),
                tarball_sha256: Some("ab".repeat(32)),
            }),
            syscalls: [("register".to_string(), 451)].into_iter().collect(),
            missing_syscalls: vec![],
            wrong_syscall_numbers: vec![],
            tests: vec![
                TestResult {
                    name: "register.self_returns_zero".into(),
                    outcome: Outcome::Pass,
                    message: String::new(),
                },
                TestResult {
                    name: "fetch.bad_pointer_is_einval".into(),
                    outcome: Outcome::Fail,
                    message: "got -14".into(),
                },
            ],
            timings_s: [("build".to_string(), 146.0)].into_iter().collect(),
            details: String::new(),
            accel: "tcg".into(),
            boots: vec![],
        }
    }

    #[test]
    fn result_json_has_the_documented_fields() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(v["target"], "tracker/6.1/x86_64");
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["kernel"]["version"], "6.1.176");
        assert_eq!(v["kernel"]["substitute"], true);
        assert_eq!(v["syscalls"]["register"], 451);
        assert_eq!(v["tests"][1]["outcome"], "fail");
        assert_eq!(v["tests"][1]["message"], "got -14");
        assert_eq!(v["timings_s"]["build"], 146.0);
        assert_eq!(RunResult::read(dir.path()).unwrap(), sample());
    }

    #[test]
    fn table_layout() {
        insta::assert_snapshot!(sample().table());
    }

    #[test]
    fn result_json_names_the_tree_and_wrong_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sample();
        r.wrong_syscall_numbers = vec!["pf_set_param is 390 but the spec fixes 385".into()];
        r.write(dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(v["kernel"]["tree"], "/cache/sources/78cb/linux-source-6.1");
        assert_eq!(v["kernel"]["tarball_sha256"], "ab".repeat(32));
        assert_eq!(
            v["wrong_syscall_numbers"][0],
            "pf_set_param is 390 but the spec fixes 385"
        );
        assert_eq!(RunResult::read(dir.path()).unwrap(), r);
        // A local tree: nothing vouches for it, and the table says so.
        let k = r.kernel.as_mut().unwrap();
        k.substitute = false;
        k.tarball_sha256 = None;
        k.tree = "/tmp/k415/linux-4.15".into();
        k.version = "4.15.0".into();
        let t = r.table();
        assert!(
            t.contains("from the tree /tmp/k415/linux-4.15 (not checked against a pinned sha256)"),
            "{t}"
        );
    }

    #[test]
    fn table_says_when_a_substitute_was_built() {
        let t = sample().table();
        assert!(t.contains("stand-in for 6.1.6"), "{t}");
        assert!(t.contains("FAIL") && t.contains("got -14"), "{t}");
    }

    #[test]
    fn table_shows_no_escape_sequences_from_the_guest() {
        let mut r = sample();
        r.tests[0].message = "\u{1b}[2J\u{1b}]0;owned\u{7}cleared\nsecond line".into();
        r.reason = "why\u{9b}31m".into();
        let t = r.table();
        assert!(
            !t.contains('\u{1b}') && !t.contains('\u{9b}') && !t.contains('\u{7}'),
            "{t:?}"
        );
        assert!(t.contains("[2J]0;ownedcleared second line"), "{t}");
    }
}
