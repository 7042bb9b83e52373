//! The console analysis and the KTAP reader under generated input
//! (proptest, a few hundred cases each, so it runs with the unit tests), and
//! on real serial logs captured from this project's own runs
//! (`tests/fixtures/serial/`).

use kgrade::console::{analyse, streams};
use kgrade::ktap;
use kgrade::qemu::Ended;
use kgrade::verdict::{judge, Boot, Outcome, Verdict};
use kgrade_protocol::{cases_for, Case, BEGIN_MARKER, END_MARKER};
use proptest::prelude::*;
use std::path::Path;

const NONCE: &str = "9d1c6fb0a4e35e2877c1b0d8f2a6e4c1";

/// The first few tracker cases, in run order.
fn cases(n: usize) -> Vec<&'static Case> {
    cases_for("tracker").take(n).collect()
}

/// The guest's lines for `outcomes` (true: ok), signed, as it prints them.
fn guest_lines(cases: &[&Case], outcomes: &[bool]) -> Vec<String> {
    let mut lines = vec![
        BEGIN_MARKER.to_string(),
        "KTAP version 1".into(),
        "1..1".into(),
        format!("# kgrade-nonce: {NONCE}"),
    ];
    let mut suite = "";
    let mut number = 0;
    for (case, ok) in cases.iter().zip(outcomes) {
        if case.suite != suite {
            suite = case.suite;
            number = 0;
            lines.push("    KTAP version 1".into());
            lines.push(format!("    # Subtest: {suite}"));
        }
        number += 1;
        lines.push(if *ok {
            format!("    ok {number} {} # nonce:{NONCE}", case.name)
        } else {
            format!(
                "    not ok {number} {} # nonce:{NONCE} expected 0, got -22",
                case.name
            )
        });
    }
    lines.push(END_MARKER.into());
    lines
}

/// Lines a kernel might put on the console: its own messages, forged
/// results (with no nonce, or a wrong one), forged headers, noise.
fn injected() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = cases_for("tracker").map(|c| c.name).collect();
    prop_oneof![
        "[ -~]{0,80}",
        ("[0-9]{1,3}", "[ -~]{0,60}").prop_map(|(s, m)| format!("[    {s}.123456] {m}")),
        (1u32..6, proptest::sample::select(names.clone()))
            .prop_map(|(n, c)| format!("    ok {n} {c}")),
        (1u32..6, proptest::sample::select(names), "[0-9a-f]{8,32}")
            .prop_map(|(n, c, x)| format!("    ok {n} {c} # nonce:{x}")),
        "[0-9a-f]{32}".prop_map(|x| format!("# kgrade-nonce: {x}")),
        Just("    # Subtest: fetch".to_string()),
        Just("ok 1 register".to_string()),
    ]
}

