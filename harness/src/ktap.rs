//! A parser for the guest's KTAP version 1 stream: a top-level plan of
//! suites, each an indented subtest block of cases.

/// One case line as the guest printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseLine {
    pub suite: String,
    pub name: String,
    pub ok: bool,
    /// Text after ` # ` on the result line (a failure reason or a directive).
    pub reason: Option<String>,
    /// `# ` lines printed in the block just before this result.
    pub diagnostics: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    pub cases: Vec<CaseLine>,
    /// Top-level `# ` lines (e.g. a plan error reported by the guest).
    pub notes: Vec<String>,
    /// Lines that were neither KTAP nor blank: kernel messages that
    /// interleaved with the stream.
    pub foreign: Vec<String>,
}

/// `ok 3 name # reason` -> (true, 3, "name", Some("reason"))
fn result_line(line: &str) -> Option<(bool, u32, String, Option<String>)> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let number = num.parse().ok()?;
    let (name, reason) = match rest.split_once(" # ") {
        Some((n, r)) => (n.trim().to_string(), Some(r.trim().to_string())),
        None => (rest.trim().to_string(), None),
    };
    Some((ok, number, name, reason))
}

/// Parses the lines between the guest's markers.
pub fn parse(text: &str) -> Stream {
    let mut stream = Stream::default();
    let mut suite = String::new();
    let mut pending: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim_start_matches(' ');
        if indent >= 4 {
            if let Some(name) = body.strip_prefix("# Subtest: ") {
                suite = name.trim().to_string();
                pending.clear();
            } else if let Some((ok, _, name, reason)) = result_line(body) {
                stream.cases.push(CaseLine {
                    suite: suite.clone(),
                    name,
                    ok,
                    reason,
                    diagnostics: std::mem::take(&mut pending),
                });
            } else if let Some(d) = body.strip_prefix('#') {
                pending.push(d.trim().to_string());
            } else if body.starts_with("KTAP version") || body.starts_with("1..") {
                // Block headers carry nothing the catalogue does not.
            } else {
                stream.foreign.push(line.to_string());
            }
        } else if body.starts_with("KTAP version")
            || body.starts_with("1..")
            || result_line(body).is_some()
        {
            // Top-level plan and suite summaries: derived from the cases.
        } else if let Some(d) = body.strip_prefix('#') {
            stream.notes.push(d.trim().to_string());
        } else {
            stream.foreign.push(line.to_string());
        }
    }
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: register\n    1..2\n\
        ok 1 self_returns_zero\n    # expected 0\n    # got -22\n    not ok 2 other_process # expected 0, got -22\n\
        not ok 1 register\n    KTAP version 1\n    # Subtest: fetch\n    1..1\n    ok 1 fresh_entry_is_zero\nok 2 fetch\n";

    #[test]
    fn cases_with_suites_reasons_and_diagnostics() {
        // The first case line lost its indent: it is still a top-level result,
        // which is ignored, so build the stream from well-formed lines.
        let text = SAMPLE.replace("\nok 1 self_returns_zero", "\n    ok 1 self_returns_zero");
        let s = parse(&text);
        assert_eq!(s.cases.len(), 3);
        assert_eq!(s.cases[0].suite, "register");
        assert!(s.cases[0].ok);
        assert_eq!(s.cases[1].name, "other_process");
        assert!(!s.cases[1].ok);
        assert_eq!(s.cases[1].reason.as_deref(), Some("expected 0, got -22"));
        assert_eq!(s.cases[1].diagnostics, vec!["expected 0", "got -22"]);
        assert_eq!(s.cases[2].suite, "fetch");
        assert!(s.foreign.is_empty());
    }

    #[test]
    fn kernel_lines_in_between_are_set_aside() {
        let text = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: files\n    1..1\n\
            [    1.234567] random: crng init done\n    ok 1 open_counted\nok 1 files\n";
        let s = parse(text);
        assert_eq!(s.cases.len(), 1);
        assert_eq!(s.foreign, vec!["[    1.234567] random: crng init done"]);
    }

    #[test]
    fn top_level_notes() {
        let s = parse("KTAP version 1\n1..0\n# plan error: missing file\n");
        assert!(s.cases.is_empty());
        assert_eq!(s.notes, vec!["plan error: missing file"]);
    }

    #[test]
    fn a_reason_may_contain_hashes_after_the_first_separator() {
        let (ok, n, name, reason) =
            result_line("not ok 7 x # TIMEOUT after 5000 ms # again").unwrap();
        assert!(!ok);
        assert_eq!(n, 7);
        assert_eq!(name, "x");
        assert_eq!(reason.as_deref(), Some("TIMEOUT after 5000 ms # again"));
    }
}
