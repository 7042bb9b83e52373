//! `cargo xtask gradescope-bundle`: the zip Gradescope's autograder takes
//! (setup.sh and run_autograder at its root, the assignment's settings in
//! kgrade.env, the project at HEAD under kgrade/), and a check of a
//! results.json against Gradescope's documented format.

use anyhow::{bail, ensure, Context, Result};
use kgrade::target::Catalog;
use serde_json::Value;
use std::path::Path;
use xshell::{cmd, Shell};

/// Quotes a word for sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// kgrade.env: what run_autograder grades.
pub fn env_file(assignment: &str, targets: &[String]) -> String {
    format!(
        "# Written by `cargo xtask gradescope-bundle`.\nKGRADE_ASSIGNMENT={}\nKGRADE_TARGETS={}\n",
        q(assignment),
        q(&targets.join(","))
    )
}

/// Writes the bundle for the assignment (every target of it when `targets`
/// is empty) to `out`. The project goes in as committed at HEAD.
pub fn bundle(root: &Path, assignment: &str, targets: &[String], out: &Path) -> Result<()> {
    let catalog = Catalog::load(root)?;
    let chosen: Vec<String> = kgrade::grade::select_targets(&catalog, assignment, targets)?
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let sh = Shell::new()?;
    sh.change_dir(root);
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
        .read()
        .context("git status (the bundle is made with git archive)")?;
    if !dirty.trim().is_empty() {
        eprintln!(
            "gradescope-bundle: warning: uncommitted changes are not in the bundle (it holds HEAD)"
        );
    }
    let tmp = tempfile::tempdir()?;
    let staged = tmp.path();
    for f in ["setup.sh", "run_autograder"] {
        std::fs::copy(root.join("images/gradescope").join(f), staged.join(f))
            .with_context(|| format!("copying images/gradescope/{f}"))?;
    }
    std::fs::write(staged.join("kgrade.env"), env_file(assignment, &chosen))?;
    let out = std::path::absolute(out)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&out);
    let (setup, run, env) = (
        staged.join("setup.sh"),
        staged.join("run_autograder"),
        staged.join("kgrade.env"),
    );
    // --add-file takes the --prefix given before it: the three files at the
    // root, the tree under kgrade/.
    cmd!(
        sh,
        "git archive --format=zip --prefix= --add-file={setup} --add-file={run} --add-file={env} --prefix=kgrade/ -o {out} HEAD"
    )
    .run()?;
    println!(
        "gradescope-bundle: {} ({assignment}: {})",
        out.display(),
        chosen.join(", ")
    );
    Ok(())
}

const TOP_KEYS: &[&str] = &[
    "score",
    "execution_time",
    "output",
    "output_format",
    "test_output_format",
    "test_name_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
    "leaderboard",
];
const TEST_KEYS: &[&str] = &[
    "score",
    "max_score",
    "status",
    "name",
    "name_format",
    "number",
    "output",
    "output_format",
    "tags",
    "visibility",
    "extra_data",
];
const VISIBILITY: &[&str] = &["hidden", "after_due_date", "after_published", "visible"];
const FORMATS: &[&str] = &["text", "html", "simple_format", "md", "ansi"];

