//! Targets as data: `configs/targets.toml` and `configs/assignments/*.toml`.

pub use crate::arch::Arch;
use crate::rubric::{Rubric, RubricConfig, RubricError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A file is not valid.
    #[error("{path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// No such target (the name, the known ones).
    #[error("unknown target `{0}`; known targets: {1}")]
    UnknownTarget(String, String),
}

/// Where a kernel series comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// The release the course asks for.
    pub canonical: Canonical,
    /// A stand-in to use offline, if any.
    pub substitute: Option<Substitute>,
}

/// The course's exact kernel on kernel.org, pinned by sha256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canonical {
    /// The version, e.g. `6.1.192`.
    pub version: String,
    /// Where to download it.
    pub url: String,
    /// The tarball's sha256.
    pub sha256: String,
}

/// An offline stand-in (a Debian `linux-source-*` tarball).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Substitute {
    /// The Debian package it comes from.
    pub package: String,
    /// The tarball on disk.
    pub tarball: PathBuf,
}

/// One assignment's contract as the harness needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The assignment's name (its key in the config).
    #[serde(skip)]
    pub name: String,
    /// The syscalls the patch adds, by name.
    pub syscalls: Vec<String>,
    /// A kernel config fragment the assignment needs, if any.
    pub fragment: Option<String>,
    /// Each guest test's time limit.
    pub case_timeout_ms: u64,
    /// Wall-clock limit for configuring and building one kernel; a build
    /// over it is the submission's `build-failed`. The default suits a cold
    /// arm64 build on a busy 2-core machine.
    #[serde(default = "default_build_timeout_s")]
    pub build_timeout_s: u64,
    /// Spec parameters for the guest tests (see `kgrade_protocol::params`).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Syscall numbers the handout mandates, per kernel series (pfstat's
    /// 385-387 on 4.15). Series without an entry take whatever the patch wired.
    #[serde(default)]
    pub fixed_syscalls: BTreeMap<String, BTreeMap<String, u32>>,
    /// Points per test; optional (every test is worth one point without it).
    #[serde(default)]
    pub rubric: RubricConfig,
}

fn default_build_timeout_s() -> u64 {
    1500
}

impl Assignment {
    /// The validated rubric.
    pub fn rubric(&self) -> Result<Rubric, RubricError> {
        Rubric::build(&self.name, &self.rubric)
    }

    /// Checks the spec parameters against those the guest declares for this
    /// assignment (see `kgrade_protocol::PARAMS`); undeclared assignments pass.
    pub fn check_params(&self) -> Result<(), String> {
        let declared: Vec<_> = kgrade_protocol::params_for(&self.name).collect();
        if declared.is_empty() {
            return Ok(());
        }
        for (key, value) in &self.params {
            let Some(spec) = declared.iter().find(|p| p.name == key) else {
                let known: Vec<&str> = declared.iter().map(|p| p.name).collect();
                return Err(format!(
                    "unknown spec parameter `{key}` (known: {})",
                    known.join(", ")
                ));
            };
            spec.kind
                .check(value)
                .map_err(|why| format!("spec parameter `{key}`: {why}"))?;
        }
        Ok(())
    }

    /// The mandated numbers on a series, if the assignment fixes them there.
    pub fn fixed_for(&self, series: &str) -> Option<&BTreeMap<String, u32>> {
        self.fixed_syscalls.get(series)
    }

