//! Finding the student's syscall numbers by name in the patched tree.
//!
//! Kernels keep their tables in different places: `syscall_64.tbl` and
//! `syscall_32.tbl` on x86, `scripts/syscall.tbl` (6.11+) or
//! `include/uapi/asm-generic/unistd.h` (older) on arm64. The arch's list in
//! `configs/targets.toml` says which to try; the first that exists is the one
//! the kernel builds from.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyscallMap {
    /// The table read, relative to the tree.
    pub table: String,
    pub numbers: BTreeMap<String, u32>,
    pub missing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("none of the syscall tables exists in the tree: {0}")]
pub struct NoTable(pub String);

/// Real syscall tables are tens of KB.
const TABLE_CAP: u64 = 2 << 20;

pub fn discover(
    tree: &Path,
    tables: &[String],
    abis: &[String],
    names: &[String],
) -> Result<SyscallMap, NoTable> {
    for rel in tables {
        // The tree is the student's: no links followed (a table pointed at a
        // host file), regular files only, size capped.
        let Ok(bytes) = crate::sandbox::read_untrusted(tree, rel, TABLE_CAP) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let found = if rel.ends_with(".h") {
            from_unistd_h(&text)
        } else {
            from_tbl(&text, abis)
        };
        let mut numbers = BTreeMap::new();
        let mut missing = Vec::new();
        for name in names {
            match lookup(&found, name) {
                Some(n) => {
                    numbers.insert(name.clone(), n);
                }
                None => missing.push(name.clone()),
            }
        }
        return Ok(SyscallMap {
            table: rel.clone(),
            numbers,
            missing,
        });
    }
    Err(NoTable(tables.join(", ")))
}

/// Where the patch's wiring departs from numbers the handout fixes, one
/// sentence per syscall ("pf_set_param is 390 but the spec fixes 385").
pub fn fixed_number_errors(map: &SyscallMap, fixed: &BTreeMap<String, u32>) -> Vec<String> {
    fixed
        .iter()
        .filter_map(|(name, &want)| match map.numbers.get(name) {
            Some(&got) if got == want => None,
            Some(&got) => Some(format!("{name} is {got} but the spec fixes {want}")),
            None => Some(format!(
                "{name} is not in {} but the spec fixes {want}",
                map.table
            )),
        })
        .collect()
}

/// One table row: number, the syscall's name, and its entry point.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub number: u32,
    pub name: String,
    pub entry: String,
}

/// By name first; then by entry point `sys_<name>` (students rename rows but
/// keep the SYSCALL_DEFINE name).
fn lookup(entries: &[Entry], name: &str) -> Option<u32> {
    let entry_names = [
        format!("sys_{name}"),
        format!("__x64_sys_{name}"),
        format!("__ia32_sys_{name}"),
        format!("__arm64_sys_{name}"),
    ];
    entries
        .iter()
        .rev()
        .find(|e| e.name == name)
        .or_else(|| {
            entries
                .iter()
                .rev()
                .find(|e| entry_names.contains(&e.entry))
        })
        .map(|e| e.number)
}

/// `<number> <abi> <name> [<entry point> [<compat entry point>]]`
pub fn from_tbl(text: &str, abis: &[String]) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?;
            let mut f = line.split_whitespace();
            let number = f.next()?.parse().ok()?;
            let abi = f.next()?;
            let name = f.next()?.to_string();
            let entry = f.next().unwrap_or("").to_string();
            abis.iter().any(|a| a == abi).then_some(Entry {
                number,
                name,
                entry,
            })
        })
        .collect()
}

