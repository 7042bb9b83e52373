//! Hostile submissions against the build sandbox, on real kernels
//! (tracker/6.1/x86_64): each asserts what the attack could reach, not only
//! the verdict. Ignored by default; `cargo xtask test` runs them.

use kgrade::report::RunResult;
use kgrade::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TARGET: &str = "tracker/6.1/x86_64";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A unique word for this test run.
fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("kgrade{}x{}", std::process::id(), t)
}

/// The reference series plus a fourth patch that makes `init/Makefile` run
/// `script` (a shell script, as a new file) while the kernel builds.
fn hostile_submission(dir: &Path, script: &str) -> PathBuf {
    let sub = dir.join("student");
    std::fs::create_dir_all(&sub).unwrap();
    let reference = root().join("kernel-patches/tracker/6.1");
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "patch") {
            std::fs::copy(&p, sub.join(p.file_name().unwrap())).unwrap();
        }
    }
    let lines: Vec<&str> = script.lines().collect();
    let mut patch = String::from(
        "diff --git a/init/Makefile b/init/Makefile\n--- a/init/Makefile\n+++ b/init/Makefile\n\
         @@ -58,4 +58,6 @@ $(obj)/version-timestamp.o: include/generated/utsversion.h\n\
         \x20\t$(call filechk,uts_version)\n\x20\n\
         \x20$(obj)/version-timestamp.o: include/generated/utsversion.h\n\
         \x20CFLAGS_version-timestamp.o := -include include/generated/utsversion.h\n\
         +\n+$(shell sh $(srctree)/init/probe.sh >&2)\n",
    );
    patch.push_str(&format!(
        "diff --git a/init/probe.sh b/init/probe.sh\nnew file mode 100644\n--- /dev/null\n+++ b/init/probe.sh\n@@ -0,0 +1,{} @@\n",
        lines.len()
    ));
    for l in lines {
        patch.push('+');
        patch.push_str(l);
        patch.push('\n');
    }
    std::fs::write(sub.join("0004-probe.patch"), patch).unwrap();
    sub
}

