//! `kgrade grade` on a demo class of real kernels: one run of the whole
//! class, the same run killed part-way and resumed, and two shards merged,
//! all checked against one set of expected grades.
//!
//! The three runs share one test so that each distinct student kernel is
//! built once: workspaces are keyed by the submission's digest, so the
//! second and third runs of a submission only re-run an up-to-date `make`
//! and boot. Ignored by default (kernel builds); CI runs it with
//! `cargo nextest run --workspace --run-ignored all`.

use kgrade::report::RunResult;
use kgrade::verdict::{Outcome, Verdict};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TARGET: &str = "tracker/6.1/x86_64";
const RUN_DIR: &str = "tracker_6.1_x86_64";

fn root() -> PathBuf {
    kgrade::paths::project_root()
}

fn reference_patches() -> Vec<PathBuf> {
    let dir = root().join("kernel-patches/tracker/6.1");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 3, "the 6.1 reference is a three-patch series");
    v
}

fn mutant(name: &str) -> PathBuf {
    root().join(format!("kernel-patches/tracker/6.1/mutants/{name}.patch"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A folder of format-patch files: the reference series, then `extra`.
fn series(dir: &Path, extra: Option<(&str, &Path)>) {
    std::fs::create_dir_all(dir).unwrap();
    for p in reference_patches() {
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    if let Some((name, path)) = extra {
        std::fs::copy(path, dir.join(name)).unwrap();
    }
}

/// `patch/` of `files` as a gzipped tar at `dest`.
fn patch_tarball(dest: &Path, files: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dest).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("patch", files).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

/// Nine students, one of each kind and in every submission format.
fn demo_class(dir: &Path, scratch: &Path) {
    // The reference, as a folder of format-patch files.
    series(&dir.join("alice"), None);
    // Mutants as later patches of a full series: a patch.tar.gz, and a
    // folder holding a patch.tar.gz.
    series(
        &scratch.join("bob"),
        Some(("0004-close.patch", &mutant("close-not-counted"))),
    );
    patch_tarball(&dir.join("bob.tar.gz"), &scratch.join("bob"));
    series(
        &scratch.join("carol"),
        Some(("0004-quota.patch", &mutant("kill-at-quota"))),
    );
    patch_tarball(&dir.join("carol/patch.tar.gz"), &scratch.join("carol"));
    // A lone .patch that does not apply.
    std::fs::copy(fixture("wrong-context.patch"), dir.join("dave.patch")).unwrap();
    // Does not build; oopses at boot.
    series(
        &dir.join("erin"),
        Some(("0004-typo.patch", &fixture("does-not-build.patch"))),
    );
    series(
        &dir.join("frank"),
        Some(("0004-init.patch", &fixture("oops-at-boot.patch"))),
    );
    // An empty folder; a patch that climbs out of the tree.
    std::fs::create_dir_all(dir.join("gina")).unwrap();
    std::fs::copy(fixture("escapes-tree.patch"), dir.join("hank.diff")).unwrap();
    // A Kconfig typo: the kernel cannot be configured, a build failure too.
    series(
        &dir.join("ivan"),
        Some(("0004-kconfig.patch", &fixture("kconfig-syntax-error.patch"))),
    );
}

/// Each student's grade under configs/assignments/tracker.toml's rubric
/// (100 points): files.close is 2 of the files suite's 10 points; quota
/// shares 12 points over its 4 tests without their own (3 each).
const GRADEBOOK: &str = "student,tracker/6.1/x86_64,total\r\n\
alice,100,100\r\n\
bob,98,98\r\n\
carol,94,94\r\n\
dave,0,0\r\n\
erin,0,0\r\n\
frank,0,0\r\n\
gina,0,0\r\n\
hank,0,0\r\n\
ivan,0,0\r\n";

fn kgrade(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgrade"));
    c.args(args);
    c
}

fn grade_cmd(class: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = kgrade(&["grade"]);
    c.arg(class)
        .args(["--assignment", "tracker", "--targets", TARGET, "--out"])
        .arg(out)
        .args(extra);
    c
}

fn run_ok(mut c: Command) -> Output {
    let out = c.output().expect("kgrade runs");
    assert!(
        out.status.success(),
        "{c:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn result(out: &Path, student: &str) -> RunResult {
    RunResult::read(&out.join("students").join(student).join(RUN_DIR)).unwrap()
}

/// A result as compared across runs: stage times dropped and the crash
/// report's timestamps and addresses masked (transcript::normalise); every
/// verdict, reason, test outcome and message must be equal.
fn comparable(mut r: RunResult) -> RunResult {
    r.timings_s.clear();
    r.details = kgrade::transcript::normalise(&r.details);
    r
}

const STUDENTS: [&str; 9] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan",
];

/// The same grades and reports as `want`: gradebook.csv, summary.md and the
/// HTML index byte for byte, and every student's result.json (comparable).
fn assert_same_grades(want: &Path, got: &Path) {
    for f in ["gradebook.csv", "summary.md", "report/index.html"] {
        assert_eq!(
            std::fs::read_to_string(got.join(f)).unwrap(),
            std::fs::read_to_string(want.join(f)).unwrap(),
            "{f} differs between {} and {}",
            want.display(),
            got.display()
        );
    }
    for s in STUDENTS {
        assert_eq!(
            comparable(result(got, s)),
            comparable(result(want, s)),
            "{s}'s result differs"
        );
    }
}

fn check_demo_grades(out: &Path) {
    assert_eq!(
        std::fs::read_to_string(out.join("gradebook.csv")).unwrap(),
        GRADEBOOK
    );
    let verdict = |s: &str| result(out, s).verdict;
    assert_eq!(verdict("alice"), Verdict::Pass);
    let failed = |s: &str| -> Vec<String> {
        result(out, s)
            .tests
            .into_iter()
            .filter(|t| t.outcome != Outcome::Pass)
            .map(|t| t.name)
            .collect()
    };
    assert_eq!(verdict("bob"), Verdict::Fail);
    assert_eq!(failed("bob"), ["files.close"]);
    assert_eq!(verdict("carol"), Verdict::Fail);
    assert_eq!(
        failed("carol"),
        [
            "quota.heap_at_quota_survives",
            "quota.files_over_quota_killed",
            "quota.files_at_quota_survives",
            "quota.files_over_quota_via_openat_and_openat2_killed"
        ]
    );
    assert_eq!(verdict("dave"), Verdict::PatchFailed);
    assert!(result(out, "dave").reason.contains("dave.patch"));
    assert_eq!(verdict("erin"), Verdict::BuildFailed);
    assert!(result(out, "erin").reason.contains("target_pid"));
    assert_eq!(verdict("frank"), Verdict::BootFailed);
    assert!(result(out, "frank").details.contains("tracker_init"));
    assert_eq!(verdict("gina"), Verdict::PatchFailed);
    assert!(result(out, "gina").reason.contains("holds no patch"));
    assert_eq!(verdict("hank"), Verdict::Rejected);
    assert!(!Path::new("/etc/kgrade-escape").exists());
    assert_eq!(verdict("ivan"), Verdict::BuildFailed);
    let ivan = result(out, "ivan").reason;
    assert!(
        ivan.contains("configuration failed") && ivan.contains("init/Kconfig"),
        "{ivan}"
    );

    // Every student's run has its logs where they were promised.
    for s in ["alice", "bob", "erin", "frank"] {
        let dir = out.join("students").join(s).join(RUN_DIR);
        assert!(dir.join("build.log").is_file(), "{s}");
        assert!(dir.join("done.json").is_file(), "{s}");
    }
    assert!(out
        .join("students/frank")
        .join(RUN_DIR)
        .join("serial.log")
        .is_file());

    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("Reference solution: pass"), "{summary}");
    assert!(summary.contains("| patch-failed | 2 |"), "{summary}");
    assert!(summary.contains("| build-failed | 2 |"), "{summary}");
    assert!(summary.contains("| files.close | 1 (bob) |"), "{summary}");

    let index = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    for s in STUDENTS {
        assert!(
            index.contains(&format!("href=\"students/{s}.html\"")),
            "{s}"
        );
    }
    let bob = std::fs::read_to_string(out.join("report/students/bob.html")).unwrap();
    assert!(
        bob.contains("Console differences from the reference"),
        "{bob}"
    );
    assert!(
        bob.contains("+    not ok"),
        "bob's failing test shows in the diff"
    );
    let alice = std::fs::read_to_string(out.join("report/students/alice.html")).unwrap();
    assert!(
        !alice.contains("Console differences"),
        "the reference's own console normalises to the reference's: {alice}"
    );
    let erin = std::fs::read_to_string(out.join("report/students/erin.html")).unwrap();
    assert!(erin.contains("First build errors") && erin.contains("target_pid"));

    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), STUDENTS.len());
    let close = junit
        .split("<testcase ")
        .find(|c| c.contains("name=\"files.close\"") && c.contains("<failure"))
        .expect("bob's files.close is a failure");
    assert!(close.contains("message=\"openfile_count"), "{close}");

    let gs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("students/carol/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(gs["score"], 94.0);
    assert_eq!(gs["tests"].as_array().unwrap().len(), 52);
}

fn finished_students(out: &Path) -> Vec<String> {
    STUDENTS
        .iter()
        .filter(|s| {
            out.join("students")
                .join(s)
                .join(RUN_DIR)
                .join("done.json")
                .is_file()
        })
        .map(|s| s.to_string())
        .collect()
}

/// (inode, mtime) of a finished run's files: a redone run is placed anew.
fn identity(out: &Path, student: &str) -> Vec<(u64, i64, i64)> {
    let dir = out.join("students").join(student).join(RUN_DIR);
    ["done.json", "result.json"]
        .iter()
        .map(|f| {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        })
        .collect()
}

fn runs_done(stdout: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.contains("runs done"))
        .unwrap_or_else(|| panic!("no summary line in {text}"));
    let nums: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

struct Workdir(PathBuf);

impl Workdir {
    fn path(&self) -> &Path {
        &self.0
    }
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_class_graded_whole_resumed_and_sharded_gets_one_set_of_grades() {
    // Under target/ rather than /tmp: kept after a failure for a post-mortem.
    let work_dir = root().join("target/kgrade-grade-e2e");
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir).unwrap();
    let work = Workdir(work_dir);
    let class = work.path().join("class");
    demo_class(&class, &work.path().join("scratch"));
    let mut times = BTreeMap::new();

    // 1. The whole class in one command. Steps 1 and 2 keep the students'
    // kernels so that each is built once; step 3 drops them as a class run
    // does by default.
    let whole = work.path().join("whole");
    let t = Instant::now();
    let out = run_ok(grade_cmd(
        &class,
        &whole,
        &["--jobs", "2", "--keep-workspaces"],
    ));
    times.insert("1 whole class", t.elapsed());
    assert_eq!(
        runs_done(&out.stdout),
        (STUDENTS.len() + 1, 0),
        "every student and the reference"
    );
    check_demo_grades(&whole);

    // 2. Killed after three students, then resumed.
    let resumed = work.path().join("resumed");
    let t = Instant::now();
    let mut child = grade_cmd(&class, &resumed, &["--jobs", "1", "--keep-workspaces"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while finished_students(&resumed).len() < 3 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "kgrade ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The whole group: kgrade, and the make or QEMU it is running.
    // SAFETY: a plain kill(2) of the process group we created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    let finished = finished_students(&resumed);
    assert!(
        finished.len() < STUDENTS.len(),
        "killed before the end: {finished:?}"
    );
    let before: Vec<_> = finished.iter().map(|s| identity(&resumed, s)).collect();
    let out = run_ok(grade_cmd(
        &class,
        &resumed,
        &["--jobs", "2", "--resume", "--keep-workspaces"],
    ));
    times.insert("2 killed and resumed", t.elapsed());
    let (ran, reused) = runs_done(&out.stdout);
    assert_eq!(
        (ran, reused),
        (STUDENTS.len() - finished.len(), finished.len() + 1),
        "the resume redid only the unfinished students (the reference is kept)"
    );
    for (s, id) in finished.iter().zip(before) {
        assert_eq!(identity(&resumed, s), id, "{s} was redone");
    }
    assert_same_grades(&whole, &resumed);

    // 3. Two shards, merged.
    let t = Instant::now();
    let shard1 = work.path().join("shard-1");
    let shard2 = work.path().join("shard-2");
    run_ok(grade_cmd(
        &class,
        &shard1,
        &["--jobs", "2", "--shard", "1/2"],
    ));
    run_ok(grade_cmd(
        &class,
        &shard2,
        &["--jobs", "2", "--shard", "2/2"],
    ));
    let merged = work.path().join("merged");
    let mut merge = kgrade(&["merge"]);
    merge.arg(&shard1).arg(&shard2).arg("--out").arg(&merged);
    run_ok(merge);
    times.insert("3 two shards and a merge", t.elapsed());
    assert_eq!(
        finished_students(&shard1),
        ["alice", "carol", "erin", "gina", "ivan"]
    );
    assert_same_grades(&whole, &merged);
    // A missing shard is refused, naming it.
    let mut partial = kgrade(&["merge"]);
    partial
        .arg(&shard1)
        .arg("--out")
        .arg(work.path().join("partial"));
    let out = partial.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2/2") && err.contains("bob"), "{err}");

    for (what, d) in times {
        eprintln!("demo class: {what}: {:.0} s", d.as_secs_f64());
    }
}
