//! The spec parameters each assignment's guest tests understand, and their types.
//!
//! The host checks `configs/assignments/<name>.toml`'s `[params]` against this
//! list when it loads the configuration, so a typo or a value of the wrong type
//! is an error on the TA's machine instead of every test failing in the guest.
//! The guest reads its parameters through [`get`], which applies the same
//! check and the same default: one rule on both sides. An assignment that
//! declares nothing here has its parameters passed through unchecked.
//!
//! A parameter whose words include `either` covers a choice the handouts leave
//! open: with `either` the tests covered by it accept both readings.

use std::collections::BTreeMap;

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int,
    /// An integer in `min..=max`.
    Range(i64, i64),
    /// Any string.
    Text,
    /// One of these words (compared without regard to case, as the guest does).
    Word(&'static [&'static str]),
}

/// A parameter's value when the configuration leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamDefault {
    Bool(bool),
    Int(i64),
    Text(&'static str),
}

/// One spec parameter of one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub assignment: &'static str,
    pub name: &'static str,
    pub kind: ParamKind,
    /// The course's reading (the seeds' majority, or the handout's words).
    pub default: ParamDefault,
}

const fn param(
    assignment: &'static str,
    name: &'static str,
    kind: ParamKind,
    default: ParamDefault,
) -> ParamSpec {
    ParamSpec {
        assignment,
        name,
        kind,
        default,
    }
}

use ParamDefault::{Bool as B, Int as I, Text as T};
use ParamKind::{Bool, Range, Text, Word};

const ERRNO_EINVAL_EFAULT: &[&str] = &["EINVAL", "EFAULT", "either"];

/// Every declared parameter (documented in `configs/assignments/*.toml`).
pub const PARAMS: &[ParamSpec] = &[
    param("tracker", "heap_unit", Word(&["bytes", "MiB"]), T("bytes")),
    param("tracker", "heap_shrinks", Bool, B(true)),
    param("tracker", "close_decrements", Bool, B(true)),
    param("tracker", "kill_on_cap", Bool, B(true)),
    param("tracker", "scope", Word(&["task", "tgid"]), T("task")),
    param(
        "tracker",
        "bad_pointer_errno",
        Word(ERRNO_EINVAL_EFAULT),
        T("EINVAL"),
    ),
    param(
        "tracker",
        "heap_mmap_rule",
        Word(&["private_and_anonymous", "private_or_anonymous", "either"]),
        T("private_and_anonymous"),
    ),
    param(
        "tracker",
        "fork_inherits",
        Word(&["no", "yes", "either"]),
        T("no"),
    ),
    param("tracker", "proc_status_required", Bool, B(true)),
    param("pfstat", "error_log_prefix", Text, T("[INFO940] [ERROR]")),
    param("pfstat", "max_name_len", Range(1, 15), I(15)),
    param(
        "pfstat",
        "long_names",
        Word(&["refused", "either"]),
        T("refused"),
    ),
    param(
        "pfstat",
        "vma_overflow",
        Word(&["cap", "count_all"]),
        T("cap"),
    ),
    param(
        "pfstat",
        "untracked_name_errno",
        Word(&["EINVAL", "ESRCH", "either"]),
        T("EINVAL"),
    ),
    param(
        "pfstat",
        "cow_fault",
        Word(&["copy", "write_protect", "either"]),
        T("copy"),
    ),
    param("memuse", "error_value", Range(-4095, -1), I(-1)),
    param(
        "memuse",
        "kernel_kind",
        Word(&["above_stack", "kernel_stack", "either"]),
        T("above_stack"),
    ),
];

/// The declared parameters of one assignment.
pub fn params_for(assignment: &str) -> impl Iterator<Item = &'static ParamSpec> + '_ {
    PARAMS.iter().filter(move |p| p.assignment == assignment)
}