fn boot(console: &kgrade::console::Console) -> Boot<'_> {
    Boot {
        console,
        ended: Ended::Exited,
        timeout_s: 60,
        nonce: NONCE,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Anything at all: the readers never panic.
    #[test]
    fn any_console_is_read_without_panic(text in "(?s).{0,2000}") {
        let c = analyse(&text);
        let _ = ktap::parse(&text, NONCE);
        let _ = judge(&cases(5), boot(&c));
        let _ = kgrade::transcript::normalise(&text);
    }

    /// Lines made of KTAP's own pieces, in any order.
    #[test]
    fn any_ktap_shaped_text_is_read_without_panic(
        lines in proptest::collection::vec(
            prop_oneof![
                injected(),
                Just(BEGIN_MARKER.to_string()),
                Just(END_MARKER.to_string()),
                Just(format!("    ok 1 self_returns_zero # nonce:{NONCE}")),
                Just(format!("# kgrade-nonce: {NONCE}")),
                "(ok|not ok) [0-9]{0,12}( [^\n]{0,20})?( # [^\n]{0,20})?",
            ],
            0..60,
        )
    ) {
        let text = lines.join("\n");
        let c = analyse(&text);
        let j = judge(&cases(8), boot(&c));
        prop_assert_eq!(j.tests.len(), 8);
        prop_assert!(j.evidence.len() <= 21);
    }

    /// The guest's stream alone reads back exactly: its outcomes, no evidence.
    #[test]
    fn the_guest_stream_reads_back(outcomes in proptest::collection::vec(any::<bool>(), 1..12)) {
        let cs = cases(outcomes.len());
        let text = guest_lines(&cs, &outcomes).join("\n") + "\n";
        let j = judge(&cs, boot(&analyse(&text)));
        prop_assert!(j.evidence.is_empty(), "{:?}", j.evidence);
        for (t, ok) in j.tests.iter().zip(&outcomes) {
            prop_assert_eq!(t.outcome, if *ok { Outcome::Pass } else { Outcome::Fail });
        }
        let all = outcomes.iter().all(|o| *o);
        prop_assert_eq!(j.verdict, if all { Verdict::Pass } else { Verdict::Fail });
    }

    /// Whatever a kernel adds between the guest's lines, no case the guest
    /// failed becomes a pass, and a forged result line never goes unseen.
    #[test]
    fn injected_lines_never_make_a_pass(
        outcomes in proptest::collection::vec(any::<bool>(), 1..12),
        injections in proptest::collection::vec((any::<prop::sample::Index>(), injected()), 0..8),
    ) {
        let cs = cases(outcomes.len());
        let mut lines = guest_lines(&cs, &outcomes);
        // A result line that reaches the reader whole: none of the injected
        // lines carries a kernel stamp that would glue text onto the next.
        let result = regex::Regex::new(r"^ *((not )?ok [0-9]{1,9}( |$)|# kgrade-nonce:)").unwrap();
        let whole = injections.iter().all(|(_, l)| !l.contains('['));
        let mut forged = false;
        for (at, line) in &injections {
            // After the begin marker: before it nothing is read at all.
            let i = 1 + at.index(lines.len() - 1);
            forged |= whole && result.is_match(line);
            lines.insert(i, line.clone());
        }
        let text = lines.join("\n") + "\n";
        let j = judge(&cs, boot(&analyse(&text)));
        for (t, ok) in j.tests.iter().zip(&outcomes) {
            if t.outcome == Outcome::Pass {
                prop_assert!(*ok, "{} passed although the guest failed it", t.name);
            }
        }
        if forged {
            prop_assert_eq!(j.verdict, Verdict::Tampered, "{}", text);
        }
    }

    /// Kernel messages between whole guest lines come out of the guest's
    /// stream, and the guest's lines stay as they were.
    #[test]
    fn streams_split_whole_lines(
        guest in proptest::collection::vec("[ -Z\\^-~]{0,40}", 0..20),
        kernel in proptest::collection::vec(("[0-9]{1,4}", "[ -~]{0,40}"), 0..20),
        seed in any::<u64>(),
    ) {
        let mut console = Vec::new();
        let mut k = kernel.iter();
        let mut s = seed;
        for g in &guest {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if s >> 63 == 1 {
                if let Some((t, m)) = k.next() {
                    console.push(format!("[{t:>5}.000001] {m}"));
                }
            }
            console.push(g.clone());
        }
        for (t, m) in k {
            console.push(format!("[{t:>5}.000001] {m}"));
        }
        let text: String = console.iter().map(|l| format!("{l}\n")).collect();
        let (g, km) = streams(&text);
        prop_assert_eq!(g, guest);
        prop_assert_eq!(km.len(), kernel.len());
    }
}

// ---- Real serial logs -----------------------------------------------------

fn serial_fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/serial")
        .join(name);
    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
}

fn plan_fixture(name: &str) -> kgrade_protocol::Plan {
    kgrade_protocol::Plan::from_json(&serial_fixture(name)).unwrap()
}

/// Judges a captured boot with the plan it ran under.
fn judge_fixture(
    serial: &str,
    plan: &str,
    ended: Ended,
) -> (kgrade::console::Console, kgrade::verdict::Judgement) {
    let plan = plan_fixture(plan);
    let cases = kgrade::boots::plan_cases(&plan);
    let console = analyse(&serial_fixture(serial));
    let j = judge(
        &cases,
        Boot {
            console: &console,
            ended,
            timeout_s: kgrade::boots::boot_timeout_s(&plan, cases.len()),
            nonce: &plan.nonce,
        },
    );
    (console, j)
}

