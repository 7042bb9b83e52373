//! Kernel configuration: `tinyconfig` plus fragments, then `olddefconfig`,
//! then a check that every wanted option survived.
//!
//! One fragment serves several kernel series, and some options exist only in
//! some of them (COMPAT_32BIT_TIME is 5.1+). A `# kgrade: if-present` line
//! makes the next option conditional: it is set and verified only in a tree
//! whose Kconfig files declare it. Every other option must exist and survive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The directive that makes the next option apply only where it exists.
pub const IF_PRESENT: &str = "# kgrade: if-present";

/// What a fragment asks of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `CONFIG_X=y`, `=m`, a number or a string: must appear exactly so.
    Value(String),
    /// `CONFIG_X=n` or `# CONFIG_X is not set`: must not be enabled.
    Off,
}

/// One option as the fragments ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub want: Want,
    /// Only where the tree declares the option (`# kgrade: if-present`).
    pub if_present: bool,
}

/// A fragment line kgrade cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("fragment {fragment}, line {line}: {message}")]
pub struct FragmentError {
    pub fragment: usize,
    pub line: usize,
    pub message: String,
}

/// Options requested by fragments, later fragments overriding earlier ones.
pub fn parse_fragments(texts: &[String]) -> Result<BTreeMap<String, Wanted>, FragmentError> {
    let mut wants = BTreeMap::new();
    for (f, text) in texts.iter().enumerate() {
        let err = |line: usize, message: String| FragmentError {
            fragment: f + 1,
            line: line + 1,
            message,
        };
        let mut if_present = false;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let option = if let Some(name) = line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
                .filter(|n| n.starts_with("CONFIG_"))
            {
                Some((name.to_string(), Want::Off))
            } else if line.starts_with("CONFIG_") {
                let (name, value) = line
                    .split_once('=')
                    .ok_or_else(|| err(n, format!("`{line}` has no `=`")))?;
                let want = if value == "n" {
                    Want::Off
                } else {
                    Want::Value(value.to_string())
                };
                Some((name.to_string(), want))
            } else if line == IF_PRESENT {
                if if_present {
                    return Err(err(n, format!("two `{IF_PRESENT}` lines in a row")));
                }
                if_present = true;
                None
            } else if line.starts_with("# kgrade:") {
                return Err(err(
                    n,
                    format!("unknown directive `{line}` (known: `{IF_PRESENT}`)"),
                ));
            } else {
                None
            };
            if let Some((name, want)) = option {
                wants.insert(name, Wanted { want, if_present });
                if_present = false;
            }
        }
        if if_present {
            return Err(err(
                text.lines().count().saturating_sub(1),
                format!("`{IF_PRESENT}` is not followed by an option"),
            ));
        }
    }
    Ok(wants)
}

/// The options that apply to a tree: conditional ones only where `declared`
/// says the tree has them.
pub fn applicable(
    wants: &BTreeMap<String, Wanted>,
    declared: impl Fn(&str) -> bool,
) -> BTreeMap<String, Want> {
    wants
        .iter()
        .filter(|(name, w)| !w.if_present || declared(name.trim_start_matches("CONFIG_")))
        .map(|(name, w)| (name.clone(), w.want.clone()))
        .collect()
}

/// The config symbols a tree's Kconfig files declare for one source arch
/// (`x86`, `arm64`): other arches' directories are not read.
pub fn declared_symbols(tree: &Path, srcarch: &str) -> std::io::Result<BTreeSet<String>> {
    let mut symbols = BTreeSet::new();
    let mut dirs = vec![tree.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                let other_arch = dir.as_path() == tree.join("arch") && name != srcarch;
                if !other_arch && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if kind.is_file() && name.starts_with("Kconfig") {
                let text = std::fs::read_to_string(&path)?;
                symbols.extend(kconfig_declarations(&text));
            }
        }
    }
    Ok(symbols)
}

/// `config FOO` and `menuconfig FOO` lines of one Kconfig file.
fn kconfig_declarations(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("config" | "menuconfig"), Some(sym), None) => Some(sym.to_string()),
            _ => None,
        }
    })
}

