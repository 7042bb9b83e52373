//! `kgrade doctor`: every prerequisite checked, with the command that fixes it.

use crate::process;
use crate::target::Catalog;
use std::path::Path;

/// One check of this machine.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it passed.
    pub ok: bool,
    /// How to fix it when it did not.
    pub fix: String,
}

fn tool(program: &str, package: &str) -> Check {
    Check {
        what: format!("`{program}` on PATH"),
        ok: process::have(program),
        fix: format!("apt-get install {package}"),
    }
}

/// Checks what the catalog's targets need on this machine.
pub fn checks(catalog: &Catalog) -> Vec<Check> {
    let mut out = vec![
        tool("make", "make"),
        tool("flex", "flex"),
        tool("bison", "bison"),
        tool("bc", "bc"),
        tool("patch", "patch"),
        tool("bwrap", "bubblewrap"),
        tool("setpriv", "util-linux"),
        Check {
            what: "the build sandbox starts (bubblewrap, user namespaces)".into(),
            ok: crate::sandbox::Sandbox::probe().is_ok(),
            fix: crate::sandbox::Sandbox::probe()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        },
        tool("ccache", "ccache"),
        Check {
            what: "libelf and openssl headers".into(),
            ok: Path::new("/usr/include/libelf.h").exists()
                && Path::new("/usr/include/openssl/ssl.h").exists(),
            fix: "apt-get install libelf-dev libssl-dev".into(),
        },
    ];
    let mut seen = Vec::new();
    for t in &catalog.targets {
        if !seen.contains(&t.arch_name) {
            seen.push(t.arch_name.clone());
            // Package names come from the arch's entry in targets.toml.
            out.push(tool(&t.arch.qemu, &t.arch.qemu_package));
            let gcc = format!("{}gcc", t.arch.cross_compile);
            out.push(tool(&gcc, &t.arch.packages.join(" ")));
            out.push(Check {
                what: format!("Rust toolchain for the {} guest", t.arch_name),
                ok: crate::guest::available(&catalog.root, &t.arch),
                fix: format!(
                    "cargo xtask setup, or rustup target add {}, or prebuilt guests in $KGRADE_GUEST_DIR (kgrade guests)",
                    t.arch.rust_target.replace("-gnu", "-musl")
                ),
            });
        }
        if let Some(sub) = &t.series.substitute {
            let what = format!(
                "kernel source for series {} ({})",
                t.series_name, sub.package
            );
            // The course's kernel.org tarball, once cached (downloaded, or
            // pre-seeded on an offline node), serves as well: the only source
            // on distributions without Debian's linux-source packages.
            let canonical = &t.series.canonical;
            let file = canonical.url.rsplit('/').next().unwrap_or_default();
            let cached = crate::paths::cache_root().join("tarballs").join(file);
            if !out.iter().any(|c| c.what == what) {
                out.push(Check {
                    what,
                    ok: sub.tarball.is_file() || cached.is_file(),
                    fix: format!(
                        "apt-get install {} (Debian), or put {file} in {} (kgrade downloads it when online), or pass --kernel-src",
                        sub.package,
                        cached.parent().unwrap_or(&cached).display()
                    ),
                });
            }
        }
    }
    out
}

/// Prints the report; true when everything is in place.
pub fn report(checks: &[Check]) -> bool {
    for c in checks {
        if c.ok {
            println!("ok    {}", c.what);
        } else {
            println!("MISSING {}  ->  {}", c.what, c.fix);
        }
    }
    checks.iter().all(|c| c.ok)
}