/// The reference's run on tracker/6.1/x86_64: 40 passes, nothing forged.
#[test]
fn a_real_passing_run_is_a_pass() {
    let (console, j) = judge_fixture("pass.log", "pass.plan.json", Ended::Exited);
    assert!(console.finished && console.failure.is_none());
    assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
    assert_eq!(j.reason, "40/40 tests passed");
    assert!(j.evidence.is_empty(), "{:?}", j.evidence);
    assert!(j.tests.iter().all(|t| t.outcome == Outcome::Pass));
}

/// The same log judged under another boot's nonce (a log replayed from an
/// earlier run) is not a pass.
#[test]
fn a_real_log_replayed_into_another_boot_is_tampered() {
    let mut plan = plan_fixture("pass.plan.json");
    plan.nonce = "0".repeat(32);
    let cases = kgrade::boots::plan_cases(&plan);
    let console = analyse(&serial_fixture("pass.log"));
    let j = judge(
        &cases,
        Boot {
            console: &console,
            ended: Ended::Exited,
            timeout_s: 600,
            nonce: &plan.nonce,
        },
    );
    assert_eq!(j.verdict, Verdict::Tampered);
    assert!(j.tests.iter().all(|t| t.outcome == Outcome::Tampered));
    assert!(j.reason.contains("another nonce"), "{}", j.reason);
}

fn judge_pass_log_as(serial: &str) -> kgrade::verdict::Judgement {
    let plan = plan_fixture("pass.plan.json");
    let cases = kgrade::boots::plan_cases(&plan);
    let console = analyse(serial);
    judge(
        &cases,
        Boot {
            console: &console,
            ended: Ended::Exited,
            timeout_s: 600,
            nonce: &plan.nonce,
        },
    )
}

fn tampered(j: &kgrade::verdict::Judgement) -> Vec<&str> {
    j.tests
        .iter()
        .filter(|t| t.outcome == Outcome::Tampered)
        .map(|t| t.name.as_str())
        .collect()
}

/// One forged line inside a real run: that case is tampered, the rest stand.
#[test]
fn one_line_forged_into_a_real_run_is_caught() {
    let serial = serial_fixture("pass.log");
    let forged = serial.replacen(
        "    ok 1 open_counted",
        "    ok 2 openat_counted\n    ok 1 open_counted",
        1,
    );
    assert_ne!(forged, serial);
    let j = judge_pass_log_as(&forged);
    assert_eq!(j.verdict, Verdict::Tampered);
    assert_eq!(tampered(&j), vec!["files.openat_counted"]);
    assert_eq!(j.evidence.len(), 1);
    assert_eq!(
        j.tests
            .iter()
            .filter(|t| t.outcome == Outcome::Pass)
            .count(),
        39
    );
}

/// A kernel writing a line's start without its end glues the guest's next
/// line (nonce and all) onto it: the case it relabels and the one it robs
/// are both tampered.
#[test]
fn a_real_line_relabelled_by_a_glued_prefix_is_caught() {
    let serial = serial_fixture("pass.log");
    let glued = serial.replacen(
        "    ok 1 open_counted",
        "    ok 1 open_counted\n    ok 2 openat_counted",
        1,
    );
    let j = judge_pass_log_as(&glued);
    assert_eq!(j.verdict, Verdict::Tampered);
    assert_eq!(
        tampered(&j),
        vec!["files.open_counted", "files.openat_counted"]
    );
}

/// A real transcript normalises without any trace of the nonce.
#[test]
fn a_real_transcript_has_no_nonce_after_normalising() {
    let serial = serial_fixture("pass.log");
    let nonce = plan_fixture("pass.plan.json").nonce;
    assert!(serial.contains(&nonce));
    let n = kgrade::transcript::normalise(&serial);
    assert!(!n.contains(&nonce) && !n.contains("nonce"), "{n}");
    assert!(n.contains("\n    ok 1 self_returns_zero\n"), "{n}");
}

