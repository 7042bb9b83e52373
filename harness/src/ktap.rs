//! A parser for the guest's KTAP version 1 stream: a top-level plan of
//! suites, each an indented subtest block of cases.
//!
//! The console is shared with the kernel, which may print KTAP of its own
//! (a forged all-`ok` block). A result counts only when it carries the boot's
//! nonce and comes after the guest's `# kgrade-nonce:` header, once per case;
//! every other result line is kept as evidence in [`Stream::rejected`].

use kgrade_protocol::{split_nonce, NONCE_HEADER};

/// One case line as the guest printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseLine {
    /// The suite (`# Subtest:`) it belongs to.
    pub suite: String,
    /// The case's name.
    pub name: String,
    /// `ok` rather than `not ok`.
    pub ok: bool,
    /// Text after ` # ` on the result line, without the nonce (a failure
    /// reason or a directive).
    pub reason: Option<String>,
    /// `# ` lines printed in the block just before this result.
    pub diagnostics: Vec<String>,
    /// Index of the line in the parsed text (kernel messages are placed by it).
    pub line: usize,
}

/// A result line the guest did not print, or not like this.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The suite and case it names (the suite's name and "" for a suite's
    /// result line, both "" for a header line).
    pub suite: String,
    /// See `suite`.
    pub name: String,
    /// Why it is not the guest's.
    pub why: String,
    /// The line as it appeared.
    pub line: String,
}

/// What the guest's KTAP says: the accepted results and the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// The results accepted as the guest's, in console order.
    pub cases: Vec<CaseLine>,
    /// Top-level `# ` lines (e.g. a plan error reported by the guest).
    pub notes: Vec<String>,
    /// Lines that were neither KTAP nor blank: kernel messages that
    /// interleaved with the stream.
    pub foreign: Vec<String>,
    /// Result and header lines that are not the guest's (see the module doc).
    pub rejected: Vec<Rejected>,
    /// Index of the guest's nonce header line, once seen.
    pub header: Option<usize>,
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
        None => match rest.strip_suffix(" #") {
            Some(n) => (n.trim().to_string(), None),
            None => (rest.trim().to_string(), None),
        },
    };
    Some((ok, number, name, reason))
}

/// Evidence lines are shown in reports: one line, bounded.
fn shown(line: &str) -> String {
    const MAX: usize = 160;
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match clean.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &clean[..i]),
        None => clean,
    }
}

/// Checks a result line's nonce; `Err(why)` when it is not the guest's.
/// An empty `nonce` checks nothing (a plan from before nonces).
fn check_nonce(
    nonce: &str,
    header: Option<usize>,
    reason: Option<String>,
) -> Result<Option<String>, &'static str> {
    if nonce.is_empty() {
        return Ok(reason);
    }
    let (tag, rest) = split_nonce(reason.as_deref().unwrap_or(""));
    if header.is_none() {
        return Err("a result before the guest's nonce header");
    }
    match tag {
        Some(t) if t == nonce => Ok(Some(rest.to_string()).filter(|r| !r.is_empty())),
        Some(_) => Err("a result with another nonce"),
        None => Err("a result without this boot's nonce"),
    }
}

