//! Hostile submissions through the real `kgrade run` on tracker/6.1/x86_64:
//! each must be `rejected` before anything is built, and leave nothing
//! behind (no link made, the pristine tree and the reference untouched).
//!
//! Ignored by default (they need the kernel source `cargo xtask setup`
//! installs); `cargo xtask test` runs them. None builds a kernel.

use kgrade::report::RunResult;
use kgrade::verdict::Verdict;
use std::io::Write;
use std::path::Path;
use std::process::Command;

const TARGET: &str = "tracker/6.1/x86_64";

fn kgrade_run(submission: &Path, out: &Path) -> RunResult {
    let status = Command::new(env!("CARGO_BIN_EXE_kgrade"))
        .args(["run", "--target", TARGET, "--submission"])
        .arg(submission)
        .arg("--out")
        .arg(out)
        .status()
        .expect("kgrade runs");
    assert_eq!(status.code(), Some(1), "{}", submission.display());
    RunResult::read(out).expect("result.json is written")
}

fn assert_rejected(r: &RunResult, why: &str) {
    assert_eq!(r.verdict, Verdict::Rejected, "{}", r.reason);
    assert!(r.reason.contains(why), "{}", r.reason);
    assert!(r.tests.is_empty() && r.syscalls.is_empty(), "{r:?}");
    assert!(!r.reason.chars().any(char::is_control), "{:?}", r.reason);
}

const NEW_LINK: &str =
    "--- /dev/null\n+++ b/kgrade-link\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n";

/// Each spelling made Debian's GNU patch 2.7.6 create a symbolic link.
#[test]
#[ignore = "needs kernel sources; run by `cargo xtask test`"]
fn every_symlink_spelling_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let heads = [
        "new file mode 120000\n",
        "new file mode  120000\n",
        "  new file mode 120000\n",
        "XXnew file mode 120000\n",
        "index 0000000..1111111 120000\n",
        "deleted file mode 120000\n",
        "new file mode 020000\n",
    ];
    for (i, head) in heads.iter().enumerate() {
        let patch = dir.path().join(format!("{i}.patch"));
        std::fs::write(
            &patch,
            format!("diff --git a/kgrade-link b/kgrade-link\n{head}{NEW_LINK}"),
        )
        .unwrap();
        let out = dir.path().join(format!("out-{i}"));
        let r = kgrade_run(&patch, &out);
        assert_rejected(&r, "refused");
        let tree = Path::new(&r.kernel.as_ref().unwrap().tree).to_path_buf();
        assert!(std::fs::symlink_metadata(tree.join("kgrade-link")).is_err());
    }
}

#[test]
#[ignore = "needs kernel sources; run by `cargo xtask test`"]
fn quoted_escapes_and_binary_patches_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, why) in [
        (
            "quoted.patch",
            "diff --git \"a/\\056\\056/x.c\" \"b/\\056\\056/x.c\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/\\056\\056/x.c\"\n@@ -0,0 +1 @@\n+x\n",
            "`../x.c` climbs out",
        ),
        (
            "binary.patch",
            "diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 0\nHcmV?d00001\n\n",
            "git binary patch",
        ),
    ] {
        let patch = dir.path().join(name);
        std::fs::write(&patch, text).unwrap();
        assert_rejected(&kgrade_run(&patch, &dir.path().join(name).with_extension("out")), why);
    }
}

/// A folder whose `patch/` points at the reference solution, and an entry
/// that is itself a link to it: graded as the reference before.
#[test]
#[ignore = "needs kernel sources; run by `cargo xtask test`"]
fn links_to_the_reference_are_rejected() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-patches/tracker/6.1");
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("mallory");
    std::fs::create_dir(&folder).unwrap();
    std::os::unix::fs::symlink(&reference, folder.join("patch")).unwrap();
    assert_rejected(
        &kgrade_run(&folder, &dir.path().join("o1")),
        "patch is a symbolic link",
    );
    let first = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "patch"))
        .unwrap();
    let entry = dir.path().join("eve.patch");
    std::os::unix::fs::symlink(first, &entry).unwrap();
    assert_rejected(
        &kgrade_run(&entry, &dir.path().join("o2")),
        "eve.patch is a symbolic link",
    );
}

/// 64 MiB of zeros in a few KiB of gzip: refused at the cap, in seconds.
#[test]
#[ignore = "needs kernel sources; run by `cargo xtask test`"]
fn a_gzip_bomb_is_rejected_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("patch.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&bomb).unwrap(),
        flate2::Compression::best(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(200 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let zeros = std::io::Read::take(std::io::repeat(0), 200 << 20);
    tar.append_data(&mut h, "patch/zeros.txt", zeros).unwrap();
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    let started = std::time::Instant::now();
    assert_rejected(
        &kgrade_run(&bomb, &dir.path().join("o")),
        "expands to more than",
    );
    assert!(started.elapsed().as_secs() < 60);
}

/// Retargeting a link the kernel tree already has: refused before patch
/// runs, and the pristine tree's link is unchanged.
#[test]
#[ignore = "needs kernel sources; run by `cargo xtask test`"]
fn retargeting_a_link_in_the_tree_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let link = "scripts/dtc/include-prefixes/arm";
    let patch = dir.path().join("retarget.patch");
    std::fs::write(
        &patch,
        format!("diff --git a/{link} b/{link}\n--- a/{link}\n+++ b/{link}\n@@ -1 +1 @@\n-../../../arch/arm/boot/dts\n\\ No newline at end of file\n+/etc\n\\ No newline at end of file\n"),
    )
    .unwrap();
    let r = kgrade_run(&patch, &dir.path().join("o"));
    assert_rejected(&r, "is a symbolic link in the tree");
    let tree = Path::new(&r.kernel.as_ref().unwrap().tree).join(link);
    assert_eq!(
        std::fs::read_link(tree).unwrap(),
        Path::new("../../../arch/arm/boot/dts")
    );
}