/// Judges captured boots again the way `kgrade judge` does: their plans and
/// serial logs in a run directory, with a result.json listing them.
fn rejudge_fixtures(boots: &[(&str, &str)]) -> kgrade::report::RunResult {
    let dir = tempfile::tempdir().unwrap();
    let mut records = Vec::new();
    for (i, (serial, plan)) in boots.iter().enumerate() {
        let n = i + 1;
        let (s, p) = if n == 1 {
            ("serial.log".to_string(), "plan.json".to_string())
        } else {
            (format!("serial-{n}.log"), format!("plan-{n}.json"))
        };
        std::fs::write(dir.path().join(&s), serial_fixture(serial)).unwrap();
        std::fs::write(dir.path().join(&p), serial_fixture(plan)).unwrap();
        records.push(kgrade::report::BootRecord {
            plan: p,
            serial_log: s,
            cases: 0,
            ended: "exited".into(),
            verdict: Verdict::Fail,
            reason: String::new(),
        });
    }
    let result = kgrade::report::RunResult {
        target: "tracker/6.1/x86_64".into(),
        verdict: Verdict::Pass,
        reason: String::new(),
        submission_origin: String::new(),
        kernel: None,
        syscalls: Default::default(),
        missing_syscalls: vec![],
        wrong_syscall_numbers: vec![],
        tests: vec![],
        timings_s: Default::default(),
        details: String::new(),
        accel: String::new(),
        boots: records,
    };
    result.write(dir.path()).unwrap();
    kgrade::boots::rejudge(dir.path()).unwrap()
}

fn outcome_of(r: &kgrade::report::RunResult, name: &str) -> (Outcome, String) {
    let t = r.tests.iter().find(|t| t.name == name).unwrap();
    (t.outcome, t.message.clone())
}

/// A real oops in one case (a NULL dereference in register), then the boot
/// with the cases after it.
#[test]
fn a_real_oops_costs_its_case_only() {
    // The first boot alone: the crash, and nothing after it ran.
    let (console, j) = judge_fixture("oops.log", "oops.plan.json", Ended::Exited);
    assert!(!console.finished);
    assert_eq!(console.failure.as_ref().unwrap().kind, "bug");
    assert_eq!(j.verdict, Verdict::Crash);
    let crashed = &j.tests[2];
    assert_eq!(crashed.name, "register.pid_below_one_is_einval");
    assert_eq!(crashed.outcome, Outcome::Crash);
    assert!(crashed.message.contains("NULL pointer dereference"));
    assert!(crashed.message.contains("RIP: 0010:__x64_sys_register"));
    assert!(j.tests[3..].iter().all(|t| t.outcome == Outcome::NotRun));

    let r = rejudge_fixtures(&[
        ("oops.log", "oops.plan.json"),
        ("oops-2.log", "oops-2.plan.json"),
    ]);
    assert_eq!(r.verdict, Verdict::Crash, "{}", r.reason);
    assert_eq!(r.tests.len(), 40);
    assert_eq!(r.passed(), 38);
    assert_eq!(
        outcome_of(&r, "register.pid_below_one_is_einval").0,
        Outcome::Crash
    );
    assert_eq!(
        outcome_of(&r, "deregister.pid_below_one_is_einval"),
        (
            Outcome::Fail,
            "deregister(0): expected -22 (EINVAL), got -3 (ESRCH)".to_string()
        )
    );
    assert!(
        r.reason
            .ends_with("(2 boots after crashes, 38/40 tests passed)"),
        "{}",
        r.reason
    );
    assert!(
        r.details.starts_with("== serial.log (kernel bug"),
        "{}",
        r.details
    );
}

/// A real soft lockup (a syscall that never returns, printing), twice, with
/// the clock's complaints interleaved in the stream: three boots.
#[test]
fn a_real_lockup_with_interleaved_kernel_lines_is_isolated() {
    let (console, _) = judge_fixture("lockup.log", "lockup.plan.json", Ended::Exited);
    assert!(console
        .kernel_lines
        .iter()
        .any(|(_, l)| l.starts_with("clocksource: timekeeping watchdog")));
    let r = rejudge_fixtures(&[
        ("lockup.log", "lockup.plan.json"),
        ("lockup-2.log", "lockup-2.plan.json"),
        ("lockup-3.log", "lockup-3.plan.json"),
    ]);
    assert_eq!(r.verdict, Verdict::Crash);
    assert_eq!(r.boots.len(), 3);
    let outcomes: Vec<Outcome> = r.tests.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Pass, Outcome::Crash, Outcome::Crash, Outcome::Pass]
    );
    let (_, m) = outcome_of(&r, "fetch.unmonitored_is_einval");
    assert!(m.contains("soft lockup"), "{m}");
    assert!(!m.contains("clocksource"), "{m}");
}

