//! Reading the serial console: the guest's KTAP stream between its markers,
//! and the kernel's own reports of failure (panics, oopses, lockups).

use kgrade_protocol::{BEGIN_MARKER, END_MARKER};
use regex::Regex;
use std::sync::OnceLock;

/// A kernel failure found on the console.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelFailure {
    /// panic, oops, bug, gpf, soft-lockup, hard-lockup, rcu-stall, hung-task, warning
    pub kind: String,
    /// The line that revealed it, without the timestamp.
    pub line: String,
    /// Lines from there on (bounded), for reports.
    pub excerpt: String,
    /// Whether it came before the guest started its stream.
    pub before_guest: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Console {
    /// The text between the markers (None: the guest never started).
    pub ktap: Option<String>,
    /// Whether the guest printed its end marker.
    pub finished: bool,
    /// The first failure, fatal ones first.
    pub failure: Option<KernelFailure>,
    /// Kernel warnings (WARNING: ...), which do not end the run.
    pub warnings: Vec<String>,
}

fn patterns() -> &'static [(&'static str, Regex)] {
    static P: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            ("soft-lockup", r"watchdog: BUG: soft lockup"),
            ("hard-lockup", r"Watchdog detected hard LOCKUP|NMI watchdog: .*hard LOCKUP"),
            ("rcu-stall", r"rcu: INFO: \S+ (self-)?detected stalls?|rcu_\w+ (self-)?detected stall"),
            ("hung-task", r"INFO: task \S+ blocked for more than \d+ seconds"),
            ("gpf", r"general protection fault"),
            ("bug", r"kernel BUG at |BUG: (kernel NULL pointer|unable to handle|KASAN|sleeping function|scheduling while atomic|Bad page|spinlock|workqueue lockup|using smp_processor_id)|BUG: [a-z]"),
            ("oops", r"Oops: |Unable to handle kernel |Internal error: Oops"),
            ("panic", r"Kernel panic - not syncing"),
        ]
        .into_iter()
        .filter_map(|(k, p)| Regex::new(p).ok().map(|r| (k, r)))
        .collect()
    })
}

fn strip_timestamp(line: &str) -> &str {
    let l = line.trim_start();
    if l.starts_with('[') {
        if let Some(end) = l.find("] ") {
            return &l[end + 2..];
        }
    }
    l
}

pub fn analyse(console: &str) -> Console {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    // printk output can land between a marker and its newline (the kernel
    // writes to the console past the tty): a marker counts anywhere in a line.
    let begin = lines.iter().position(|l| l.contains(BEGIN_MARKER));
    let end = lines.iter().rposition(|l| l.contains(END_MARKER));
    let ktap = begin.map(|b| {
        let stop = end.filter(|e| *e > b).unwrap_or(lines.len());
        lines[b + 1..stop].join("\n")
    });
    let mut failure = None;
    let mut warnings = Vec::new();
    'scan: for (i, line) in lines.iter().enumerate() {
        let text = strip_timestamp(line);
        if text.starts_with("WARNING: CPU:") {
            warnings.push(text.to_string());
        }
        for (kind, re) in patterns() {
            if re.is_match(text) {
                let excerpt_end = (i + 40).min(lines.len());
                failure = Some(KernelFailure {
                    kind: kind.to_string(),
                    line: text.to_string(),
                    excerpt: lines[i..excerpt_end].join("\n"),
                    before_guest: begin.is_none_or(|b| i < b),
                });
                break 'scan;
            }
        }
    }
    Console {
        ktap,
        finished: end.is_some() && begin.is_some(),
        failure,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(body: &str) -> String {
        format!("[    0.5] Run /init as init process\n{BEGIN_MARKER}\n{body}\n{END_MARKER}\n")
    }

    #[test]
    fn clean_run_has_stream_and_no_failure() {
        let c = analyse(&wrap("KTAP version 1\n1..0"));
        assert_eq!(c.ktap.as_deref(), Some("KTAP version 1\n1..0"));
        assert!(c.finished);
        assert!(c.failure.is_none());
    }

    #[test]
    fn a_kernel_message_glued_to_a_marker_does_not_hide_it() {
        let text = format!(
            "[    0.5] Run /init as init process\n{BEGIN_MARKER}[    1.35] clocksource: \
             Marking clocksource 'tsc-early' as unstable\n\nKTAP version 1\n1..0\n\
             {END_MARKER}[    1.7] reboot: Restarting system\n"
        );
        let c = analyse(&text);
        assert_eq!(c.ktap.as_deref(), Some("\nKTAP version 1\n1..0"));
        assert!(c.finished);
        assert!(c.failure.is_none());
    }

    #[test]
    fn panic_before_the_guest_is_a_boot_failure() {
        let text = "[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n[    0.9] CPU: 0 PID: 1\n";
        let c = analyse(text);
        assert!(c.ktap.is_none());
        let f = c.failure.unwrap();
        assert_eq!(f.kind, "panic");
        assert!(f.before_guest);
        assert!(f.line.starts_with("Kernel panic"));
    }

    #[test]
    fn oops_during_tests_is_found_first_and_attributed() {
        let text = format!(
            "{BEGIN_MARKER}\nKTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: fetch\n    1..3\n    ok 1 a\n\
             [    2.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
             [    2.1] Oops: 0000 [#1] PREEMPT NOPTI\n[    2.2] Kernel panic - not syncing: Fatal exception\n"
        );
        let c = analyse(&text);
        assert!(!c.finished);
        let f = c.failure.unwrap();
        assert_eq!(f.kind, "bug");
        assert!(!f.before_guest);
        assert!(f.excerpt.contains("Fatal exception"));
        assert!(c.ktap.unwrap().contains("ok 1 a"));
    }

    #[test]
    fn every_kind_is_recognised() {
        for (line, kind) in [
            (
                "[ 22.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [init:1]",
                "soft-lockup",
            ),
            (
                "[ 30.0] INFO: task init:1 blocked for more than 10 seconds.",
                "hung-task",
            ),
            (
                "[ 1.0] general protection fault, probably for non-canonical address",
                "gpf",
            ),
            (
                "[ 1.0] Unable to handle kernel NULL pointer dereference at virtual address 0",
                "oops",
            ),
            ("[ 1.0] kernel BUG at mm/mmap.c:123!", "bug"),
            (
                "[ 9.0] rcu: INFO: rcu_sched self-detected stall on CPU",
                "rcu-stall",
            ),
        ] {
            let c = analyse(line);
            assert_eq!(c.failure.map(|f| f.kind), Some(kind.to_string()), "{line}");
        }
    }

    #[test]
    fn ordinary_boot_lines_are_not_failures() {
        let text = "[ 0.0] Linux version 6.1.176 (kgrade@kgrade)\n[ 0.1] BIOS-provided physical RAM map:\n\
                    [ 0.2] Spectre V2 : Mitigation: Retpolines\n[ 0.3] clocksource: tsc: mask\n";
        assert!(analyse(text).failure.is_none());
    }
}
