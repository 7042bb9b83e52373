//! Rubrics: how many points each guest test is worth, and a run's score.
//!
//! The `[rubric]` section of `configs/assignments/<name>.toml` (documented at
//! the top of tracker.toml) is optional: without it every test is worth one
//! point. Points belong to groups: a suite with `points` shares them evenly
//! among its tests (partial credit), or, with `all_or_nothing = true`, earns
//! them only when every one of its tests passes. A test named under
//! `[rubric.test]` has its own points and leaves its suite's share; in an
//! all-or-nothing suite it still counts towards the suite's all-or-nothing.
//! Every other test is a group of one worth `default` points.

use crate::report::RunResult;
use crate::verdict::Outcome;
use kgrade_protocol::catalogue::{cases_for, suites_for};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The rubric as written in the assignment's toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricConfig {
    /// Points of a test no suite or test entry covers.
    #[serde(default = "one")]
    pub default: f64,
    #[serde(default)]
    pub suite: BTreeMap<String, SuiteRule>,
    /// `"suite.case" = points`
    #[serde(default)]
    pub test: BTreeMap<String, f64>,
}

fn one() -> f64 {
    1.0
}

impl Default for RubricConfig {
    fn default() -> Self {
        RubricConfig {
            default: 1.0,
            suite: BTreeMap::new(),
            test: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRule {
    /// The suite's points, shared evenly by its tests without their own.
    pub points: f64,
    /// Earn the suite's points only when every one of its tests passes.
    #[serde(default)]
    pub all_or_nothing: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rubric of {assignment}: {message}")]
pub struct RubricError {
    pub assignment: String,
    pub message: String,
}

/// A validated rubric: every test of the assignment, with its points, in groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    pub assignment: String,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The suite's name, or the test's for a group of one.
    pub name: String,
    pub all_or_nothing: bool,
    /// `(suite.case, points)` in catalogue order.
    pub tests: Vec<(String, f64)>,
}

/// One test's share of a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestScore {
    pub name: String,
    pub outcome: Outcome,
    /// Why it did not pass (empty on a pass).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub points: f64,
    pub max: f64,
}

/// A run's score under a rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub earned: f64,
    pub max: f64,
    /// Every test of the rubric, in catalogue order.
    pub tests: Vec<TestScore>,
}

impl Rubric {
    /// Validates `config` against the assignment's test catalogue.
    pub fn build(assignment: &str, config: &RubricConfig) -> Result<Rubric, RubricError> {
        let fail = |message: String| RubricError {
            assignment: assignment.to_string(),
            message,
        };
        let suites = suites_for(assignment);
        let cases: Vec<String> = cases_for(assignment).map(|c| c.full_name()).collect();
        let check = |what: &str, p: f64| {
            if !p.is_finite() {
                Err(fail(format!("{what}: points must be a number, got {p}")))
            } else if p < 0.0 {
                Err(fail(format!(
                    "{what}: points must not be negative, got {p}"
                )))
            } else {
                Ok(())
            }
        };
        check("default", config.default)?;
        for (name, rule) in &config.suite {
            if !suites.contains(&name.as_str()) {
                return Err(fail(format!(
                    "unknown suite `{name}` (suites: {})",
                    suites.join(", ")
                )));
            }
            check(&format!("suite `{name}`"), rule.points)?;
        }
        for (name, points) in &config.test {
            if !cases.contains(name) {
                let hint = if name.contains('.') {
                    String::new()
                } else {
                    " (tests are named `suite.case`)".to_string()
                };
                return Err(fail(format!("unknown test `{name}`{hint}")));
            }
            check(&format!("test `{name}`"), *points)?;
        }
        let mut groups = Vec::new();
        for suite in &suites {
            let members: Vec<String> = cases_for(assignment)
                .filter(|c| c.suite == *suite)
                .map(|c| c.full_name())
                .collect();
            let Some(rule) = config.suite.get(*suite) else {
                for name in members {
                    let p = config.test.get(&name).copied().unwrap_or(config.default);
                    groups.push(Group {
                        name: name.clone(),
                        all_or_nothing: false,
                        tests: vec![(name, p)],
                    });
                }
                continue;
            };
            let sharing = members
                .iter()
                .filter(|n| !config.test.contains_key(*n))
                .count();
            if sharing == 0 && rule.points > 0.0 {
                return Err(fail(format!(
                    "suite `{suite}` has {} points but every one of its tests has its own points",
                    rule.points
                )));
            }
            let share = if sharing == 0 {
                0.0
            } else {
                rule.points / sharing as f64
            };
            let tests = members
                .into_iter()
                .map(|n| {
                    let p = config.test.get(&n).copied().unwrap_or(share);
                    (n, p)
                })
                .collect();
            groups.push(Group {
                name: suite.to_string(),
                all_or_nothing: rule.all_or_nothing,
                tests,
            });
        }
        let rubric = Rubric {
            assignment: assignment.to_string(),
            groups,
        };
        if !cases.is_empty() && rubric.max() <= 0.0 {
            return Err(fail("no test is worth any points".into()));
        }
        Ok(rubric)
    }