/// A real forged block: the kernel wrote an all-`ok` KTAP block to the
/// console from its register syscall, and fetch was broken.
#[test]
fn a_real_forged_block_is_tampered() {
    let (console, j) = judge_fixture("forged.log", "forged.plan.json", Ended::Exited);
    assert!(console.finished && console.failure.is_none());
    assert_eq!(j.verdict, Verdict::Tampered);
    assert!(j.tests.iter().all(|t| t.outcome == Outcome::Tampered));
    assert_eq!(j.evidence.len(), 21, "bounded to 20 and a count");
    assert!(j.evidence[20].starts_with("... and "), "{:?}", j.evidence);
    // The guest's own failing result is on the console all the same.
    let stream = ktap::parse(
        console.ktap.as_deref().unwrap(),
        &plan_fixture("forged.plan.json").nonce,
    );
    let open = stream
        .cases
        .iter()
        .find(|c| c.name == "open_counted")
        .unwrap();
    assert!(!open.ok);
}

/// A real console flood (a debugging line printed in a loop), cut to its
/// head and tail here (the run capped it at 4 MiB): the case that flooded
/// is a crash, and the lines it flooded with are the kernel's, not the guest's.
#[test]
fn a_real_flood_is_a_crash_of_the_case_that_ran() {
    let (console, j) = judge_fixture("flood.log", "flood.plan.json", Ended::Flooded);
    assert!(!console.finished);
    assert!(console
        .kernel_lines
        .iter()
        .all(|(_, l)| !l.contains("nonce")));
    assert!(console.kernel_lines.len() > 20);
    assert_eq!(j.verdict, Verdict::Crash);
    assert!(j.evidence.is_empty(), "{:?}", j.evidence);
    let outcomes: Vec<Outcome> = j.tests.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Pass,
            Outcome::Crash,
            Outcome::NotRun,
            Outcome::NotRun
        ]
    );
    assert_eq!(
        j.tests[1].message,
        "the console flooded while this test ran"
    );
}

/// A real run whose fetch sleeps until a signal: the guest's own limit ends
/// each case that calls it, and the run goes on in the same boot.
#[test]
fn a_real_case_timeout_is_a_timeout_and_no_crash() {
    let (console, j) = judge_fixture("timeout.log", "timeout.plan.json", Ended::Exited);
    assert!(console.finished && console.failure.is_none());
    assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
    let outcomes: Vec<(&str, Outcome)> = j
        .tests
        .iter()
        .map(|t| (t.name.as_str(), t.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("register.self_returns_zero", Outcome::Timeout),
            ("fetch.fresh_entry_is_zero", Outcome::Timeout),
            ("deregister.unmonitored_is_esrch", Outcome::Pass),
        ]
    );
    assert_eq!(j.tests[1].message, "TIMEOUT after 10000 ms");
}

/// A real kernel message printed while a case ran, between the guest's
/// lines: the failing case's message carries it, the passing ones nothing.
#[test]
fn a_real_kernel_message_goes_with_the_case_that_caused_it() {
    let (_, j) = judge_fixture("warns.log", "warns.plan.json", Ended::Exited);
    assert_eq!(j.verdict, Verdict::Fail);
    assert_eq!(j.tests[0].message, "");
    assert_eq!(j.tests[2].message, "");
    let m = &j.tests[1].message;
    assert!(
        m.starts_with("fetch(self) without register: expected -22 (EINVAL), got -2 (ENOENT); kernel said: tracker: tracker: fetch of pid "),
        "{m}"
    );
    assert!(m.ends_with(" failed, returned -ENOENT"), "{m}");
}
