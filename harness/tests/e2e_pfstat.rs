//! End-to-end runs of pfstat on Debian's 6.1 stand-in (i386): the handout's
//! submission format, and the check of the fixed syscall numbers.
//!
//! Ignored by default (they build an i386 kernel and boot it under QEMU);
//! `cargo xtask test` runs them with `--run-ignored all`.

use kgrade::report::RunResult;
use kgrade::verdict::{Outcome, Verdict};
use std::path::Path;
use std::process::Command;

const TARGET: &str = "pfstat/6.1/i386";
const SOME_CASES: &[&str] = &[
    "set_param.bad_pointer_is_efault",
    "cow.child_writes_counted",
    "vmas.match_proc_maps",
];

/// The reference, packed as the handout asks: patch.tar.gz holding patch/*.patch.
fn reference_as_patch_tar_gz(dir: &Path) -> std::path::PathBuf {
    let reference = kgrade::paths::project_root().join("kernel-patches/pfstat/6.1");
    let tarball = dir.join("patch.tar.gz");
    let file = std::fs::File::create(&tarball).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut names: Vec<_> = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    for p in names {
        let name = format!("patch/{}", p.file_name().unwrap().to_string_lossy());
        tar.append_path_with_name(&p, name).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    tarball
}

#[test]
#[ignore = "builds and boots an i386 kernel; run by `cargo xtask test`"]
fn the_reference_as_patch_tar_gz_passes() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = reference_as_patch_tar_gz(dir.path());
    let out = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kgrade"));
    cmd.args(["run", "--target", TARGET, "--submission"])
        .arg(&tarball)
        .arg("--out")
        .arg(&out);
    for case in SOME_CASES {
        cmd.args(["--only", case]);
    }
    let status = cmd.status().expect("kgrade runs");
    let r = RunResult::read(&out).expect("result.json is written");
    assert_eq!(r.verdict, Verdict::Pass, "{}: {:?}", r.reason, r.tests);
    assert_eq!(status.code(), Some(0));
    assert!(
        r.submission_origin.ends_with("patch.tar.gz"),
        "{}",
        r.submission_origin
    );
    assert_eq!(r.tests.len(), SOME_CASES.len());
    assert_eq!(r.syscalls["pf_set_param"], 451);
    assert_eq!(r.syscalls["pf_cleanup"], 453);
    assert!(r.wrong_syscall_numbers.is_empty());
    let k = r.kernel.unwrap();
    assert!(!k.tree.is_empty() && k.tarball_sha256.is_some(), "{k:?}");
}

/// The reference with its syscalls moved to 454-456, as a directory of
/// patches (its own workspace: the reference's build is left alone): the
/// tests pass with the numbers found, and the run fails, naming each one.
#[test]
#[ignore = "builds and boots an i386 kernel; run by `cargo xtask test`"]
fn syscalls_away_from_the_fixed_numbers_fail_the_run() {
    let reference = kgrade::paths::project_root().join("kernel-patches/pfstat/6.1");
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("patch");
    std::fs::create_dir(&sub).unwrap();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "patch") {
            let mut text = std::fs::read_to_string(&p).unwrap();
            for (from, to) in [
                ("+451\t", "+454\t"),
                ("+452\t", "+455\t"),
                ("+453\t", "+456\t"),
            ] {
                text = text.replace(from, to);
            }
            std::fs::write(sub.join(p.file_name().unwrap()), text).unwrap();
        }
    }
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_kgrade"))
        .args([
            "run",
            "--target",
            TARGET,
            "--only",
            "cow.child_writes_counted",
        ])
        .arg("--submission")
        .arg(&sub)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("kgrade runs");
    let r = RunResult::read(&out).expect("result.json is written");
    assert_eq!(status.code(), Some(1));
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(
        r.reason.starts_with(
            "pf_cleanup is 456 but the spec fixes 453; pf_get_info is 455 but the spec fixes 452; \
             pf_set_param is 454 but the spec fixes 451; tests ran with the patch's own numbers"
        ),
        "{}",
        r.reason
    );
    assert_eq!(r.syscalls["pf_set_param"], 454);
    assert_eq!(r.tests[0].outcome, Outcome::Pass, "{:?}", r.tests);
    assert_eq!(r.wrong_syscall_numbers.len(), 3);
}
