//! Student-derived text made safe to show: on a terminal or in a CI log (no
//! escape sequences), in one line of a report (bounded, control characters
//! visible), in a CSV cell (no formulas) and in Markdown (no markup).
//!
//! Anything a submission controls (file names, patch output, compiler
//! errors, the kernel's console) can carry ESC sequences that rewrite a
//! terminal, bidi overrides that reorder what a reviewer reads, or a leading
//! `=` that a spreadsheet runs.

/// Characters never passed through: C0 controls but tab and newline, DEL,
/// C1 controls, and the bidi embedding/override/isolate controls.
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` without terminal hazards; newlines and tabs kept.
pub fn printable(s: &str) -> String {
    s.chars().filter(|&c| !is_hazard(c)).collect()
}

/// `s` on one line of at most `max` characters: every control character
/// (newline and tab included) shown as an escape, the rest cut with `…`.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in s.chars() {
        let shown = match c {
            '\n' => "\\n".to_string(),
            '\t' => "\\t".to_string(),
            '\r' => "\\r".to_string(),
            c if is_hazard(c) => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        };
        let len = shown.chars().count();
        if count + len > max {
            out.push('…');
            return out;
        }
        count += len;
        out.push_str(&shown);
    }
    out
}

/// A CSV cell a spreadsheet shows as text: a leading `= + - @`, tab or CR
/// would start a formula, so such a cell gets a leading `'` (OWASP's
/// convention). Hazards are dropped first.
pub fn csv_cell(s: &str) -> String {
    let clean = printable(s);
    match clean.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{clean}"),
        _ => clean,
    }
}

/// Text for a Markdown table cell or paragraph: one line, and every
/// character Markdown (or inline HTML) gives a meaning escaped.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '\n' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Links, images, code and table cells. Block markup (`#`, `-`,
            // `1.`) only counts at the start of a line, which this text never
            // is; `_` is left alone so that x86_64 reads as it should (it
            // cannot start emphasis inside a word).
            '\\' | '`' | '*' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex of bytes (digests, nonces).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_loses_escape_sequences_and_bidi_controls() {
        let hostile = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m\u{202E}txt.exe\n\tnext";
        assert_eq!(printable(hostile), "ok]0;pwned[2J31mtxt.exe\n\tnext");
    }

    #[test]
    fn one_line_is_bounded_and_shows_what_was_hidden() {
        assert_eq!(one_line("a\nb\u{1b}[1m", 100), "a\\nb\\u{1b}[1m");
        let long = "x".repeat(1000);
        let cut = one_line(&long, 10);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("abc", 3), "abc");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for bad in ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=1"] {
            assert!(csv_cell(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(csv_cell("alice"), "alice");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        // A hazard first cannot hide the formula behind it.
        assert_eq!(csv_cell("\u{1b}=1"), "'=1");
    }

    #[test]
    fn markdown_markup_is_escaped() {
        assert_eq!(
            markdown("**bold** [x](http://e) <img> a|b\nc"),
            "\\*\\*bold\\*\\* \\[x\\](http://e) &lt;img&gt; a\\|b c"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn shown_text_never_carries_a_hazard(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}=+@a-]{0,40}", max in 1usize..60) {
            prop_assert!(!printable(&s).chars().any(is_hazard));
            let line = one_line(&s, max);
            prop_assert!(!line.chars().any(char::is_control));
            prop_assert!(line.chars().count() <= max + 1);
            let cell = csv_cell(&s);
            prop_assert!(cell.starts_with('\'') || !cell.starts_with(['=', '+', '-', '@', '\t', '\r']));
            let md = markdown(&s);
            prop_assert!(!md.contains(['\n', '<', '>', '\x1b']), "{md:?}");
        }
    }
}
