//! KTAP version 1 lines, as the host's parser reads them: one subtest block
//! per suite, indented by four spaces, and a failing case's reason after
//! ` # ` on its `not ok` line, its other message lines as `# ` diagnostics
//! just before it. Every result line carries the boot's nonce as the first
//! thing after ` # `, announced by a `# kgrade-nonce:` header line, so the
//! host can tell the guest's results from KTAP a kernel prints.

use kgrade_protocol::{nonce_header, nonce_tag};

const INDENT: &str = "    ";
/// A reason longer than this is cut; it is a summary, not a log.
const REASON_MAX: usize = 160;
const DIAG_MAX: usize = 200;
const DIAG_LINES: usize = 12;

/// Writes one line to the console with a single write(2), so that kernel
/// messages can only come between whole lines, never inside one.
pub fn emit(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    crate::sys::write_all(1, buf.as_bytes());
}

/// Makes text safe for one KTAP line: control characters escaped, cut to
/// `max` characters; in a reason `#` becomes `%23` (the host splits on it).
pub fn sanitize(text: &str, max: usize, in_reason: bool) -> String {
    let mut out = String::new();
    for (count, ch) in text.chars().enumerate() {
        if count == max {
            out.push_str("...");
            break;
        }
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '#' if in_reason => out.push_str("%23"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// The stream's opening: version, plan and (when the plan has one) the
/// nonce header.
pub fn header(suites: usize, nonce: &str) -> Vec<String> {
    let mut lines = vec!["KTAP version 1".into(), format!("1..{suites}")];
    if !nonce.is_empty() {
        lines.push(nonce_header(nonce));
    }
    lines
}

/// ` # nonce:<n>` and then `reason`, or nothing at all on a pass without
/// nonce.
fn tail(nonce: &str, reason: Option<&str>) -> String {
    match (nonce.is_empty(), reason) {
        (true, None) => String::new(),
        (true, Some(r)) => format!(" # {r}"),
        (false, None) => format!(" # {}", nonce_tag(nonce)),
        (false, Some(r)) => format!(" # {} {r}", nonce_tag(nonce)),
    }
}

/// A top-level `# ` note.
pub fn note(text: &str) -> String {
    format!("# {}", sanitize(text, DIAG_MAX, false))
}

/// The opening of a suite's subtest block.
pub fn suite_header(name: &str, cases: usize) -> Vec<String> {
    vec![
        format!("{INDENT}KTAP version 1"),
        format!("{INDENT}# Subtest: {name}"),
        format!("{INDENT}1..{cases}"),
    ]
}

/// A suite's result line at the top level.
pub fn suite_result(number: usize, name: &str, ok: bool, nonce: &str) -> String {
    format!(
        "{}ok {number} {name}{}",
        if ok { "" } else { "not " },
        tail(nonce, None)
    )
}

/// How one case ended, as its result line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
}

/// A case's lines in its suite block: diagnostics, then the result.
pub fn case_lines(number: usize, name: &str, outcome: &Outcome, nonce: &str) -> Vec<String> {
    let message = match outcome {
        Outcome::Pass => return vec![format!("{INDENT}ok {number} {name}{}", tail(nonce, None))],
        Outcome::Fail(m) => m,
    };
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let reason = lines
        .next()
        .map(|l| sanitize(l, REASON_MAX, true))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "failed".into());
    let rest: Vec<&str> = lines.collect();
    let mut out: Vec<String> = rest
        .iter()
        .take(DIAG_LINES)
        .map(|l| format!("{INDENT}# {}", sanitize(l, DIAG_MAX, false)))
        .collect();
    if rest.len() > DIAG_LINES {
        out.push(format!(
            "{INDENT}# ... {} more lines",
            rest.len() - DIAG_LINES
        ));
    }
    out.push(format!(
        "{INDENT}not ok {number} {name}{}",
        tail(nonce, Some(&reason))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_block_as_printed() {
        let mut lines = header(1, "");
        lines.extend(suite_header("register", 2));
        lines.extend(case_lines(1, "self_returns_zero", &Outcome::Pass, ""));
        lines.extend(case_lines(
            2,
            "other_process",
            &Outcome::Fail("register(child): expected 0, got -22 (EINVAL)\nchild pid 42".into()),
            "",
        ));
        lines.push(suite_result(1, "register", false, ""));
        assert_eq!(
            lines.join("\n"),
            "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: register\n    1..2\n    \
             ok 1 self_returns_zero\n    # child pid 42\n    not ok 2 other_process # \
             register(child): expected 0, got -22 (EINVAL)\nnot ok 1 register"
        );
        assert_eq!(suite_result(3, "fetch", true, ""), "ok 3 fetch");
    }

    #[test]
    fn every_result_line_carries_the_nonce() {
        assert_eq!(
            header(2, "f00d"),
            vec!["KTAP version 1", "1..2", "# kgrade-nonce: f00d"]
        );
        assert_eq!(
            case_lines(1, "a", &Outcome::Pass, "f00d"),
            vec!["    ok 1 a # nonce:f00d"]
        );
        assert_eq!(
            case_lines(2, "b", &Outcome::Fail("got -22\nmore".into()), "f00d"),
            vec!["    # more", "    not ok 2 b # nonce:f00d got -22"]
        );
        assert_eq!(
            suite_result(1, "s", false, "f00d"),
            "not ok 1 s # nonce:f00d"
        );
    }

    #[test]
    fn reasons_are_one_line_without_hashes() {
        let l = case_lines(1, "x", &Outcome::Fail("bad #3\tvalue\u{7}".into()), "");
        assert_eq!(l, vec!["    not ok 1 x # bad %233\\tvalue\\x07"]);
        let l = case_lines(1, "x", &Outcome::Fail("\n\n".into()), "");
        assert_eq!(l, vec!["    not ok 1 x # failed"]);
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "y".repeat(1000);
        let l = case_lines(1, "x", &Outcome::Fail(long), "");
        assert_eq!(l.len(), 1);
        assert!(l[0].len() < 200, "{}", l[0]);
        assert!(l[0].ends_with("..."));
        let many: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let l = case_lines(1, "x", &Outcome::Fail(many.join("\n")), "");
        assert_eq!(l.len(), DIAG_LINES + 2);
        assert_eq!(l[DIAG_LINES], "    # ... 17 more lines");
    }

    #[test]
    fn diagnostics_keep_hashes_and_notes_are_top_level() {
        let l = case_lines(2, "x", &Outcome::Fail("why\n# header of a file".into()), "");
        assert_eq!(l[0], "    # # header of a file");
        assert_eq!(note("plan error: no\nfile"), "# plan error: no\\nfile");
    }
}
