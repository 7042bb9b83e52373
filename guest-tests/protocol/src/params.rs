//! The spec parameters each assignment's guest tests understand, and their types.
//!
//! The host checks `configs/assignments/<name>.toml`'s `[params]` against this
//! list when it loads the configuration, so a typo or a value of the wrong type
//! is an error on the TA's machine instead of every test failing in the guest.
//! An assignment that declares nothing here has its parameters passed through
//! unchecked.

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int,
    /// Any string.
    Text,
    /// One of these words (compared without regard to case, as the guest does).
    Word(&'static [&'static str]),
}

/// One spec parameter of one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub assignment: &'static str,
    pub name: &'static str,
    pub kind: ParamKind,
}

const fn param(assignment: &'static str, name: &'static str, kind: ParamKind) -> ParamSpec {
    ParamSpec {
        assignment,
        name,
        kind,
    }
}

/// Every declared parameter.
pub const PARAMS: &[ParamSpec] = &[
    param("tracker", "heap_unit", ParamKind::Word(&["bytes", "MiB"])),
    param("tracker", "heap_shrinks", ParamKind::Bool),
    param("tracker", "close_decrements", ParamKind::Bool),
    param("tracker", "kill_on_cap", ParamKind::Bool),
    param("tracker", "scope", ParamKind::Word(&["task", "tgid"])),
    param("pfstat", "error_log_prefix", ParamKind::Text),
    param("pfstat", "max_name_len", ParamKind::Int),
    param(
        "pfstat",
        "vma_overflow",
        ParamKind::Word(&["cap", "count_all"]),
    ),
    param("memuse", "error_value", ParamKind::Int),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_check_values() {
        assert!(ParamKind::Bool.check(&json!(true)).is_ok());
        assert!(ParamKind::Bool.check(&json!("yes")).is_err());
        assert!(ParamKind::Int.check(&json!(3)).is_ok());
        assert!(ParamKind::Int.check(&json!(3.5)).is_err());
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
}
