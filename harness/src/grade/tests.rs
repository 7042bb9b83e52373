//! The report writers on a small class laid out on disk as `grade` leaves it.

use super::class::Student;
use super::class_reports::{self, write_reports};
use super::manifest::Manifest;
use super::run_files::{self, Done};
use crate::report::RunResult;
use crate::rubric::{Rubric, RubricConfig};
use crate::verdict::{Outcome, TestResult, Verdict};
use kgrade_protocol::cases_for;
use std::path::Path;

const T: &str = "tracker/6.1/x86_64";

fn result(verdict: Verdict, failing: &[(&str, Outcome, &str)], reached: usize) -> RunResult {
    RunResult {
        target: T.into(),
        verdict,
        reason: match verdict {
            Verdict::BuildFailed => {
                "kernel/tracker/tracker.c:246:19: error: 'target_pid' undeclared".into()
            }
            _ => "some tests passed".into(),
        },
        submission_origin: "class/x".into(),
        kernel: None,
        syscalls: Default::default(),
        missing_syscalls: vec![],
        wrong_syscall_numbers: vec![],
        tests: cases_for("tracker")
            .take(reached)
            .map(|c| {
                let name = c.full_name();
                let (outcome, message) = failing
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, o, m)| (*o, m.to_string()))
                    .unwrap_or((Outcome::Pass, String::new()));
                TestResult {
                    name,
                    outcome,
                    message,
                }
            })
            .collect(),
        timings_s: [("build".to_string(), 12.5)].into_iter().collect(),
        details: match verdict {
            Verdict::BuildFailed => {
                "tracker.c:246:19: error: 'target_pid' undeclared <here>".into()
            }
            _ => String::new(),
        },
        accel: "tcg".into(),
        boots: vec![],
    }
}

fn file(dir: &Path, r: Option<&RunResult>, error: Option<&str>, serial: &str) {
    let staging = run_files::sibling(dir, "partial");
    std::fs::create_dir_all(&staging).unwrap();
    if let Some(r) = r {
        r.write(&staging).unwrap();
    }
    std::fs::write(staging.join("serial.log"), serial).unwrap();
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    run_files::place(
        &staging,
        dir,
        &Done {
            key: "k".into(),
            target: T.into(),
            submission_digest: "d".into(),
            seconds: 3.0,
            error: error.map(String::from),
        },
    )
    .unwrap();
}

fn student(name: &str) -> Student {
    Student {
        name: name.into(),
        dir: crate::paths::component(name),
        path: Default::default(),
    }
}

/// ann passes, "bob, jr" fails files.close, cy's kernel does not build,
/// dee's run hit an infrastructure error, and <eve> has no run yet.
fn class(out: &Path) -> (Manifest, Rubric) {
    let all = cases_for("tracker").count();
    let names = ["ann", "bob, jr", "cy", "dee", "<eve>"];
    let manifest = Manifest {
        assignment: "tracker".into(),
        targets: vec![T.into()],
        inputs: [(T.to_string(), "k".to_string())].into_iter().collect(),
        shard: None,
        class: names.iter().map(|n| student(n)).collect(),
        students: names.iter().map(|n| crate::paths::component(n)).collect(),
    };
    let dir = |n: &str| run_files::run_dir(out, &crate::paths::component(n), T);
    file(
        &run_files::reference_run_dir(out, T),
        Some(&result(Verdict::Pass, &[], all)),
        None,
        "boot\nok 1 a\n",
    );
    file(
        &dir("ann"),
        Some(&result(Verdict::Pass, &[], all)),
        None,
        "boot\nok 1 a\n",
    );
    file(
        &dir("bob, jr"),
        Some(&result(
            Verdict::Fail,
            &[(
                "files.close",
                Outcome::Fail,
                "expected 0 files after close, got 1 <&>",
            )],
            all,
        )),
        None,
        "boot\nnot ok 1 a\n",
    );
    file(
        &dir("cy"),
        Some(&result(Verdict::BuildFailed, &[], 0)),
        None,
        "",
    );
    file(
        &dir("dee"),
        None,
        Some("cannot start qemu-system-x86_64"),
        "",
    );
    let rubric = Rubric::build(
        "tracker",
        &toml::from_str::<RubricConfig>("[suite.files]\npoints = 12\n").unwrap(),
    )
    .unwrap();
    (manifest, rubric)
}