/// `#define __NR_foo 451` paired with `__SYSCALL(__NR_foo, sys_foo)`.
pub fn from_unistd_h(text: &str) -> Vec<Entry> {
    let mut defines: BTreeMap<String, u32> = BTreeMap::new();
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#define ") {
            let mut f = rest.split_whitespace();
            if let (Some(macro_name), Some(value)) = (f.next(), f.next()) {
                if let (Some(stripped), Ok(n)) = (
                    macro_name.strip_prefix("__NR_"),
                    value.trim_matches(|c| c == '(' || c == ')').parse::<u32>(),
                ) {
                    if !stripped.starts_with("syscalls") {
                        defines.insert(macro_name.to_string(), n);
                    }
                }
            }
        }
        for prefix in ["__SYSCALL(", "__SC_COMP(", "__SC_3264(", "__SC_COMP_3264("] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let args: Vec<&str> = rest
                    .trim_end_matches([')', ';'])
                    .split(',')
                    .map(str::trim)
                    .collect();
                if let (Some(nr), Some(entry)) = (args.first(), args.get(1)) {
                    if let Some(&number) = defines.get(*nr) {
                        let name = nr.trim_start_matches("__NR_").to_string();
                        entries.push(Entry {
                            number,
                            name,
                            entry: entry.to_string(),
                        });
                    }
                }
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const TBL: &str = "# comment\n\
        450\tcommon\tset_mempolicy_home_node\tsys_set_mempolicy_home_node\n\
        451\tcommon\tregister\t\tsys_register\n\
        452\t64\tfetch\t\t\tsys_fetch\n\
        453\tx32\tderegister\t\tcompat_sys_deregister\n\
        454\tcommon\tmy_cap\t\t\tsys_resource_cap\n";

    #[test]
    fn tbl_by_name_by_entry_and_by_abi() {
        let e = from_tbl(TBL, &s(&["common", "64"]));
        assert_eq!(lookup(&e, "register"), Some(451));
        assert_eq!(lookup(&e, "fetch"), Some(452));
        assert_eq!(lookup(&e, "deregister"), None, "x32 rows are not native");
        assert_eq!(
            lookup(&e, "resource_cap"),
            Some(454),
            "found by entry point"
        );
    }

    #[test]
    fn i386_table_with_ia32_entries() {
        let t = "385\ti386\tpf_set_param\t\tsys_pf_set_param\n386\ti386\tpf_get_info\t__ia32_sys_pf_get_info\n";
        let e = from_tbl(t, &s(&["i386"]));
        assert_eq!(lookup(&e, "pf_set_param"), Some(385));
        assert_eq!(lookup(&e, "pf_get_info"), Some(386));
    }

    #[test]
    fn asm_generic_unistd_including_student_spellings() {
        let h = "#define __NR_set_mempolicy_home_node 450\n\
                 __SYSCALL(__NR_set_mempolicy_home_node, sys_set_mempolicy_home_node)\n\
                 #define __NR_register 451\n__SYSCALL(__NR_register, sys_register)\n\
                 #define __NR_sys_fetch 452\n__SYSCALL(__NR_sys_fetch, sys_fetch)\n\
                 #undef __NR_syscalls\n#define __NR_syscalls 453\n";
        let e = from_unistd_h(h);
        assert_eq!(lookup(&e, "register"), Some(451));
        assert_eq!(lookup(&e, "fetch"), Some(452));
        assert_eq!(lookup(&e, "syscalls"), None);
    }

    #[test]
    fn discover_uses_the_first_existing_table_and_lists_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("include/uapi/asm-generic")).unwrap();
        std::fs::write(
            dir.path().join("include/uapi/asm-generic/unistd.h"),
            "#define __NR_register 451\n__SYSCALL(__NR_register, sys_register)\n",
        )
        .unwrap();
        let m = discover(
            dir.path(),
            &s(&["scripts/syscall.tbl", "include/uapi/asm-generic/unistd.h"]),
            &s(&["common", "64"]),
            &s(&["register", "fetch"]),
        )
        .unwrap();
        assert_eq!(m.table, "include/uapi/asm-generic/unistd.h");
        assert_eq!(m.numbers["register"], 451);
        assert_eq!(m.missing, vec!["fetch".to_string()]);
        assert!(discover(dir.path(), &s(&["nope.tbl"]), &[], &[]).is_err());
    }

    #[test]
    fn fixed_numbers_are_checked_by_name() {
        let t = "384\ti386\tarch_prctl\tsys_arch_prctl\n\
                 390\ti386\tpf_set_param\tsys_pf_set_param\n\
                 386\ti386\tpf_get_info\tsys_pf_get_info\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("syscall_32.tbl"), t).unwrap();
        let names = s(&["pf_set_param", "pf_get_info", "pf_cleanup"]);
        let map = discover(dir.path(), &s(&["syscall_32.tbl"]), &s(&["i386"]), &names).unwrap();
        let fixed: BTreeMap<String, u32> = [
            ("pf_set_param".to_string(), 385),
            ("pf_get_info".to_string(), 386),
            ("pf_cleanup".to_string(), 387),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            fixed_number_errors(&map, &fixed),
            [
                "pf_cleanup is not in syscall_32.tbl but the spec fixes 387",
                "pf_set_param is 390 but the spec fixes 385",
            ]
        );
        let right = t.replace("390", "385") + "387\ti386\tpf_cleanup\tsys_pf_cleanup\n";
        std::fs::write(dir.path().join("syscall_32.tbl"), right).unwrap();
        let map = discover(dir.path(), &s(&["syscall_32.tbl"]), &s(&["i386"]), &names).unwrap();
        assert!(fixed_number_errors(&map, &fixed).is_empty());
    }
}