fn check_common(obj: &serde_json::Map<String, Value>, keys: &[&str], what: &str) -> Result<()> {
    for (k, v) in obj {
        ensure!(keys.contains(&k.as_str()), "{what}: unknown key `{k}`");
        match k.as_str() {
            "score" | "max_score" | "execution_time" => {
                ensure!(v.is_number(), "{what}: `{k}` is not a number")
            }
            "output" | "name" | "number" => ensure!(v.is_string(), "{what}: `{k}` is not a string"),
            "visibility" | "stdout_visibility" => ensure!(
                v.as_str().is_some_and(|s| VISIBILITY.contains(&s)),
                "{what}: `{k}` is {v}"
            ),
            "output_format" | "test_output_format" | "test_name_format" | "name_format" => ensure!(
                v.as_str().is_some_and(|s| FORMATS.contains(&s)),
                "{what}: `{k}` is {v}"
            ),
            "status" => ensure!(
                v.as_str().is_some_and(|s| s == "passed" || s == "failed"),
                "{what}: `status` is {v}"
            ),
            "tags" => ensure!(v.is_array(), "{what}: `tags` is not an array"),
            "extra_data" => ensure!(v.is_object(), "{what}: `extra_data` is not an object"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a results.json against Gradescope's autograder specification:
/// known keys with the documented types and values, and a score either at
/// the top or on every test.
pub fn check_results(text: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(text).context("results.json is not JSON")?;
    let Some(top) = v.as_object() else {
        bail!("results.json is not an object")
    };
    check_common(top, TOP_KEYS, "results.json")?;
    let tests = match top.get("tests") {
        None => Vec::new(),
        Some(Value::Array(t)) => t.clone(),
        Some(_) => bail!("results.json: `tests` is not an array"),
    };
    for (i, t) in tests.iter().enumerate() {
        let Some(obj) = t.as_object() else {
            bail!("test {i} is not an object")
        };
        check_common(obj, TEST_KEYS, &format!("test {i}"))?;
    }
    let scored = top.contains_key("score")
        || (!tests.is_empty() && tests.iter().all(|t| t.get("score").is_some()));
    ensure!(
        scored,
        "results.json: no `score`, neither overall nor on every test"
    );
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_passes_and_mistakes_fail() {
        let good = r#"{"score": 44.0, "execution_time": 136, "output": "x",
            "visibility": "after_due_date", "stdout_visibility": "visible",
            "tests": [{"score": 2.0, "max_score": 2.0, "status": "passed",
                       "name": "a", "number": "1.1", "output": "ok",
                       "tags": ["t"], "visibility": "visible"}]}"#;
        check_results(good).unwrap();
        for (bad, why) in [
            (r#"{"score": "44"}"#, "not a number"),
            (
                r#"{"score": 1, "tests": [{"score": 1, "status": "ok"}]}"#,
                "status",
            ),
            (r#"{"score": 1, "visibility": "public"}"#, "visibility"),
            (r#"{"score": 1, "grade": 3}"#, "unknown key"),
            (r#"{"tests": [{"name": "a"}]}"#, "no `score`"),
        ] {
            let e = check_results(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_env_file_quotes_for_sh() {
        let text = env_file("tracker", &["a/6.1/x".into(), "b's".into()]);
        assert!(text.contains("KGRADE_ASSIGNMENT='tracker'\n"), "{text}");
        assert!(
            text.contains("KGRADE_TARGETS='a/6.1/x,b'\\''s'\n"),
            "{text}"
        );
    }

    #[test]
    fn the_bundle_has_the_scripts_at_its_root_and_the_project_below() {
        let root = kgrade::paths::project_root();
        let d = tempfile::tempdir().unwrap();
        let zip = d.path().join("b.zip");
        bundle(&root, "tracker", &["tracker/6.1/x86_64".into()], &zip).unwrap();
        let list = std::process::Command::new("unzip")
            .arg("-Z")
            .arg(&zip)
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        let entry = |name: &str| list.lines().find(|l| l.ends_with(&format!(" {name}")));
        let run = entry("run_autograder").expect("run_autograder at the root");
        assert!(run.starts_with("-rwx"), "executable: {run}");
        assert!(entry("setup.sh").is_some(), "{list}");
        assert!(entry("kgrade/configs/targets.toml").is_some(), "{list}");
        assert!(entry("kgrade/Cargo.lock").is_some(), "{list}");
        let env = std::process::Command::new("unzip")
            .args(["-p"])
            .arg(&zip)
            .arg("kgrade.env")
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&env.stdout);
        assert!(env.contains("KGRADE_TARGETS='tracker/6.1/x86_64'"), "{env}");
        let e = bundle(&root, "nope", &[], &zip).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