#[test]
fn gradebook_csv_has_a_row_per_student_and_blank_cells_for_ungraded_runs() {
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    let max = rubric.max();
    write_reports(d.path(), &m, &rubric).unwrap();
    let csv = std::fs::read_to_string(d.path().join(class_reports::GRADEBOOK)).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "student,tracker/6.1/x86_64,total");
    assert_eq!(lines[1], format!("ann,{max},{max}"));
    // files has 6 tests sharing 12 points: close is worth 2.
    assert_eq!(lines[2], format!("\"bob, jr\",{},{}", max - 2.0, max - 2.0));
    assert_eq!(lines[3], "cy,0,0");
    assert_eq!(lines[4], "dee,,");
    assert_eq!(lines[5], "<eve>,,");
    assert_eq!(lines.len(), 7, "{csv}");
}

#[test]
fn summary_counts_verdicts_and_names_the_failed_tests() {
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    write_reports(d.path(), &m, &rubric).unwrap();
    let md = std::fs::read_to_string(d.path().join(class_reports::SUMMARY)).unwrap();
    assert!(md.contains("| build-failed | 1 |"), "{md}");
    assert!(
        md.contains("| error | 1 |") && md.contains("| missing | 1 |"),
        "{md}"
    );
    assert!(md.contains("Reference solution: pass"), "{md}");
    assert!(md.contains("| files.close | 1 (bob, jr) |"), "{md}");
    assert!(
        md.contains("dee tracker/6.1/x86_64: cannot start qemu"),
        "{md}"
    );
    assert!(md.contains("--resume"), "{md}");
}

#[test]
fn html_report_escapes_and_links_every_student() {
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    write_reports(d.path(), &m, &rubric).unwrap();
    let index = std::fs::read_to_string(d.path().join(class_reports::REPORT_INDEX)).unwrap();
    assert!(
        index.contains("&lt;eve&gt;") && !index.contains("<eve>"),
        "{index}"
    );
    for s in &m.class {
        let page = d
            .path()
            .join("report")
            .join(super::html::student_page_name(&s.dir));
        assert!(page.is_file(), "{}", page.display());
        assert!(index.contains(&format!("href=\"students/{}.html\"", s.dir)));
    }
    let bob = std::fs::read_to_string(d.path().join("report/students/bob__jr.html")).unwrap();
    assert!(bob.contains("got 1 &lt;&amp;&gt;"), "{bob}");
    assert!(
        bob.contains("files.close</td><td>fail</td><td class=\"num\">0 / 2</td>"),
        "{bob}"
    );
    assert!(
        bob.contains("Console differences from the reference"),
        "{bob}"
    );
    assert!(bob.contains("<span class=\"del\">-ok 1 a</span>"), "{bob}");
    assert!(
        bob.contains("<span class=\"add\">+not ok 1 a</span>"),
        "{bob}"
    );
    let ann = std::fs::read_to_string(d.path().join("report/students/ann.html")).unwrap();
    assert!(
        !ann.contains("Console differences"),
        "same console as the reference: {ann}"
    );
    assert!(
        bob.contains("href=\"../../students/bob__jr/tracker_6.1_x86_64/serial.log\""),
        "{bob}"
    );
    let cy = std::fs::read_to_string(d.path().join("report/students/cy.html")).unwrap();
    assert!(
        cy.contains("First build errors") && cy.contains("&lt;here&gt;"),
        "{cy}"
    );
}