    pub fn max(&self) -> f64 {
        self.groups
            .iter()
            .flat_map(|g| g.tests.iter().map(|(_, p)| p))
            .sum()
    }

    /// The points one test is worth.
    pub fn points_of(&self, test: &str) -> Option<f64> {
        self.groups
            .iter()
            .flat_map(|g| g.tests.iter())
            .find(|(n, _)| n == test)
            .map(|(_, p)| *p)
    }

    /// Scores a run. A test the run does not report (the run stopped before
    /// it: patch-failed, build-failed, boot-failed, or a crash) scores 0.
    /// `None` (no result at all) scores every test 0.
    pub fn score(&self, result: Option<&RunResult>) -> Score {
        let reported = |name: &str| {
            result
                .and_then(|r| r.tests.iter().find(|t| t.name == name))
                .map(|t| (t.outcome, t.message.clone()))
        };
        let mut tests = Vec::new();
        for group in &self.groups {
            let outcomes: Vec<(Outcome, String)> = group
                .tests
                .iter()
                .map(|(n, _)| {
                    reported(n).unwrap_or_else(|| {
                        let why = match result {
                            Some(r) => {
                                format!("not run: {} ({})", r.verdict.as_str(), r.reason)
                            }
                            None => "not run: no result".to_string(),
                        };
                        (Outcome::NotRun, why)
                    })
                })
                .collect();
            let all_passed = outcomes.iter().all(|(o, _)| *o == Outcome::Pass);
            for ((name, max), (outcome, message)) in group.tests.iter().zip(outcomes) {
                let earns = outcome == Outcome::Pass && (all_passed || !group.all_or_nothing);
                let message = if outcome == Outcome::Pass && !earns {
                    format!(
                        "passed, but `{}` is all-or-nothing and another of its tests did not pass",
                        group.name
                    )
                } else {
                    message
                };
                tests.push(TestScore {
                    name: name.clone(),
                    outcome,
                    message,
                    points: if earns { *max } else { 0.0 },
                    max: *max,
                });
            }
        }
        let earned = tests.iter().map(|t| t.points).sum();
        Score {
            earned,
            max: self.max(),
            tests,
        }
    }
}

/// Points as people write them: at most two decimals, no trailing zeros.
pub fn fmt_points(p: f64) -> String {
    let s = format!("{:.2}", p);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunResult;
    use crate::verdict::{TestResult, Verdict};

    fn config(text: &str) -> RubricConfig {
        toml::from_str(text).unwrap()
    }

    fn run(verdict: Verdict, outcomes: &[(&str, Outcome)]) -> RunResult {
        RunResult {
            target: "tracker/6.1/x86_64".into(),
            verdict,
            reason: "why".into(),
            submission_origin: String::new(),
            kernel: None,
            syscalls: BTreeMap::new(),
            missing_syscalls: vec![],
            wrong_syscall_numbers: vec![],
            tests: cases_for("tracker")
                .map(|c| {
                    let name = c.full_name();
                    let outcome = outcomes
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, o)| *o)
                        .unwrap_or(Outcome::Pass);
                    TestResult {
                        name,
                        outcome,
                        message: String::new(),
                    }
                })
                .collect(),
            timings_s: BTreeMap::new(),
            details: String::new(),
            accel: String::new(),
            boots: vec![],
        }
    }

    #[test]
    fn without_a_rubric_every_test_is_one_point() {
        let r = Rubric::build("tracker", &RubricConfig::default()).unwrap();
        let n = cases_for("tracker").count() as f64;
        assert_eq!(r.max(), n);
        let s = r.score(Some(&run(Verdict::Fail, &[("files.close", Outcome::Fail)])));
        assert_eq!(s.earned, n - 1.0);
        assert_eq!(s.tests.len(), n as usize);
    }

    #[test]
    fn suite_points_are_shared_and_overrides_leave_the_share() {
        let r = Rubric::build(
            "tracker",
            &config(
                "default = 0\n[suite.quota]\npoints = 12\n[test]\n\"quota.cap_below_usage\" = 3\n",
            ),
        )
        .unwrap();
        // 12 points shared by the 8 quota tests without their own.
        assert_eq!(r.points_of("quota.heap_over_quota_killed"), Some(1.5));
        assert_eq!(r.points_of("quota.cap_below_usage"), Some(3.0));
        assert_eq!(r.points_of("register.self_returns_zero"), Some(0.0));
        assert_eq!(r.max(), 15.0);
        let s = r.score(Some(&run(
            Verdict::Fail,
            &[("quota.heap_at_quota_survives", Outcome::Fail)],
        )));
        assert_eq!(s.earned, 13.5);
    }

    #[test]
    fn all_or_nothing_needs_every_test() {
        let r = Rubric::build(
            "tracker",
            &config("default = 1\n[suite.exit]\npoints = 10\nall_or_nothing = true\n"),
        )
        .unwrap();
        let total = r.max();
        let s = r.score(Some(&run(
            Verdict::Fail,
            &[("exit.reused_pid_starts_fresh", Outcome::Fail)],
        )));
        assert_eq!(s.earned, total - 10.0);
        let kept = s
            .tests
            .iter()
            .find(|t| t.name == "exit.entry_removed_at_exit")
            .unwrap();
        assert_eq!((kept.outcome, kept.points), (Outcome::Pass, 0.0));
        assert!(kept.message.contains("all-or-nothing"), "{}", kept.message);
        assert_eq!(r.score(Some(&run(Verdict::Pass, &[]))).earned, total);
    }

    #[test]
    fn tests_a_run_never_reached_score_zero() {
        let r = Rubric::build("tracker", &RubricConfig::default()).unwrap();
        let mut crashed = run(Verdict::Crash, &[]);
        crashed.tests.truncate(3);
        let s = r.score(Some(&crashed));
        assert_eq!(s.earned, 3.0);
        let missing = &s.tests[5];
        assert_eq!(missing.outcome, Outcome::NotRun);
        assert!(missing.message.contains("crash"), "{}", missing.message);
        let mut failed = run(Verdict::BuildFailed, &[]);
        failed.tests.clear();
        assert_eq!(r.score(Some(&failed)).earned, 0.0);
        assert_eq!(r.score(None).earned, 0.0);
        assert_eq!(r.score(None).max, r.max());
    }

    #[test]
    fn crash_and_timeout_outcomes_earn_nothing() {
        let r = Rubric::build("tracker", &RubricConfig::default()).unwrap();
        let s = r.score(Some(&run(
            Verdict::Crash,
            &[
                ("files.close", Outcome::Crash),
                ("fetch.fresh_entry_is_zero", Outcome::Timeout),
            ],
        )));
        assert_eq!(s.earned, r.max() - 2.0);
    }

    #[test]
    fn bad_rubrics_are_refused_with_the_reason() {
        let err = |text: &str| {
            Rubric::build("tracker", &config(text))
                .unwrap_err()
                .to_string()
        };
        let e = err("[suite.hep]\npoints = 3\n");
        assert!(
            e.contains("unknown suite `hep`") && e.contains("heap"),
            "{e}"
        );
        let e = err("[test]\n\"heap.brk\" = 3\n");
        assert!(e.contains("unknown test `heap.brk`"), "{e}");
        let e = err("[test]\nbrk_shrink = 3\n");
        assert!(e.contains("suite.case"), "{e}");
        let e = err("[suite.heap]\npoints = -1\n");
        assert!(e.contains("suite `heap`") && e.contains("negative"), "{e}");
        let e = err("default = -2\n");
        assert!(e.contains("negative"), "{e}");
        let e = err("default = 0\n");
        assert!(e.contains("no test is worth any points"), "{e}");
        let e = err("[suite.exit]\npoints = 4\n[test]\n\"exit.entry_removed_at_exit\" = 1\n\"exit.reused_pid_starts_fresh\" = 1\n");
        assert!(e.contains("every one of its tests"), "{e}");
        let e = toml::from_str::<RubricConfig>("[suite.heap]\npoint = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("point"), "{e}");
    }

    #[test]
    fn points_print_without_noise() {
        assert_eq!(fmt_points(40.0), "40");
        assert_eq!(fmt_points(10.0 / 3.0), "3.33");
        assert_eq!(fmt_points(2.5), "2.5");
        assert_eq!(fmt_points(0.0), "0");
        assert_eq!(fmt_points(-0.0001), "0");
    }
}