fn kgrade_run(submission: &Path, out: &Path, extra: &[&str], secret: &str) -> RunResult {
    let status = Command::new(env!("CARGO_BIN_EXE_kgrade"))
        .args(["run", "--target", TARGET, "--submission"])
        .arg(submission)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("KGRADE_TEST_SECRET", secret)
        .env("GITHUB_TOKEN", secret)
        .status()
        .expect("kgrade runs");
    assert!(status.code().is_some(), "kgrade was killed");
    RunResult::read(out).expect("result.json is written")
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn build_code_reaches_nothing_outside_its_workspace() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cache = kgrade::paths::cache_root();
    let outside = [
        std::env::temp_dir().join(format!("{t}-tmp")),
        out.join(format!("{t}-results")),
        cache.join("ccache-shared").join(format!("{t}-ccache")),
        PathBuf::from("/root").join(format!("{t}-home")),
        root().join(format!("{t}-repo")),
    ];
    let mut script = String::from("echo PROBE-START; id -u\n");
    for p in &outside {
        let p = p.display();
        script.push_str(&format!(
            "mkdir -p \"$(dirname {p})\" 2>/dev/null; echo x > {p} 2>/dev/null && echo wrote-in-its-own-view\n"
        ));
    }
    script.push_str(&format!(
        "echo x > /kgrade/ccache/{t} 2>/dev/null && echo BREACH-CCACHE\n\
         echo x >> $(srctree)/Makefile 2>/dev/null && echo BREACH-SRC\n\
         env | grep -i -e secret -e token -e github -e kgrade_ && echo LEAKED-ENV\n\
         find / -xdev \\( -name kernel-patches -o -name '0001-tracker*' -o -name result.json -o -name 'students' \\) 2>/dev/null | sed 's/^/FOUND /'\n\
         ls /work /root /home 2>/dev/null | sed 's/^/FOUND /'\n\
         bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo NET-LOOPBACK\n\
         bash -c 'echo hi > /dev/tcp/1.1.1.1/80' 2>/dev/null && echo NET-OUT\n\
         setsid sh -c 'exec -a {t}-daemon sh -c \"while :; do sleep 1; done\"' </dev/null >/dev/null 2>&1 &\n\
         echo PROBE-END\n"
    ));
    let sub = hostile_submission(dir.path(), &script);
    let r = kgrade_run(&sub, &out, &[], &t);
    let log = std::fs::read_to_string(out.join("build.log")).unwrap();
    // The build itself still works in the sandbox: the reference passes.
    assert_eq!(r.verdict, Verdict::Pass, "{}\n{log}", r.reason);
    assert!(
        log.contains("PROBE-START") && log.contains("PROBE-END"),
        "{log}"
    );
    assert!(log.contains("\n65534\n"), "the build runs as nobody: {log}");
    // Paths under /tmp land in the build's own /tmp: what counts is the
    // host's view, checked below.
    for bad in [
        "BREACH-CCACHE",
        "BREACH-SRC",
        "LEAKED-ENV",
        "FOUND",
        "NET-LOOPBACK",
        "NET-OUT",
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(bad)).collect();
        assert!(hits.is_empty(), "{bad}: {hits:?}");
    }
    for p in &outside {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert!(
        listener.accept().is_err(),
        "the build reached the host's loopback"
    );
    let left = Command::new("pgrep")
        .args(["-f", &format!("{t}-daemon")])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "a build process outlived the run");
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_hanging_build_stops_at_its_limit_and_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sub = hostile_submission(dir.path(), "sleep 100000\n");
    let limit = 90;
    let started = Instant::now();
    let r = kgrade_run(&sub, &out, &["--build-timeout", &limit.to_string()], "x");
    assert_eq!(r.verdict, Verdict::BuildFailed, "{}", r.reason);
    assert!(r.reason.contains("time limit of 90 s"), "{}", r.reason);
    let waited = r.timings_s.get("wait").copied().unwrap_or(0.0);
    let took = started.elapsed().as_secs_f64() - waited;
    assert!(took < (limit + 30) as f64 + 60.0, "took {took} s");
    let lock = kgrade::paths::FileLock::acquire_file(&kgrade::paths::build_lock());
    assert!(lock.is_ok());
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn a_flooding_build_is_stopped_and_its_log_capped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sub = hostile_submission(dir.path(), "yes 'flood flood flood flood'\n");
    let r = kgrade_run(&sub, &out, &[], "x");
    assert_eq!(r.verdict, Verdict::BuildFailed, "{}", r.reason);
    assert!(r.reason.contains("output exceeded"), "{}", r.reason);
    let size = std::fs::metadata(out.join("build.log")).unwrap().len();
    assert!(size < 2 << 20, "build.log is {size} bytes");
    let log = std::fs::read_to_string(out.join("build.log")).unwrap();
    assert!(
        log.contains("bytes of output cut here"),
        "the log says it was cut"
    );
}

#[test]
#[ignore = "builds and boots real kernels; run by `cargo xtask test`"]
fn an_absolute_include_shows_nothing_of_the_host_file() {
    let t = token();
    let secret = std::env::temp_dir().join(format!("{t}.h"));
    std::fs::write(&secret, format!("{t}-line-one\n{t}-line-two\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "printf '#include \"{}\"\\n#include \"/etc/shadow\"\\n#include \"/root/.bashrc\"\\n' > /tmp/x.c\n\
         gcc -c /tmp/x.c -o /tmp/x.o || echo include-failed\n",
        secret.display()
    );
    let sub = hostile_submission(dir.path(), &script);
    let r = kgrade_run(&sub, &out, &[], "x");
    let _ = std::fs::remove_file(&secret);
    let mut everything = std::fs::read_to_string(out.join("build.log")).unwrap();
    everything.push_str(&std::fs::read_to_string(out.join("result.json")).unwrap());
    assert!(everything.contains("include-failed"), "{everything}");
    assert!(!everything.contains("-line-one"), "the host file leaked");
    assert!(!everything.contains("root:"), "/etc/shadow leaked");
    assert!(!everything.contains("PS1"), "/root/.bashrc leaked");
    // The kernel itself is unaffected: the probe's compile is its own.
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
}
