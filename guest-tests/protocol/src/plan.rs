//! The plan: what the guest must run, written by the host into the initramfs.

use crate::catalogue::{cases_for, Case};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the host puts the plan inside the initramfs.
pub const PLAN_PATH: &str = "/kgrade/plan.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Assignment name, e.g. `tracker`.
    pub assignment: String,
    /// Syscall numbers discovered in the patched tree, by name. A syscall the
    /// submission lacks is absent; tests needing it fail with that reason.
    pub syscalls: BTreeMap<String, u32>,
    /// Spec parameters of the assignment (see `configs/assignments/*.toml`).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Case names to run (`suite.case`); empty means every case of the assignment.
    #[serde(default)]
    pub only: Vec<String>,
    /// Wall-clock limit for one case, in milliseconds.
    pub case_timeout_ms: u64,
    /// A random value the host draws for each boot. The guest prints it in
    /// its header and on every result line, and the host accepts only
    /// results that carry it: a kernel printing KTAP of its own does not
    /// know it (see [`nonce_header`] and [`nonce_tag`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

/// The guest's header line announcing the nonce (a KTAP diagnostic line):
/// `# kgrade-nonce: <nonce>`.
pub const NONCE_HEADER: &str = "# kgrade-nonce: ";
/// How a result line carries the nonce: first thing after ` # `, so
/// `ok 1 name # nonce:<nonce>` and `not ok 2 name # nonce:<nonce> reason`
/// stay KTAP result lines (the nonce sits in their diagnostic data).
pub const NONCE_TAG: &str = "nonce:";

/// How the guest's note naming the kernel it runs on (`uname -v`) begins:
/// the note reads `# kgrade-kernel: #12 SMP 2000-01-01`. The host compares
/// it with the build's UTS_VERSION, whose `#12` counts the build dir's
/// links, so a boot of any other image than the one just built is seen.
pub const KERNEL_TAG: &str = "kgrade-kernel: ";

/// The header line for `nonce`.
pub fn nonce_header(nonce: &str) -> String {
    format!("{NONCE_HEADER}{nonce}")
}

/// The text a result line carries after ` # ` for `nonce`, before any reason.
pub fn nonce_tag(nonce: &str) -> String {
    format!("{NONCE_TAG}{nonce}")
}

/// Splits a result line's text after ` # ` into the nonce it carries (if
/// any) and the rest (the reason).
pub fn split_nonce(after_hash: &str) -> (Option<&str>, &str) {
    match after_hash.strip_prefix(NONCE_TAG) {
        Some(rest) => {
            let (nonce, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            (Some(nonce), reason.trim_start())
        }
        None => (None, after_hash),
    }
}

impl Plan {
    pub fn to_json(&self) -> String {
        // A plan holds only maps, strings and numbers: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Plan, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(|v| v.as_str())
    }

    pub fn param_bool(&self, key: &str) -> Option<bool> {
        self.params.get(key).and_then(|v| v.as_bool())
    }

    pub fn param_i64(&self, key: &str) -> Option<i64> {
        self.params.get(key).and_then(|v| v.as_i64())
    }

    /// The plan's cases in the order the guest runs them: suite by suite,
    /// suites in the catalogue order of their first case, cases in catalogue
    /// order within each. The host reads results and places crashes by it.
    pub fn run_order(&self) -> Vec<(&'static str, Vec<&'static Case>)> {
        let mut suites: Vec<(&'static str, Vec<&'static Case>)> = Vec::new();
        for case in cases_for(&self.assignment).filter(|c| self.selects(&c.full_name())) {
            match suites.iter_mut().find(|(s, _)| *s == case.suite) {
                Some((_, cases)) => cases.push(case),
                None => suites.push((case.suite, vec![case])),
            }
        }
        suites
    }

    /// [`Plan::run_order`] as one list.
    pub fn cases_in_run_order(&self) -> Vec<&'static Case> {
        self.run_order().into_iter().flat_map(|(_, c)| c).collect()
    }

    /// Whether a case (by full name) is selected by this plan.
    pub fn selects(&self, full_name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|n| n == full_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        Plan {
            assignment: "tracker".into(),
            syscalls: [("register".to_string(), 451), ("fetch".to_string(), 452)]
                .into_iter()
                .collect(),
            params: [("heap_unit".to_string(), serde_json::json!("bytes"))]
                .into_iter()
                .collect(),
            only: vec![],
            case_timeout_ms: 5000,
            nonce: "0123abcd".into(),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let plan = sample();
        let back = Plan::from_json(&plan.to_json()).unwrap();
        assert_eq!(plan, back);
        assert_eq!(back.param_str("heap_unit"), Some("bytes"));
        assert_eq!(back.syscalls["fetch"], 452);
    }

    #[test]
    fn rejects_a_plan_without_timeout() {
        let err = Plan::from_json(r#"{"assignment":"x","syscalls":{}}"#).unwrap_err();
        assert!(err.to_string().contains("case_timeout_ms"), "{err}");
    }

    #[test]
    fn a_plan_without_nonce_still_reads() {
        let plan =
            Plan::from_json(r#"{"assignment":"x","syscalls":{},"case_timeout_ms":1}"#).unwrap();
        assert_eq!(plan.nonce, "");
    }

    #[test]
    fn nonce_tag_splits_from_the_reason() {
        let tag = nonce_tag("abc");
        assert_eq!(split_nonce(&tag), (Some("abc"), ""));
        assert_eq!(
            split_nonce(&format!("{tag} expected 0, got -22")),
            (Some("abc"), "expected 0, got -22")
        );
        assert_eq!(
            split_nonce("TIMEOUT after 5 ms"),
            (None, "TIMEOUT after 5 ms")
        );
        assert_eq!(nonce_header("abc"), "# kgrade-nonce: abc");
    }

    #[test]
    fn run_order_groups_suites_whatever_order_only_names_them() {
        let mut plan = sample();
        plan.only = vec![
            "fetch.fresh_entry_is_zero".into(),
            "register.other_process".into(),
            "register.self_returns_zero".into(),
        ];
        let names: Vec<String> = plan
            .cases_in_run_order()
            .iter()
            .map(|c| c.full_name())
            .collect();
        assert_eq!(
            names,
            [
                "register.self_returns_zero",
                "register.other_process",
                "fetch.fresh_entry_is_zero"
            ]
        );
        let suites: Vec<&str> = plan.run_order().iter().map(|(s, _)| *s).collect();
        assert_eq!(suites, ["register", "fetch"]);
    }

    #[test]
    fn selection_defaults_to_everything() {
        let mut plan = sample();
        assert!(plan.selects("register.self"));
        plan.only = vec!["fetch.fresh_entry_is_zero".into()];
        assert!(!plan.selects("register.self"));
        assert!(plan.selects("fetch.fresh_entry_is_zero"));
    }
}
