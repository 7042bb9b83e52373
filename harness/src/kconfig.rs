//! Kernel configuration: `tinyconfig` plus fragments, then `olddefconfig`,
//! then a check that every wanted option survived.

use std::collections::BTreeMap;
use std::path::Path;

/// What a fragment asks of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `CONFIG_X=y`, `=m`, a number or a string: must appear exactly so.
    Value(String),
    /// `CONFIG_X=n` or `# CONFIG_X is not set`: must not be enabled.
    Off,
}

/// Options requested by fragments, later fragments overriding earlier ones.
pub fn parse_fragments(texts: &[String]) -> BTreeMap<String, Want> {
    let mut wants = BTreeMap::new();
    for text in texts {
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
                .filter(|n| n.starts_with("CONFIG_"))
            {
                wants.insert(name.to_string(), Want::Off);
            } else if line.starts_with("CONFIG_") {
                if let Some((name, value)) = line.split_once('=') {
                    let want = if value == "n" {
                        Want::Off
                    } else {
                        Want::Value(value.to_string())
                    };
                    wants.insert(name.to_string(), want);
                }
            }
        }
    }
    wants
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_fragments_override_and_off_forms_agree() {
        let w = parse_fragments(&[
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n".into(),
            "CONFIG_C=n\nCONFIG_D=\"x y\"\n# comment\n".into(),
        ]);
        assert_eq!(w["CONFIG_A"], Want::Value("y".into()));
        assert_eq!(w["CONFIG_B"], Want::Off);
        assert_eq!(w["CONFIG_C"], Want::Off);
        assert_eq!(w["CONFIG_D"], Want::Value("\"x y\"".into()));
    }

    #[test]
    fn a_dropped_option_is_named() {
        let w = parse_fragments(&["CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=n\nCONFIG_N=10\n".into()]);
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