#[test]
fn junit_has_a_suite_per_student_and_target_with_ktap_reasons() {
    use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    write_reports(d.path(), &m, &rubric).unwrap();
    let x = std::fs::read_to_string(d.path().join(class_reports::JUNIT)).unwrap();
    assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    let report = Report::deserialize_from_str(&x).unwrap();
    assert_eq!(report.name.as_str(), "kgrade tracker");
    assert_eq!(report.test_suites.len(), 5);
    let all = cases_for("tracker").count();
    let suite = |name: &str| {
        report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == format!("{name} {T}"))
            .unwrap()
    };
    let bob = suite("bob, jr");
    assert_eq!((bob.tests, bob.failures, bob.errors), (all + 1, 1, 0));
    let close = bob
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "files.close")
        .unwrap();
    match &close.status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ty,
            ..
        } => {
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "expected 0 files after close, got 1 <&>"
            );
            assert_eq!(ty.as_ref().unwrap().as_str(), "fail");
        }
        other => panic!("{other:?}"),
    }
    // cy never reached the tests: the run case fails, the tests are skipped.
    let cy = suite("cy");
    match &cy.test_cases[0].status {
        TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => {
            assert!(message
                .as_ref()
                .unwrap()
                .as_str()
                .starts_with("build-failed: kernel/tracker"));
            assert!(description.as_ref().unwrap().as_str().contains("<here>"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cy.test_cases
            .iter()
            .filter(|c| matches!(c.status, TestCaseStatus::Skipped { .. }))
            .count(),
        all
    );
    assert!(x.contains(&format!("skipped=\"{all}\"")), "{x}");
    assert!(x.contains("type=\"infrastructure\""), "{x}");
    assert!(x.ends_with("</testsuites>\n"));
    // Totals: three suites of a run case and every test, two (dee, eve) of a run case alone.
    assert_eq!(
        (report.tests, report.failures, report.errors),
        (3 * (all + 1) + 2, 2, 2)
    );
}

/// What the guest prints ends up in attributes: multi-line messages stay
/// one line there (whole in the body), escape sequences are dropped, and the
/// file still parses.
#[test]
fn junit_attributes_hold_one_line_of_anything() {
    use quick_junit::{Report, TestCaseStatus};
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    let all = cases_for("tracker").count();
    file(
        &run_files::run_dir(d.path(), "ann", T),
        Some(&result(
            Verdict::Fail,
            &[(
                "files.close",
                Outcome::Fail,
                "line one\nline \"two\" <b>\u{1b}[31m\r\nthree",
            )],
            all,
        )),
        None,
        "",
    );
    write_reports(d.path(), &m, &rubric).unwrap();
    let x = std::fs::read_to_string(d.path().join(class_reports::JUNIT)).unwrap();
    assert!(!x.contains('\u{1b}'));
    let report = Report::deserialize_from_str(&x).unwrap();
    let ann = &report.test_suites[0];
    let close = ann
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "files.close")
        .unwrap();
    let TestCaseStatus::NonSuccess {
        message,
        description,
        ..
    } = &close.status
    else {
        panic!("{:?}", close.status)
    };
    let message = message.as_ref().unwrap().as_str();
    assert!(!message.contains('\n'), "{message:?}");
    assert!(
        message.starts_with("line one line \"two\" <b>"),
        "{message:?}"
    );
    assert!(description
        .as_ref()
        .unwrap()
        .as_str()
        .contains("line one\nline"));
}

#[test]
fn gradescope_results_follow_the_specification() {
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    write_reports(d.path(), &m, &rubric).unwrap();
    let read = |s: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(
                run_files::student_dir(d.path(), s).join(class_reports::GRADESCOPE),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let bob = read("bob__jr");
    assert_eq!(bob["score"], rubric.max() - 2.0);
    let tests = bob["tests"].as_array().unwrap();
    assert_eq!(tests.len(), cases_for("tracker").count());
    let close = tests.iter().find(|t| t["name"] == "files.close").unwrap();
    assert_eq!(close["score"], 0.0);
    assert_eq!(close["max_score"], 2.0);
    assert_eq!(close["status"], "failed");
    assert!(close["output"].as_str().unwrap().contains("after close"));
    let open = tests
        .iter()
        .find(|t| t["name"] == "files.open_counted")
        .unwrap();
    assert_eq!(open["status"], "passed");
    let out = bob["output"].as_str().unwrap();
    assert!(
        out.contains("serial console differences") && out.contains("-ok 1 a\n+not ok 1 a"),
        "{out}"
    );
    let ann = read("ann");
    assert!(
        !ann["output"]
            .as_str()
            .unwrap()
            .contains("serial console differences"),
        "{ann}"
    );
    let cy = read("cy");
    assert_eq!(cy["score"], 0.0);
    assert!(cy["output"].as_str().unwrap().contains("build-failed"));
    assert!(cy["output"].as_str().unwrap().contains("target_pid"));
}

#[test]
fn reports_are_the_same_bytes_when_written_again() {
    let d = tempfile::tempdir().unwrap();
    let (m, rubric) = class(d.path());
    write_reports(d.path(), &m, &rubric).unwrap();
    let files = [
        class_reports::GRADEBOOK,
        class_reports::SUMMARY,
        class_reports::JUNIT,
        class_reports::REPORT_INDEX,
    ];
    let first: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(d.path().join(f)).unwrap())
        .collect();
    write_reports(d.path(), &m, &rubric).unwrap();
    for (f, before) in files.iter().zip(first) {
        assert_eq!(std::fs::read(d.path().join(f)).unwrap(), before, "{f}");
    }
}

#[test]
fn merged_shards_write_the_reports_of_one_run() {
    let whole = tempfile::tempdir().unwrap();
    let (m, rubric) = class(whole.path());
    write_reports(whole.path(), &m, &rubric).unwrap();
    // Two shards, each holding its students' runs and the reference.
    let shards = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for i in 1..=2usize {
        let dir = shards.path().join(i.to_string());
        let mine: Vec<String> = super::class::Shard { index: i, count: 2 }.select(&m.students);
        for s in &mine {
            super::merge::copy_tree(
                &run_files::student_dir(whole.path(), s),
                &run_files::student_dir(&dir, s),
            )
            .unwrap();
        }
        super::merge::copy_tree(&whole.path().join("reference"), &dir.join("reference")).unwrap();
        Manifest {
            shard: Some(super::class::Shard { index: i, count: 2 }),
            students: mine,
            ..m.clone()
        }
        .write(&dir)
        .unwrap();
        inputs.push(dir);
    }
    let catalog = crate::target::Catalog::load(&crate::paths::project_root()).unwrap();
    let merged = tempfile::tempdir().unwrap();
    // The project's rubric scores the merge; score the whole run the same way.
    let project_rubric = catalog.target(T).unwrap().assignment.rubric().unwrap();
    write_reports(whole.path(), &m, &project_rubric).unwrap();
    super::merge::merge(&catalog, &inputs, merged.path()).unwrap();
    for f in [
        class_reports::GRADEBOOK,
        class_reports::SUMMARY,
        class_reports::REPORT_INDEX,
        class_reports::JUNIT,
    ] {
        assert_eq!(
            std::fs::read_to_string(merged.path().join(f)).unwrap(),
            std::fs::read_to_string(whole.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let _ = rubric;
}

/// Students named to attack the reports: a spreadsheet formula, Markdown
/// and HTML, terminal escape sequences.
#[test]
fn hostile_student_names_are_inert_in_every_report() {
    let d = tempfile::tempdir().unwrap();
    let names = [
        "=HYPERLINK(\"http://e\")",
        "+1+1",
        "-2",
        "@SUM(A1)",
        "x![i](http://e/p.png)<img src=x>|y",
        "esc\u{1b}[2J\u{202e}z",
    ];
    let manifest = Manifest {
        assignment: "tracker".into(),
        targets: vec![T.into()],
        inputs: [(T.to_string(), "k".to_string())].into_iter().collect(),
        shard: None,
        class: names.iter().map(|n| student(n)).collect(),
        students: names.iter().map(|n| crate::paths::component(n)).collect(),
    };
    let all = cases_for("tracker").count();
    file(
        &run_files::reference_run_dir(d.path(), T),
        Some(&result(Verdict::Pass, &[], all)),
        None,
        "",
    );
    let rubric = Rubric::build("tracker", &RubricConfig::default()).unwrap();
    write_reports(d.path(), &manifest, &rubric).unwrap();
    let csv = std::fs::read_to_string(d.path().join(class_reports::GRADEBOOK)).unwrap();
    let mut rows = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    for row in rows.records() {
        let name = row.unwrap()[0].to_string();
        assert!(
            !name.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{name}"
        );
        assert!(!name.contains('\u{1b}'), "{name:?}");
    }
    assert!(csv.contains("'=HYPERLINK") && csv.contains("'-2"), "{csv}");
    let md = std::fs::read_to_string(d.path().join(class_reports::SUMMARY)).unwrap();
    for bad in ["<img", "![i](", "\u{1b}", "\u{202e}", "&gt;|y"] {
        assert!(!md.contains(bad), "{bad:?} in\n{md}");
    }
    assert!(
        md.contains("x!\\[i\\](http://e/p.png)&lt;img src=x&gt;\\|y"),
        "{md}"
    );
}
