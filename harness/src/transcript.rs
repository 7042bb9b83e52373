//! Serial transcripts made comparable: what a run printed, with the noise
//! that differs from one boot to the next taken out.
//!
//! The guest's lines and the kernel's messages are written to one console by
//! two writers, so where a kernel line lands among the guest's lines is down
//! to timing. A normalised transcript therefore keeps the two apart: the
//! guest's lines in order, then the kernel's messages in order, each with
//! timestamps, addresses, PIDs and durations redacted, and the kernel
//! messages that only report the virtual machine's clock dropped.

use crate::console;
use regex::Regex;
use std::sync::LazyLock;

/// Run-to-run values inside a line, with what replaces them.
static REDACTIONS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"0x[0-9a-fA-F]+", "0x<hex>"),
        // Bare addresses as oopses print them (16 or 8 hex digits).
        (r"\b[0-9a-f]{8}(?:[0-9a-f]{8})?\b", "<hex>"),
        (r"(?i)\b(pid|tgid|ppid)([ =:]+)\d+", "$1$2<n>"),
        // Which of the guest's CPUs an oops or warning hit: either, on SMP.
        (r"\bCPU: \d+\b", "CPU: <n>"),
        // The build dir's link count after the release in an oops header.
        (r"\b(\d+\.\d+\.\d+\S*) #\d+\b", "$1 #<n>"),
        // Names the guest tests build from pids: process names (kgc1234) and
        // scratch files (/tmp/kgrade-1234-close).
        (r"\bkg([a-z])\d+", "kg$1<pid>"),
        (r"\bkgrade-\d+-", "kgrade-<pid>-"),
        // The build dir's link count in the kernel's version string.
        (r"kgrade-kernel: #\d+", "kgrade-kernel: #<n>"),
        (r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s)\b", "<duration>"),
    ]
    .into_iter()
    .map(|(re, by)| (Regex::new(re).expect("valid regex"), by))
    .collect()
});

/// The boot's nonce on a result line (see `kgrade_protocol::NONCE_TAG`): a
/// fresh random value each boot, so it is taken out, reason kept.
static NONCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" # nonce:\S+(?: |$)").expect("valid regex"));

/// The guest's result line without its nonce: ` # nonce:N reason` becomes
/// ` # reason`, and ` # nonce:N` at the end goes.
fn without_nonce(line: &str) -> String {
    NONCE
        .replace(
            line,
            |c: &regex::Captures| {
                if c[0].ends_with(' ') {
                    " # "
                } else {
                    ""
                }
            },
        )
        .into_owned()
}

fn redact(line: &str) -> String {
    REDACTIONS.iter().fold(line.to_string(), |text, (re, by)| {
        re.replace_all(&text, *by).into_owned()
    })
}

