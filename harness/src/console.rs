//! Reading the serial console: the guest's KTAP stream between its markers,
//! and the kernel's own reports of failure (panics, oopses, lockups).

use kgrade_protocol::{BEGIN_MARKER, END_MARKER};
use regex::Regex;
use std::sync::{LazyLock, OnceLock};

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

/// A serial console, analysed: the guest's KTAP, the kernel's lines and any crash.
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
    /// The kernel's messages after the guest's begin marker, without their
    /// timestamps, each with the number of `ktap` lines complete when it
    /// came: what the kernel said while each case ran.
    pub kernel_lines: Vec<(usize, String)>,
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

/// Kernel messages about the emulated clock, timer and caches: they come and
/// go with the host's load under TCG, never with the submission.
static CLOCK_NOISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^(
            clocksource: | tsc: | TSC\ found\ unstable | sched_clock: | hrtimer:\ interrupt\ took
            | random: | crng\ init | Marking\ TSC\ unstable | timekeeping\ watchdog
            | APIC\ timer\ disabled | cacheinfo:
        )",
    )
    .expect("valid regex")
});

/// Whether a kernel message (timestamp stripped) only reports the VM's clock.
pub fn is_clock_noise(message: &str) -> bool {
    CLOCK_NOISE.is_match(message.trim_start())
}

/// Kernel messages a student wants next to a failure: warnings, "failed"
/// lines, splats and the errors they report.
static TELLING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)\b(
            warn(ing)? | fail(ed|s|ure)? | error | bug | oops | unable | invalid | refus\w*
            | denied | call\ trace | cut\ here | not\ syncing | lockup | stall\w* | returned\ -\d+
        )\b",
    )
    .expect("valid regex")
});

/// Whether a kernel message bears on a failure (see `TELLING`).
pub fn is_telling(message: &str) -> bool {
    !is_clock_noise(message) && TELLING.is_match(message)
}

/// `[    1.234567] ` as the kernel prefixes its messages.
fn kernel_stamp() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"\[\s*\d+\.\d+\] ").expect("valid regex"))
}

/// The console's two writers pulled apart: the guest's lines, and the
/// kernel's messages without their timestamps. They share one console, so a
/// kernel message can land in the middle of a guest line
/// (`    ok 1 fresh_entry[    1.31] clocksource: ...`): the guest's text
/// before the stamp is joined with the guest's next line.
pub fn streams(console: &str) -> (Vec<String>, Vec<String>) {
    let (guest, kernel) = placed_streams(console);
    (guest, kernel.into_iter().map(|(_, m)| m).collect())
}

/// [`streams`], each kernel message with the number of guest lines complete
/// when it came.
pub fn placed_streams(console: &str) -> (Vec<String>, Vec<(usize, String)>) {
    let mut guest = Vec::new();
    let mut kernel = Vec::new();
    let mut pending = String::new();
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        match kernel_stamp().find(line) {
            Some(stamp) => {
                pending.push_str(&line[..stamp.start()]);
                kernel.push((guest.len(), line[stamp.end()..].to_string()));
            }
            None => guest.push(std::mem::take(&mut pending) + line),
        }
    }
    if !pending.is_empty() {
        guest.push(pending);
    }
    (guest, kernel)
}

/// The guest's lines, with the kernel's messages taken out (see [`streams`]).
pub fn guest_lines(console: &str) -> Vec<String> {
    streams(console).0
}

/// Splits a console into the guest's output and the kernel's, and finds a crash.
pub fn analyse(console: &str) -> Console {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    // printk output can land between a marker and its newline (the kernel
    // writes to the console past the tty): a marker counts anywhere in a line.
    let begin = lines.iter().position(|l| l.contains(BEGIN_MARKER));
    let (guest, kernel) = placed_streams(console);
    let guest_begin = guest.iter().position(|l| l.contains(BEGIN_MARKER));
    let kernel_lines = match guest_begin {
        Some(b) => kernel
            .into_iter()
            .filter(|(at, _)| *at > b)
            .map(|(at, m)| (at - (b + 1), m))
            .collect(),
        None => Vec::new(),
    };
    let end = guest.iter().rposition(|l| l.contains(END_MARKER));
    let ktap = guest_begin.map(|b| {
        let stop = end.filter(|e| *e > b).unwrap_or(guest.len());
        guest[b + 1..stop].join("\n")
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
        finished: end.is_some() && guest_begin.is_some(),
        failure,
        warnings,
        kernel_lines,
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
        assert_eq!(c.ktap.as_deref(), Some("KTAP version 1\n1..0"));
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

    /// Seen under TCG: the clocksource watchdog printed in the middle of a
    /// guest line. The case passed and must be read as passed.
    #[test]
    fn a_kernel_message_inside_a_guest_line_does_not_hide_it() {
        let text = format!(
            "{BEGIN_MARKER}\r\nKTAP version 1\r\n1..1\r\n    KTAP version 1\r\n    # Subtest: fetch\r\n    1..2\r\n\
             \x20   ok 1 fresh_entry_is_zero[    1.319161] clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc-early' as unstable\r\n\
             [    1.326370] TSC found unstable after boot, most likely due to broken BIOS.\r\n\r\n\
             \x20   ok 2 unmonitored_is_einval\r\nok 1 fetch\r\n{END_MARKER}\r\n"
        );
        let c = analyse(&text);
        assert!(c.finished && c.failure.is_none());
        let ktap = c.ktap.unwrap();
        assert!(ktap.contains("\n    ok 1 fresh_entry_is_zero\n"), "{ktap}");
        assert!(!ktap.contains("clocksource"), "{ktap}");
        assert!(
            ktap.contains("\n    ok 2 unmonitored_is_einval\n"),
            "{ktap}"
        );
    }

    #[test]
    fn kernel_lines_are_placed_among_the_guest_lines() {
        let text = format!(
            "[ 0.1] early\n{BEGIN_MARKER}\nKTAP version 1\n[ 1.0] one\n1..1\n    ok 1 a[ 1.1] two\n\n[ 1.2] three\n{END_MARKER}\n"
        );
        let c = analyse(&text);
        assert_eq!(c.ktap.as_deref(), Some("KTAP version 1\n1..1\n    ok 1 a"));
        assert_eq!(
            c.kernel_lines,
            vec![
                (1, "one".to_string()),
                (2, "two".to_string()),
                (3, "three".to_string())
            ]
        );
    }

    #[test]
    fn telling_lines_are_warnings_failures_and_splats_not_clock_noise() {
        for m in [
            "register_kprobe failed, returned -95",
            "WARNING: CPU: 0 PID: 1 at mm/slab.c:1",
            "BUG: sleeping function called from invalid context",
            "Call Trace:",
            "------------[ cut here ]------------",
        ] {
            assert!(is_telling(m), "{m}");
        }
        for m in [
            "tracker: pid 42 registered",
            "clocksource: timekeeping watchdog on CPU0: failed",
            "Run /init as init process",
        ] {
            assert!(!is_telling(m), "{m}");
        }
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
