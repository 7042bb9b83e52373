//! The plan: what the guest must run, written by the host into the initramfs.

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
    fn selection_defaults_to_everything() {
        let mut plan = sample();
        assert!(plan.selects("register.self"));
        plan.only = vec!["fetch.fresh_entry_is_zero".into()];
        assert!(!plan.selects("register.self"));
        assert!(plan.selects("fetch.fresh_entry_is_zero"));
    }
}