/// The kernel's source directory under arch/ for a make ARCH.
pub fn srcarch(make_arch: &str) -> &str {
    match make_arch {
        "i386" | "x86_64" => "x86",
        other => other,
    }
}

/// Text to append to the `.config` that `tinyconfig` wrote.
pub fn fragment_text(wants: &BTreeMap<String, Want>) -> String {
    let mut s = String::from("\n# kgrade fragments\n");
    for (name, want) in wants {
        match want {
            Want::Value(v) => s.push_str(&format!("{name}={v}\n")),
            Want::Off => s.push_str(&format!("# {name} is not set\n")),
        }
    }
    s
}

/// Options that `olddefconfig` dropped or changed, described one per line
/// (empty when everything survived).
pub fn dropped(wants: &BTreeMap<String, Want>, final_config: &str) -> Vec<String> {
    let mut have: BTreeMap<&str, &str> = BTreeMap::new();
    for line in final_config.lines() {
        if let Some((name, value)) = line.split_once('=') {
            if name.starts_with("CONFIG_") {
                have.insert(name, value);
            }
        }
    }
    let mut missing = Vec::new();
    for (name, want) in wants {
        let got = have.get(name.as_str()).copied();
        match want {
            Want::Value(v) if got != Some(v.as_str()) => missing.push(format!(
                "{name}={v} (got {})",
                got.map(|g| format!("{name}={g}"))
                    .unwrap_or_else(|| "not set".into())
            )),
            Want::Off if matches!(got, Some("y") | Some("m")) => {
                missing.push(format!("{name} off (got {name}={})", got.unwrap_or("")))
            }
            _ => {}
        }
    }
    missing
}

/// Reads the fragment files in order.
pub fn read_fragments(paths: &[impl AsRef<Path>]) -> std::io::Result<Vec<String>> {
    paths.iter().map(std::fs::read_to_string).collect()
}