    /// Fixed numbers must name this assignment's syscalls, every one of
    /// them, on known series, without two syscalls sharing a number.
    fn check_fixed(&self, known_series: &[&String]) -> Result<(), String> {
        for (series, numbers) in &self.fixed_syscalls {
            if !known_series.contains(&series) {
                return Err(format!("fixed_syscalls names unknown series `{series}`"));
            }
            if let Some(stray) = numbers.keys().find(|n| !self.syscalls.contains(n)) {
                return Err(format!(
                    "fixed_syscalls.\"{series}\" names `{stray}`, which is not one of syscalls {:?}",
                    self.syscalls
                ));
            }
            if let Some(unset) = self.syscalls.iter().find(|n| !numbers.contains_key(*n)) {
                return Err(format!(
                    "fixed_syscalls.\"{series}\" has no number for `{unset}`"
                ));
            }
            let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
            for (name, &nr) in numbers {
                if let Some(other) = seen.insert(nr, name) {
                    return Err(format!(
                        "fixed_syscalls.\"{series}\" gives {nr} to both `{other}` and `{name}`"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    assignment: String,
    series: String,
    arch: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    series: BTreeMap<String, Series>,
    arch: BTreeMap<String, Arch>,
    target: Vec<TargetEntry>,
}

/// A fully resolved target: everything one run needs to know.
#[derive(Debug, Clone)]
pub struct Target {
    /// `assignment/series/arch`.
    pub name: String,
    /// The assignment.
    pub assignment: Assignment,
    /// The series' name, e.g. `6.1`.
    pub series_name: String,
    /// Where the series' source comes from.
    pub series: Series,
    /// The arch's name, e.g. `x86_64`.
    pub arch_name: String,
    /// The arch.
    pub arch: Arch,
}

/// The project's configuration directory, loaded.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The project root (configs, kernel-patches).
    pub root: PathBuf,
    /// Every target.
    pub targets: Vec<Target>,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    toml::from_str(&read(path)?).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Catalog {
    /// Loads `configs/` under the project root and checks every reference.
    pub fn load(root: &Path) -> Result<Catalog, ConfigError> {
        let configs = root.join("configs");
        let file_path = configs.join("targets.toml");
        let file: TargetsFile = parse(&file_path)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: file_path.clone(),
            message,
        };
        let mut assignments: BTreeMap<String, Assignment> = BTreeMap::new();
        let mut targets = Vec::new();
        for entry in &file.target {
            let series = file.series.get(&entry.series).ok_or_else(|| {
                invalid(format!("target names unknown series `{}`", entry.series))
            })?;
            let arch = file
                .arch
                .get(&entry.arch)
                .ok_or_else(|| invalid(format!("target names unknown arch `{}`", entry.arch)))?;
            if !assignments.contains_key(&entry.assignment) {
                let path = configs
                    .join("assignments")
                    .join(format!("{}.toml", entry.assignment));
                let mut a: Assignment = parse(&path)?;
                a.name = entry.assignment.clone();
                let invalid_assignment = |message: String| ConfigError::Invalid {
                    path: path.clone(),
                    message,
                };
                a.check_params().map_err(invalid_assignment)?;
                a.rubric().map_err(|e| invalid_assignment(e.to_string()))?;
                let known: Vec<&String> = file.series.keys().collect();
                a.check_fixed(&known).map_err(invalid_assignment)?;
                assignments.insert(entry.assignment.clone(), a);
            }
            let name = format!("{}/{}/{}", entry.assignment, entry.series, entry.arch);
            if targets.iter().any(|t: &Target| t.name == name) {
                return Err(invalid(format!("target `{name}` is listed twice")));
            }
            targets.push(Target {
                name,
                assignment: assignments[&entry.assignment].clone(),
                series_name: entry.series.clone(),
                series: series.clone(),
                arch_name: entry.arch.clone(),
                arch: arch.clone(),
            });
        }
        for t in &targets {
            for fragment in t.fragments() {
                let p = configs.join("kernel").join(&fragment);
                if !p.is_file() {
                    return Err(invalid(format!(
                        "target `{}` needs missing fragment configs/kernel/{fragment}",
                        t.name
                    )));
                }
            }
        }
        Ok(Catalog {
            root: root.to_path_buf(),
            targets,
        })
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Result<&Target, ConfigError> {
        self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
            ConfigError::UnknownTarget(name.to_string(), known.join(", "))
        })
    }

    /// Where the config fragment `fragment` is.
    pub fn fragment_path(&self, fragment: &str) -> PathBuf {
        self.root.join("configs").join("kernel").join(fragment)
    }
}

impl Target {
    /// Config fragments in the order they are merged: common, arch, assignment.
    pub fn fragments(&self) -> Vec<String> {
        let mut v = vec!["common.config".to_string(), self.arch.fragment.clone()];
        v.extend(self.assignment.fragment.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn the_project_catalog_loads() {
        let catalog = Catalog::load(&project_root()).unwrap();
        let t = catalog.target("tracker/6.1/x86_64").unwrap();
        assert_eq!(t.arch.make_arch, "x86_64");
        assert_eq!(t.series.canonical.version, "6.1.6");
        assert_eq!(t.series.canonical.sha256.len(), 64);
        assert!(t.assignment.syscalls.contains(&"register".to_string()));
    }

    #[test]
    fn memuse_targets_reuse_the_tracker_series_and_arches() {
        let catalog = Catalog::load(&project_root()).unwrap();
        for (series, arch) in [
            ("6.1", "x86_64"),
            ("6.1", "arm64"),
            ("6.13", "x86_64"),
            ("6.13", "arm64"),
        ] {
            let m = catalog.target(&format!("memuse/{series}/{arch}")).unwrap();
            let t = catalog.target(&format!("tracker/{series}/{arch}")).unwrap();
            assert_eq!(m.series.canonical.version, t.series.canonical.version);
            assert_eq!(m.arch.make_target, t.arch.make_target);
            assert_eq!(m.assignment.syscalls, ["memuse"]);
            assert_eq!(m.assignment.params["error_value"], -1);
            assert_eq!(m.fragments().last().unwrap(), "memuse.config");
        }
    }

    /// tracker and memuse kernels of one tree and arch share a .config (a
    /// build of one seeds the other's from ccache): their fragments differ
    /// only in options every target's tinyconfig already sets that way.
    #[test]
    fn tracker_and_memuse_fragments_give_the_same_config() {
        let root = project_root();
        let catalog = Catalog::load(&root).unwrap();
        let options = |name: &str| {
            let text = std::fs::read_to_string(catalog.fragment_path(name)).unwrap();
            crate::kconfig::parse_fragments(&[text]).unwrap()
        };
        let (tracker, memuse) = (options("tracker.config"), options("memuse.config"));
        let tinyconfig_already = [
            "CONFIG_MMU",
            "CONFIG_TRANSPARENT_HUGEPAGE",
            "CONFIG_SWAP",
            "CONFIG_COMPAT_BRK",
        ];
        for (name, want) in tracker.iter().chain(memuse.iter()) {
            let (t, m) = (tracker.get(name), memuse.get(name));
            let same = matches!((t, m), (Some(t), Some(m)) if t.want == m.want);
            assert!(
                same || tinyconfig_already.contains(&name.as_str()),
                "{name} ({:?}) is set in one fragment only or differently",
                want.want
            );
        }
        assert!(tracker.contains_key("CONFIG_KPROBES"));
    }

    #[test]
    fn unknown_target_lists_the_known_ones() {
        let catalog = Catalog::load(&project_root()).unwrap();
        let err = catalog
            .target("tracker/9.9/x86_64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tracker/6.1/x86_64"), "{err}");
    }

    /// A copy of the project's configs with tracker.toml replaced.
    fn with_tracker_toml(text: &str) -> Result<Catalog, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let configs = dir.path().join("configs");
        std::fs::create_dir_all(configs.join("assignments")).unwrap();
        std::fs::create_dir_all(configs.join("kernel")).unwrap();
        let src = project_root().join("configs");
        std::fs::copy(src.join("targets.toml"), configs.join("targets.toml")).unwrap();
        for sub in ["kernel", "assignments"] {
            for f in std::fs::read_dir(src.join(sub)).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), configs.join(sub).join(f.file_name())).unwrap();
            }
        }
        std::fs::write(configs.join("assignments/tracker.toml"), text).unwrap();
        Catalog::load(dir.path())
    }

    const MINIMAL: &str =
        "syscalls = [\"register\"]\ncase_timeout_ms = 1000\nfragment = \"tracker.config\"\n";

    #[test]
    fn an_assignment_without_rubric_or_params_loads_with_one_point_per_test() {
        let c = with_tracker_toml(MINIMAL).unwrap();
        let a = &c.target("tracker/6.1/x86_64").unwrap().assignment;
        let r = a.rubric().unwrap();
        assert_eq!(
            r.max(),
            kgrade_protocol::cases_for("tracker").count() as f64
        );
    }

    #[test]
    fn the_project_rubric_is_valid() {
        let catalog = Catalog::load(&project_root()).unwrap();
        let a = &catalog.target("tracker/6.1/x86_64").unwrap().assignment;
        let r = a.rubric().unwrap();
        // Shares of a suite's points are fractions: their sum is not exact.
        assert!((r.max() - 100.0).abs() < 1e-9, "{}", r.max());
        assert_eq!(r.points_of("files.close"), Some(2.0));
        assert_eq!(r.points_of("quota.cap_below_usage"), Some(3.0));
        assert_eq!(r.points_of("quota.heap_at_quota_survives"), Some(1.5));
    }

    #[test]
    fn bad_params_and_rubrics_fail_the_load_naming_the_file() {
        let err = |extra: &str| {
            with_tracker_toml(&format!("{MINIMAL}{extra}"))
                .unwrap_err()
                .to_string()
        };
        let e = err("[params]\nheap_unit = \"KB\"\n");
        assert!(
            e.contains("tracker.toml") && e.contains("heap_unit") && e.contains("KB"),
            "{e}"
        );
        let e = err("[params]\nkill_on_cap = 1\n");
        assert!(
            e.contains("kill_on_cap") && e.contains("true or false"),
            "{e}"
        );
        let e = err("[params]\nheap_units = \"bytes\"\n");
        assert!(e.contains("unknown spec parameter `heap_units`"), "{e}");
        let e = err("[rubric.test]\n\"files.nope\" = 2\n");
        assert!(
            e.contains("tracker.toml") && e.contains("files.nope"),
            "{e}"
        );
        let e = err("[rubric.suite.files]\npoints = -4\n");
        assert!(e.contains("negative"), "{e}");
        let e = err("[rubric]\npoints = 4\n");
        assert!(e.contains("points"), "{e}");
    }

    #[test]
    fn a_typo_in_a_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let configs = dir.path().join("configs");
        std::fs::create_dir_all(&configs).unwrap();
        let text = std::fs::read_to_string(project_root().join("configs/targets.toml")).unwrap();
        std::fs::write(
            configs.join("targets.toml"),
            text.replace("make_target", "make_targte"),
        )
        .unwrap();
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("make_targte"), "{err}");
    }

    /// A copy of the project's configs/ in a temp dir, with one file replaced.
    fn configs_with(file: &str, text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let from = project_root().join("configs");
        for sub in ["", "kernel", "assignments"] {
            let to = dir.path().join("configs").join(sub);
            std::fs::create_dir_all(&to).unwrap();
            for e in std::fs::read_dir(from.join(sub)).unwrap() {
                let e = e.unwrap();
                if e.path().is_file() {
                    std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
                }
            }
        }
        std::fs::write(dir.path().join("configs").join(file), text).unwrap();
        dir
    }

    #[test]
    fn pfstat_has_fixed_numbers_per_series_and_no_offline_4_15() {
        let catalog = Catalog::load(&project_root()).unwrap();
        let t = catalog.target("pfstat/4.15/i386").unwrap();
        let fixed = t.assignment.fixed_for("4.15").unwrap();
        assert_eq!(fixed["pf_set_param"], 385);
        assert_eq!(fixed["pf_get_info"], 386);
        assert_eq!(fixed["pf_cleanup"], 387);
        assert!(t.series.substitute.is_none());
        assert_eq!(t.arch.syscall_abis, ["i386"]);
        let t = catalog.target("pfstat/6.1/i386").unwrap();
        assert_eq!(t.assignment.fixed_for("6.1").unwrap()["pf_cleanup"], 453);
        let tracker = catalog.target("tracker/6.1/x86_64").unwrap();
        assert!(tracker.assignment.fixed_for("6.1").is_none());
    }

    #[test]
    fn bad_fixed_numbers_are_refused_on_load() {
        let good = std::fs::read_to_string(project_root().join("configs/assignments/pfstat.toml"))
            .unwrap();
        let cases = [
            (
                good.replace("pf_cleanup = 387", "pf_cleanup = 386"),
                "gives 386 to both `pf_cleanup` and `pf_get_info`",
            ),
            (
                good.replace("pf_cleanup = 387", "pf_clean = 387"),
                "names `pf_clean`, which is not one of syscalls",
            ),
            (
                good.replace("pf_cleanup = 453\n", ""),
                "fixed_syscalls.\"6.1\" has no number for `pf_cleanup`",
            ),
            (
                good.replace("[fixed_syscalls.\"6.1\"]", "[fixed_syscalls.\"6.2\"]"),
                "unknown series `6.2`",
            ),
            (
                good.replace("pf_set_param = 385", "pf_set_param = \"385\""),
                "invalid type",
            ),
        ];
        for (text, want) in cases {
            assert_ne!(text, good, "the replacement for {want:?} matched nothing");
            let dir = configs_with("assignments/pfstat.toml", &text);
            let err = Catalog::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(err.contains("pfstat.toml"), "{err}");
        }
        let dir = configs_with("assignments/pfstat.toml", &good);
        assert!(Catalog::load(dir.path()).is_ok());
    }
}
