//! Tests of the shell scripts the workflows call (.github/scripts/), run
//! with bash on fake data: what grade.yml's resume does cannot be tried on
//! GitHub from here, so its logic lives in scripts tested locally.

#[cfg(test)]
mod tests {
    use kgrade::grade::class::{Shard, Student};
    use kgrade::grade::Done;
    use kgrade::grade::Manifest;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn executable(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn script(name: &str) -> PathBuf {
        kgrade::paths::project_root()
            .join(".github/scripts")
            .join(name)
    }

    fn bash(
        name: &str,
        args: &[&Path],
        path_prefix: Option<&Path>,
        env: &[(&str, &str)],
    ) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(script(name)).args(args).envs(env.iter().copied());
        if let Some(dir) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    const TARGET: &str = "tracker_6.1_x86_64";

    /// A run directory as kgrade files it: done.json (kgrade's own format)
    /// and a result.json saying where it came from.
    fn run(dir: &Path, from: &str, error: Option<&str>) {
        std::fs::create_dir_all(dir).unwrap();
        let done = Done {
            key: "k".into(),
            target: "tracker/6.1/x86_64".into(),
            submission_digest: "digest".into(),
            seconds: 1.0,
            error: error.map(String::from),
        };
        std::fs::write(
            dir.join("done.json"),
            serde_json::to_string_pretty(&done).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("result.json"), from).unwrap();
    }

    fn from(out: &Path, rel: &str) -> Option<String> {
        std::fs::read_to_string(out.join(rel).join(TARGET).join("result.json")).ok()
    }

    #[test]
    fn resume_seed_takes_finished_runs_first_source_first() {
        let d = tempfile::tempdir().unwrap();
        let (first, second, out) = (d.path().join("1"), d.path().join("2"), d.path().join("out"));
        run(&first.join("reference").join(TARGET), "ref-1", None);
        run(&first.join("students/alice").join(TARGET), "alice-1", None);
        run(&second.join("students/alice").join(TARGET), "alice-2", None);
        // An infrastructure error is not a result: the next source's is.
        run(
            &first.join("students/bob").join(TARGET),
            "bob-1",
            Some("disk full"),
        );
        run(&second.join("students/bob").join(TARGET), "bob-2", None);
        // Interrupted before done.json: nothing to keep.
        std::fs::create_dir_all(first.join("students/carol").join(TARGET)).unwrap();
        // A link could read anything on the grading machine.
        let dave = second.join("students/dave").join(TARGET);
        run(&dave, "dave-2", None);
        std::fs::remove_file(dave.join("result.json")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dave.join("result.json")).unwrap();
        // What this shard already finished itself stays.
        run(&out.join("students/erin").join(TARGET), "erin-out", None);
        run(&first.join("students/erin").join(TARGET), "erin-1", None);

        let said = bash(
            "resume-seed.sh",
            &[&out, &first, &second, &d.path().join("none")],
            None,
            &[],
        );
        assert!(said.contains("resume: 3 finished runs"), "{said}");
        assert_eq!(from(&out, "reference").as_deref(), Some("ref-1"));
        assert_eq!(from(&out, "students/alice").as_deref(), Some("alice-1"));
        assert_eq!(from(&out, "students/bob").as_deref(), Some("bob-2"));
        assert!(!out.join("students/carol").exists());
        assert!(!out.join("students/dave").exists());
        assert_eq!(from(&out, "students/erin").as_deref(), Some("erin-out"));
    }

    #[test]
    fn resume_prune_keeps_only_the_shards_students() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        let student = |name: &str| Student {
            name: name.into(),
            dir: name.into(),
            path: PathBuf::new(),
        };
        let manifest = Manifest {
            assignment: "tracker".into(),
            targets: vec!["tracker/6.1/x86_64".into()],
            inputs: Default::default(),
            shard: Some(Shard { index: 1, count: 2 }),
            class: vec![student("alice"), student("bob"), student("carol")],
            students: vec!["alice".into(), "carol".into()],
        };
        manifest.write(out).unwrap();
        for s in ["alice", "bob", "carol", "al"] {
            run(&out.join("students").join(s).join(TARGET), s, None);
        }
        run(&out.join("reference").join(TARGET), "ref", None);
        let said = bash("resume-prune.sh", &[out], None, &[]);
        assert!(
            said.contains("2 students of other shards removed"),
            "{said}"
        );
        let mut left: Vec<String> = std::fs::read_dir(out.join("students"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["alice", "carol"]);
        assert!(out.join("reference").join(TARGET).is_dir());
        // Without grade.json (kgrade never started) nothing is removed.
        std::fs::remove_file(out.join("grade.json")).unwrap();
        bash("resume-prune.sh", &[out], None, &[]);
        assert_eq!(std::fs::read_dir(out.join("students")).unwrap().count(), 2);
    }

    /// `gh api` answered from files: runs.json, and artifacts-<id>.json.
    const FAKE_GH: &str = r#"#!/usr/bin/env bash
[ "$1" = api ] || exit 3
case "$2" in
    */actions/workflows/grade.yml/runs\?status=completed*) cat "$FIXTURES/runs.json" ;;
    */actions/runs/*/artifacts*) id=${2#*/actions/runs/}; cat "$FIXTURES/artifacts-${id%%/*}.json" ;;
    *) exit 4 ;;