/// Whether `rel` (a path in the kernel tree) is read when the kernel is
/// configured: any Kconfig file, the `make` files a config target reads (the
/// top Makefile and the arch's), the scripts (conf itself, the compiler
/// probes) and the config fragments `tinyconfig` merges. A patch that changes
/// none of these leaves `make tinyconfig` + fragments + `olddefconfig` with
/// the same result.
pub fn read_by_configure(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let name = parts.last().copied().unwrap_or("");
    name.starts_with("Kconfig")
        || rel == "Makefile"
        || matches!(parts.as_slice(), ["arch", _, "Makefile"])
        || parts.first() == Some(&"scripts")
        || rel.starts_with("kernel/configs/")
        || matches!(parts.as_slice(), ["arch", _, "configs", ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_reads_kconfig_files_config_makefiles_scripts_and_fragments() {
        for rel in [
            "init/Kconfig",
            "kernel/tracker/Kconfig",
            "arch/x86/Kconfig.debug",
            "Makefile",
            "arch/x86/Makefile",
            "scripts/kconfig/conf.c",
            "scripts/Kconfig.include",
            "kernel/configs/tiny.config",
            "arch/x86/configs/tiny.config",
        ] {
            assert!(read_by_configure(rel), "{rel}");
        }
        for rel in [
            "kernel/Makefile",
            "kernel/tracker/tracker.c",
            "include/linux/syscalls.h",
            "arch/x86/entry/syscalls/syscall_64.tbl",
            "arch/x86/kernel/Makefile",
            "Documentation/kbuild/kconfig-language.rst",
        ] {
            assert!(!read_by_configure(rel), "{rel}");
        }
    }

    fn plain(texts: &[&str]) -> BTreeMap<String, Want> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        applicable(&parse_fragments(&texts).unwrap(), |_| true)
    }

    #[test]
    fn later_fragments_override_and_off_forms_agree() {
        let w = plain(&[
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n",
            "CONFIG_C=n\nCONFIG_D=\"x y\"\n# comment\n",
        ]);
        assert_eq!(w["CONFIG_A"], Want::Value("y".into()));
        assert_eq!(w["CONFIG_B"], Want::Off);
        assert_eq!(w["CONFIG_C"], Want::Off);
        assert_eq!(w["CONFIG_D"], Want::Value("\"x y\"".into()));
    }

    #[test]
    fn if_present_options_apply_only_where_declared() {
        let text = "CONFIG_A=y\n# kgrade: if-present\n# only 6.x has it\nCONFIG_T=y\nCONFIG_B=y\n";
        let w = parse_fragments(&[text.to_string()]).unwrap();
        assert!(w["CONFIG_T"].if_present);
        assert!(!w["CONFIG_A"].if_present && !w["CONFIG_B"].if_present);
        let old = applicable(&w, |s| s != "T");
        assert!(!old.contains_key("CONFIG_T"));
        assert!(old.contains_key("CONFIG_B"));
        // An absent if-present option is neither written nor verified...
        assert!(!fragment_text(&old).contains("CONFIG_T"));
        assert!(dropped(&old, "CONFIG_A=y\nCONFIG_B=y\n").is_empty());
        // ...but where the tree has it, it must survive like any other.
        let new = applicable(&w, |_| true);
        assert_eq!(
            dropped(&new, "CONFIG_A=y\nCONFIG_B=y\n"),
            ["CONFIG_T=y (got not set)"]
        );
        // A plain option missing from the tree still fails.
        assert_eq!(
            dropped(&applicable(&w, |s| s != "B"), "CONFIG_A=y\nCONFIG_T=y\n"),
            ["CONFIG_B=y (got not set)"]
        );
    }

    #[test]
    fn directive_mistakes_are_errors() {
        let e = |t: &str| parse_fragments(&["CONFIG_A=y\n".into(), t.into()]).unwrap_err();
        assert_eq!(
            e("# kgrade: if-present\n").to_string(),
            "fragment 2, line 1: `# kgrade: if-present` is not followed by an option"
        );
        assert!(
            e("# kgrade: if-present\n# kgrade: if-present\nCONFIG_X=y\n")
                .message
                .contains("two")
        );
        assert!(e("# kgrade: optional\nCONFIG_X=y\n")
            .message
            .contains("unknown directive"));
        assert_eq!(e("CONFIG_X\n").line, 1);
    }

    #[test]
    fn declared_symbols_skip_other_arches() {
        let tree = tempfile::tempdir().unwrap();
        let p = tree.path();
        for d in ["init", "arch/x86", "arch/arm64"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(
            p.join("init/Kconfig"),
            "menu \"x\"\nconfig PRINTK\n\tbool\nmenuconfig EXPERT\n  config  FUTEX  \n# config NOPE\n",
        )
        .unwrap();
        std::fs::write(p.join("arch/x86/Kconfig"), "config X86\n").unwrap();
        std::fs::write(
            p.join("arch/arm64/Kconfig.platforms"),
            "config ARM64_ONLY\n",
        )
        .unwrap();
        let s = declared_symbols(p, srcarch("i386")).unwrap();
        let want: Vec<&str> = vec!["EXPERT", "FUTEX", "PRINTK", "X86"];
        assert_eq!(s.iter().map(String::as_str).collect::<Vec<_>>(), want);
        assert!(declared_symbols(p, srcarch("arm64"))
            .unwrap()
            .contains("ARM64_ONLY"));
    }

    #[test]
    fn the_project_fragments_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/kernel");
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            parse_fragments(&[text]).unwrap();
        }
    }

    #[test]
    fn a_dropped_option_is_named() {
        let w = plain(&["CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=n\nCONFIG_N=10\n"]);
        let fin = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_N=20\n";
        let d = dropped(&w, fin);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("CONFIG_B=y (got not set)"));
        assert!(d.iter().any(|x| x.contains("CONFIG_C off")));
        assert!(d
            .iter()
            .any(|x| x.contains("CONFIG_N=10 (got CONFIG_N=20)")));
        assert!(dropped(&w, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_N=10\n").is_empty());
    }
}