impl ParamKind {
    /// Why `value` is not of this kind, if it is not.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        match self {
            ParamKind::Bool if value.is_boolean() => Ok(()),
            ParamKind::Bool => Err(format!("expected true or false, got {value}")),
            ParamKind::Int if value.is_i64() => Ok(()),
            ParamKind::Int => Err(format!("expected an integer, got {value}")),
            ParamKind::Range(lo, hi) => match value.as_i64() {
                Some(n) if (*lo..=*hi).contains(&n) => Ok(()),
                _ => Err(format!(
                    "expected an integer from {lo} to {hi}, got {value}"
                )),
            },
            ParamKind::Text if value.is_string() => Ok(()),
            ParamKind::Text => Err(format!("expected a string, got {value}")),
            ParamKind::Word(words) => match value.as_str() {
                Some(s) if words.iter().any(|w| w.eq_ignore_ascii_case(s)) => Ok(()),
                _ => Err(format!(
                    "expected one of {}, got {value}",
                    words
                        .iter()
                        .map(|w| format!("\"{w}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }
}

/// A checked parameter value: the configured one, or the declared default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    /// A Text parameter, or a Word parameter as the declaration spells it.
    Text(String),
}

impl Value {
    pub fn as_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
    pub fn as_int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }
    pub fn as_text(&self) -> &str {
        match self {
            Value::Text(s) => s,
            _ => "",
        }
    }
}

/// Parameter `name` of `assignment` from `params`: checked against its
/// declaration (the error names the parameter), or its default when absent.
/// A word comes back spelled as declared; an undeclared name is an error.
pub fn get(
    assignment: &str,
    name: &str,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<Value, String> {
    let spec = params_for(assignment)
        .find(|p| p.name == name)
        .ok_or_else(|| format!("spec parameter {name} is not declared for {assignment}"))?;
    let Some(v) = params.get(name) else {
        return Ok(match spec.default {
            ParamDefault::Bool(b) => Value::Bool(b),
            ParamDefault::Int(n) => Value::Int(n),
            ParamDefault::Text(s) => Value::Text(s.to_string()),
        });
    };
    spec.kind
        .check(v)
        .map_err(|why| format!("spec parameter {name}: {why}"))?;
    Ok(match spec.kind {
        ParamKind::Bool => Value::Bool(v.as_bool().unwrap_or(false)),
        ParamKind::Int | ParamKind::Range(..) => Value::Int(v.as_i64().unwrap_or(0)),
        ParamKind::Text => Value::Text(v.as_str().unwrap_or("").to_string()),
        ParamKind::Word(words) => {
            let s = v.as_str().unwrap_or("");
            let w = words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(s))
                .unwrap_or(&"");
            Value::Text(w.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn kinds_check_values() {
        assert!(ParamKind::Bool.check(&json!(true)).is_ok());
        assert!(ParamKind::Bool.check(&json!("yes")).is_err());
        assert!(ParamKind::Int.check(&json!(3)).is_ok());
        assert!(ParamKind::Int.check(&json!(3.5)).is_err());
        assert!(ParamKind::Range(1, 15).check(&json!(15)).is_ok());
        assert_eq!(
            ParamKind::Range(1, 15).check(&json!(16)).unwrap_err(),
            "expected an integer from 1 to 15, got 16"
        );
        assert!(ParamKind::Text.check(&json!("[INFO940] [ERROR]")).is_ok());
        assert!(ParamKind::Text.check(&json!(1)).is_err());
        let w = ParamKind::Word(&["bytes", "MiB"]);
        assert!(w.check(&json!("mib")).is_ok());
        let e = w.check(&json!("KB")).unwrap_err();
        assert!(e.contains("\"bytes\", \"MiB\"") && e.contains("KB"), "{e}");
    }

    #[test]
    fn names_are_unique_per_assignment() {
        for p in PARAMS {
            assert_eq!(
                PARAMS
                    .iter()
                    .filter(|q| q.assignment == p.assignment && q.name == p.name)
                    .count(),
                1,
                "{}.{}",
                p.assignment,
                p.name
            );
        }
    }

    #[test]
    fn every_default_is_a_value_of_its_kind() {
        for p in PARAMS {
            let v = match p.default {
                ParamDefault::Bool(b) => json!(b),
                ParamDefault::Int(n) => json!(n),
                ParamDefault::Text(s) => json!(s),
            };
            assert!(p.kind.check(&v).is_ok(), "{}.{}", p.assignment, p.name);
        }
    }

    #[test]
    fn get_checks_and_defaults() {
        let none = map(json!({}));
        assert_eq!(get("memuse", "error_value", &none), Ok(Value::Int(-1)));
        assert_eq!(
            get("tracker", "bad_pointer_errno", &none),
            Ok(Value::Text("EINVAL".into()))
        );
        // A word comes back as declared, whatever its case in the config.
        let cfg = map(json!({"bad_pointer_errno": "efault", "error_value": 0}));
        assert_eq!(
            get("tracker", "bad_pointer_errno", &cfg).unwrap().as_text(),
            "EFAULT"
        );
        // memuse's error value is negative on both sides.
        assert_eq!(
            get("memuse", "error_value", &cfg).unwrap_err(),
            "spec parameter error_value: expected an integer from -4095 to -1, got 0"
        );
        assert!(get("tracker", "no_such_thing", &none).is_err());
        let cfg = map(json!({"proc_status_required": false}));
        assert!(!get("tracker", "proc_status_required", &cfg)
            .unwrap()
            .as_bool());
    }
}