esac
"#;

    fn previous_runs(attempt: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        executable(&bin.join("gh"), FAKE_GH);
        let title = "grade tracker in submissions";
        let runs = serde_json::json!({ "workflow_runs": [
            { "id": 10, "display_title": title },
            { "id": 9, "display_title": "grade pfstat in submissions" },
            { "id": 8, "display_title": title },
            { "id": 7, "display_title": title },
            { "id": 6, "display_title": title },
            { "id": 5, "display_title": title },
        ]});
        let artifact =
            |name: &str, expired: bool| serde_json::json!({ "name": name, "expired": expired });
        let artifacts = [
            (
                10,
                vec![artifact("shard-2", false), artifact("previous", false)],
            ),
            (9, vec![artifact("shard-1", false)]),
            (8, vec![artifact("gradebook", false)]),
            (7, vec![artifact("shard-1", true)]),
            (
                6,
                vec![artifact("shard-1", false), artifact("shard-2", false)],
            ),
            (5, vec![artifact("shard-1", false)]),
        ];
        std::fs::write(d.path().join("runs.json"), runs.to_string()).unwrap();
        for (id, list) in artifacts {
            let json = serde_json::json!({ "artifacts": list });
            std::fs::write(
                d.path().join(format!("artifacts-{id}.json")),
                json.to_string(),
            )
            .unwrap();
        }
        let fixtures = d.path().to_string_lossy().into_owned();
        bash(
            "previous-runs.sh",
            &[],
            Some(&bin),
            &[
                ("FIXTURES", fixtures.as_str()),
                ("REPO", "course/kgrade"),
                ("WORKFLOW", "grade.yml"),
                ("TITLE", title),
                ("RUN_ID", "10"),
                ("RUN_ATTEMPT", attempt),
            ],
        )
    }

    /// The newest other run with the same title and live shard artifacts;
    /// a re-run also looks at its own earlier attempt first.
    #[test]
    fn previous_runs_are_the_same_grading_with_shards_left() {
        assert_eq!(previous_runs("1"), "6\n");
        assert_eq!(previous_runs("2"), "10\n6\n");
    }

    /// kgrade as student-check.sh calls it: `targets`, and `run` writing
    /// result.json with the verdict FAKE_VERDICT_<arch> (default pass).
    const FAKE_KGRADE: &str = r#"#!/usr/bin/env bash
echo "$*" >>"$FIXTURES/calls"
case "$1" in
    targets) printf 'tracker/6.1/x86_64\ntracker/6.1/arm64\npfstat/6.1/i386\n'; exit 0 ;;
esac
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift ;;
        --out) out=$2; shift ;;
        --submission) submission=$2; shift ;;
    esac
    shift
done
mkdir -p "$out"
var=FAKE_VERDICT_${target##*/}
verdict=${!var:-pass}
[ -n "${submission:-}" ] || verdict=${FAKE_REFERENCE:-pass}
[ "$verdict" = error ] && exit 2
printf '{\n  "target": "%s",\n  "verdict": "%s"\n}\n' "$target" "$verdict" >"$out/result.json"
[ "$verdict" = pass ]
"#;

    fn student_check(targets: &str, env: &[(&str, &str)]) -> (i32, String, String) {
        let d = tempfile::tempdir().unwrap();
        let kgrade = d.path().join("kgrade");
        executable(&kgrade, FAKE_KGRADE);
        std::fs::write(d.path().join("my.patch"), "").unwrap();
        let out = d.path().join("out");
        let status = Command::new("bash")
            .arg(kgrade::paths::project_root().join("images/student-check.sh"))
            .args(["tracker", targets])
            .arg(d.path().join("my.patch"))
            .arg(&out)
            .env("KGRADE", &kgrade)
            .env("FIXTURES", d.path())
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().copied())
            .output()
            .unwrap()
            .status;
        let summary = std::fs::read_to_string(out.join("summary.md")).unwrap_or_default();
        let calls = std::fs::read_to_string(d.path().join("calls")).unwrap_or_default();
        (status.code().unwrap_or(-1), summary, calls)
    }

    #[test]
    fn student_check_passes_only_when_every_target_passes() {
        let (status, summary, calls) = student_check("", &[]);
        assert_eq!(status, 0, "{summary}");
        // Every target of the assignment, not another assignment's.
        assert!(
            summary.contains("| tracker/6.1/x86_64 | pass |"),
            "{summary}"
        );
        assert!(
            summary.contains("| tracker/6.1/arm64 | pass |"),
            "{summary}"
        );
        assert!(!summary.contains("pfstat"), "{summary}");
        // The reference first, then the patch compared with its console.
        let x86: Vec<&str> = calls.lines().filter(|l| l.contains("x86_64")).collect();
        assert_eq!(x86.len(), 2, "{calls}");
        assert!(!x86[0].contains("--submission"), "{calls}");
        assert!(
            x86[1].contains("--reference") && x86[1].contains("reference/tracker_6.1_x86_64"),
            "{calls}"
        );

        let (status, summary, _) =
            student_check("tracker/6.1/arm64", &[("FAKE_VERDICT_arm64", "fail")]);
        assert_eq!(status, 1, "{summary}");
        assert!(
            summary.contains("| tracker/6.1/arm64 | fail |"),
            "{summary}"
        );
        assert!(!summary.contains("x86_64"), "{summary}");

        let (status, summary, _) = student_check("", &[("FAKE_VERDICT_x86_64", "error")]);
        assert_eq!(status, 1, "{summary}");
        assert!(
            summary.contains("| tracker/6.1/x86_64 | error: kgrade could not grade it"),
            "{summary}"
        );

        // A reference that fails is the course's problem, and still no pass.
        let (status, summary, calls) = student_check("", &[("FAKE_REFERENCE", "fail")]);
        assert_eq!(status, 1, "{summary}");
        assert!(
            summary.contains("the reference solution did not pass"),
            "{summary}"
        );
        assert!(!calls.contains("--submission"), "{calls}");
    }
}