/// The transcript as two sections, guest then kernel, with the noise out.
/// Two boots of the same kernel and plan normalise to the same text.
pub fn normalise(serial: &str) -> String {
    let (guest, kernel) = console::streams(serial);
    // The nonce header and the nonce on each result line are new every boot:
    // a transcript reads as if the guest printed neither.
    let guest: Vec<String> = guest
        .iter()
        .filter(|l| !l.starts_with(kgrade_protocol::NONCE_HEADER))
        .map(|l| redact(&without_nonce(l.trim_end())))
        .collect();
    let kernel: Vec<String> = kernel
        .iter()
        .filter(|m| !console::is_clock_noise(m))
        .map(|m| redact(m.trim_end()))
        .collect();
    let mut out = String::from("## guest\n");
    for l in &guest {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("## kernel\n");
    for l in &kernel {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A unified diff of two transcripts after normalising both, or `None` when
/// they agree.
pub fn diff(reference: &str, actual: &str) -> Option<String> {
    let (a, b) = (normalise(reference), normalise(actual));
    if a == b {
        return None;
    }
    Some(
        similar::TextDiff::from_lines(&a, &b)
            .unified_diff()
            .context_radius(3)
            .header("reference", "submission")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two boots of one kernel: different timestamps, a clock warning in one
    /// of them, a kernel message landing at another place, other PIDs and
    /// addresses.
    const RUN_A: &str = "<<KGRADE-KTAP-BEGIN>>\r\nKTAP version 1\n1..1\n    ok 1 self_returns_zero\n[    0.912345] tracker: pid 42 registered\n    # took 12 ms\nok 1 register\n<<KGRADE-KTAP-END>>\n";
    const RUN_B: &str = "<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n1..1\n[    1.277243] clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc-early' as unstable\n    ok 1 self_[    1.5] tracker: pid 57 registered\nreturns_zero\n    # took 3.4 ms\nok 1 register\n<<KGRADE-KTAP-END>>\n";

    #[test]
    fn the_cpu_an_oops_hit_is_noise() {
        let on = |cpu: &str| {
            normalise(&format!(
                "<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n[ 0.5] CPU: {cpu} PID: 1 Comm: swapper/0 Not tainted 6.1.192 #{cpu}7\n<<KGRADE-KTAP-END>>\n"
            ))
        };
        assert_eq!(on("0"), on("1"));
        assert!(
            on("1").contains("CPU: <n> PID: <n> Comm: swapper/0 Not tainted 6.1.192 #<n>"),
            "{}",
            on("1")
        );
    }

    #[test]
    fn two_runs_of_one_kernel_normalise_equal() {
        assert_eq!(normalise(RUN_A), normalise(RUN_B));
        assert_eq!(diff(RUN_A, RUN_B), None);
    }

    #[test]
    fn guest_and_kernel_lines_are_kept_apart() {
        let n = normalise(RUN_B);
        assert_eq!(
            n,
            "## guest\n<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n1..1\n    ok 1 self_returns_zero\n    # took <duration>\nok 1 register\n<<KGRADE-KTAP-END>>\n## kernel\ntracker: pid <n> registered\n"
        );
    }

    #[test]
    fn the_nonce_leaves_no_trace() {
        let signed = RUN_A
            .replace("1..1\n", "1..1\n# kgrade-nonce: 3f9a0c\n")
            .replace("self_returns_zero", "self_returns_zero # nonce:3f9a0c")
            .replace("ok 1 register", "ok 1 register # nonce:3f9a0c");
        assert_ne!(signed, RUN_A);
        assert_eq!(normalise(&signed), normalise(RUN_A));
        assert_eq!(
            without_nonce("    not ok 2 b # nonce:3f9a0c got -22 # x"),
            "    not ok 2 b # got -22 # x"
        );
    }

    #[test]
    fn addresses_are_redacted() {
        let n = normalise("[    2.000000] RIP: 0010:tracker_init+0x5/0x20\n[    2.000001] RSP: 0000:ffffc90000013e80 EFLAGS: 00010246\n");
        assert!(n.contains("RIP: 0010:tracker_init+0x<hex>/0x<hex>"), "{n}");
        assert!(n.contains("RSP: 0000:<hex> EFLAGS: <hex>"), "{n}");
    }

    #[test]
    fn pid_derived_names_are_redacted() {
        let n = normalise("[    1.0] [INFO940] [ERROR] pf_get_info: kgx20 is not tracked (/tmp/kgrade-31-close)\n");
        assert!(
            n.contains("pf_get_info: kgx<pid> is not tracked (/tmp/kgrade-<pid>-close)"),
            "{n}"
        );
    }

    #[test]
    fn a_changed_outcome_shows_in_the_diff() {
        let failing = RUN_A.replace(
            "    ok 1 self_returns_zero",
            "    not ok 1 self_returns_zero # got -22",
        );
        let d = diff(RUN_A, &failing).expect("transcripts differ");
        assert!(d.contains("-    ok 1 self_returns_zero"), "{d}");
        assert!(
            d.contains("+    not ok 1 self_returns_zero # got -22"),
            "{d}"
        );
    }
}