/// Parses the lines between the guest's markers. `nonce` is the boot's
/// (empty: results are taken as they come).
pub fn parse(text: &str, nonce: &str) -> Stream {
    let mut stream = Stream::default();
    let mut suite = String::new();
    let mut pending: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim_start_matches(' ');
        let reject = |stream: &mut Stream, suite: &str, name: &str, why: &str| {
            stream.rejected.push(Rejected {
                suite: suite.to_string(),
                name: name.to_string(),
                why: why.to_string(),
                line: shown(line),
            });
        };
        if indent >= 4 {
            if let Some(name) = body.strip_prefix("# Subtest: ") {
                suite = name.trim().to_string();
                pending.clear();
            } else if let Some((ok, _, name, reason)) = result_line(body) {
                let diagnostics = std::mem::take(&mut pending);
                let reason = match check_nonce(nonce, stream.header, reason) {
                    Ok(r) => r,
                    Err(why) => {
                        reject(&mut stream, &suite, &name, why);
                        continue;
                    }
                };
                if stream
                    .cases
                    .iter()
                    .any(|c| c.suite == suite && c.name == name)
                {
                    reject(&mut stream, &suite, &name, "a case reported twice");
                    continue;
                }
                stream.cases.push(CaseLine {
                    suite: suite.clone(),
                    name,
                    ok,
                    reason,
                    diagnostics,
                    line: index,
                });
            } else if let Some(d) = body.strip_prefix('#') {
                pending.push(d.trim().to_string());
            } else if body.starts_with("KTAP version") || body.starts_with("1..") {
                // Block headers carry nothing the catalogue does not.
            } else {
                stream.foreign.push(line.to_string());
            }
        } else if let Some(value) = body.strip_prefix(NONCE_HEADER) {
            let value = value.trim();
            if nonce.is_empty() {
                continue;
            }
            if stream.header.is_some() {
                reject(&mut stream, "", "", "a second nonce header");
            } else if value != nonce {
                reject(&mut stream, "", "", "a nonce header with another nonce");
            } else {
                stream.header = Some(index);
            }
        } else if body.starts_with("KTAP version") || body.starts_with("1..") {
            // The top-level plan: derived from the cases.
        } else if let Some((_, _, name, reason)) = result_line(body) {
            // A suite's summary carries nothing the cases do not, but one the
            // guest did not print is evidence all the same.
            if let Err(why) = check_nonce(nonce, stream.header, reason) {
                reject(&mut stream, &name, "", why);
            }
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
        let s = parse(&text, "");
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
        let s = parse(text, "");
        assert_eq!(s.cases.len(), 1);
        assert_eq!(s.foreign, vec!["[    1.234567] random: crng init done"]);
    }

    #[test]
    fn top_level_notes() {
        let s = parse("KTAP version 1\n1..0\n# plan error: missing file\n", "");
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

    const N: &str = "5eed";

    fn signed(body: &str) -> String {
        format!("KTAP version 1\n1..1\n# kgrade-nonce: {N}\n    KTAP version 1\n    # Subtest: s\n    1..3\n{body}")
    }

    #[test]
    fn results_with_the_nonce_are_taken_and_it_is_not_part_of_the_reason() {
        let s = parse(
            &signed("    ok 1 a # nonce:5eed\n    # why\n    not ok 2 b # nonce:5eed got -22\nnot ok 1 s # nonce:5eed\n"),
            N,
        );
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        assert_eq!(s.header, Some(2));
        assert_eq!(s.cases.len(), 2);
        assert_eq!(s.cases[0].reason, None);
        assert_eq!(s.cases[1].reason.as_deref(), Some("got -22"));
        assert_eq!(s.cases[1].diagnostics, vec!["why"]);
        assert_eq!(s.cases[1].line, 8);
    }

    #[test]
    fn results_without_the_nonce_are_evidence_not_results() {
        let s = parse(
            &signed("    ok 1 a\n    ok 2 b # nonce:bad\n    ok 3 c # nonce:5eed\nok 1 s\n"),
            N,
        );
        assert_eq!(s.cases.len(), 1);
        assert_eq!(s.cases[0].name, "c");
        let whys: Vec<(&str, &str, &str)> = s
            .rejected
            .iter()
            .map(|r| (r.suite.as_str(), r.name.as_str(), r.why.as_str()))
            .collect();
        assert_eq!(
            whys,
            vec![
                ("s", "a", "a result without this boot's nonce"),
                ("s", "b", "a result with another nonce"),
                ("s", "", "a result without this boot's nonce"),
            ]
        );
        assert_eq!(s.rejected[0].line, "    ok 1 a");
    }

    #[test]
    fn results_before_the_header_and_twice_reported_cases_are_evidence() {
        let text = format!(
            "    # Subtest: s\n    ok 1 a # nonce:{N}\n{}    ok 1 a # nonce:{N}\n# kgrade-nonce: {N}\n# kgrade-nonce: beef\n",
            signed(&format!("    ok 1 a # nonce:{N}\n"))
        );
        let s = parse(&text, N);
        assert_eq!(s.cases.len(), 1);
        let whys: Vec<&str> = s.rejected.iter().map(|r| r.why.as_str()).collect();
        assert_eq!(
            whys,
            vec![
                "a result before the guest's nonce header",
                "a case reported twice",
                "a second nonce header",
                "a second nonce header",
            ]
        );
        let s = parse("# kgrade-nonce: beef\n", N);
        assert_eq!(s.rejected[0].why, "a nonce header with another nonce");
        assert_eq!(s.header, None);
    }

    #[test]
    fn evidence_lines_are_bounded_and_printable() {
        let long = format!("    ok 1 \u{1b}[2J{}", "x".repeat(500));
        let s = parse(&signed(&long), N);
        assert_eq!(s.rejected.len(), 1);
        assert!(s.rejected[0].line.chars().count() <= 163);
        assert!(!s.rejected[0].line.contains('\u{1b}'));
    }
}
