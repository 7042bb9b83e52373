//! The boot stage: the built kernel booted with the guest and its plan, the
//! console judged; after a kernel crash in one case, booted again with only
//! the cases after it (as kunit.py's `--run_isolated` does, but one boot per
//! crash rather than per case), a bounded number of times.
//!
//! Each boot leaves `plan[-N].json` and `serial[-N].log` in the run's
//! directory, so `kgrade judge` can judge the run again from them alone.

use crate::arch::Arch;
use crate::console;
use crate::initramfs::Initramfs;
use crate::ioerr::{io, IoError};
use crate::qemu::{self, Ended, QemuError};
use crate::report::{BootRecord, RunResult};
use crate::verdict::{self, Judgement, Outcome, TestResult, Verdict};
use kgrade_protocol::{Case, Plan, KERNEL_TAG, PLAN_PATH};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Boots after the first, each after a crash: then the cases still left are
/// not run.
pub const MAX_REBOOTS: usize = 3;

/// Where a boot's console may not grow past.
const CONSOLE_CAP: usize = 4 << 20;

/// Lines of each crash report kept in a run's details.
const EXCERPT_LINES: usize = 40;

/// Why the boots could not be run (never the submission's doing).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// QEMU could not run.
    #[error(transparent)]
    Qemu(#[from] QemuError),
    /// A file of the run could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A file of an earlier run could not be read (`kgrade judge`).
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why not.
        message: String,
    },
}

/// What the boots came to.
#[derive(Debug, Clone)]
pub struct Booted {
    /// The judge's verdict over all boots and every test's outcome.
    pub judgement: Judgement,
    /// Each boot, as result.json records it.
    pub boots: Vec<BootRecord>,
    /// Crash reports and tampering evidence, per boot.
    pub details: String,
    /// The QEMU accelerator used (tcg or kvm).
    pub accel: String,
    /// The kernel version the guest saw in each boot that got that far
    /// (`uname -v`, from its [`KERNEL_TAG`] note).
    pub kernel_versions: Vec<String>,
}

/// What to boot.
pub struct Spec<'a> {
    /// The machine to boot.
    pub arch: &'a Arch,
    /// The kernel image.
    pub kernel: &'a Path,
    /// The guest `/init` binary.
    pub init: &'a [u8],
    /// The first boot's plan; each boot gets its own nonce and later ones
    /// their own `only`.
    pub plan: Plan,
    /// The run's directory.
    pub out: &'a Path,
}

fn ended_name(ended: Ended) -> &'static str {
    match ended {
        Ended::Exited => "exited",
        Ended::TimedOut => "timed-out",
        Ended::Flooded => "flooded",
    }
}

fn ended_from(name: &str) -> Ended {
    match name {
        "timed-out" => Ended::TimedOut,
        "flooded" => Ended::Flooded,
        _ => Ended::Exited,
    }
}

/// `serial.log`, `serial-2.log`, ...
fn numbered(stem: &str, ext: &str, boot: usize) -> String {
    if boot == 1 {
        format!("{stem}.{ext}")
    } else {
        format!("{stem}-{boot}.{ext}")
    }
}

/// 128 random bits, hex: a boot's nonce.
fn fresh_nonce() -> Result<String, BootError> {
    use std::io::Read;
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io(path))?;
    Ok(crate::text::hex(&bytes))
}

/// The plan's cases, in the order the guest runs them.
pub fn plan_cases(plan: &Plan) -> Vec<&'static Case> {
    plan.cases_in_run_order()
}

/// The whole-boot limit: every case may use its whole limit; the boot
/// itself takes seconds.
pub fn boot_timeout_s(plan: &Plan, cases: usize) -> u64 {
    60 + cases as u64 * plan.case_timeout_ms.div_ceil(1000)
}

/// Boots until every case has run, was lost to a crash, or the reboots are
/// used up. `choose_accel` is asked once, with the first boot's initramfs.
pub fn run(
    spec: &Spec,
    choose_accel: &mut dyn FnMut(&Path) -> Result<String, QemuError>,
) -> Result<Booted, BootError> {
    let initrd = spec.out.join("initramfs.cpio");
    let mut accel = None;
    let mut judged: Vec<(Plan, BootRecord, console::Console, Judgement)> = Vec::new();
    let mut plan = spec.plan.clone();
    for number in 1..=MAX_REBOOTS + 1 {
        plan.nonce = fresh_nonce()?;
        let plan_name = numbered("plan", "json", number);
        let plan_path = spec.out.join(&plan_name);
        let plan_json = plan.to_json();
        std::fs::write(&plan_path, &plan_json).map_err(io(&plan_path))?;
        std::fs::write(
            &initrd,
            Initramfs::for_guest(spec.init.to_vec(), PLAN_PATH, &plan_json).to_bytes(),
        )
        .map_err(io(&initrd))?;
        let accel = match &accel {
            Some(a) => a,
            None => accel.insert(choose_accel(&initrd)?),
        };
        let cases = plan_cases(&plan);
        let timeout_s = boot_timeout_s(&plan, cases.len());
        let serial_name = numbered("serial", "log", number);
        let boot = qemu::boot(&qemu::BootSpec {
            arch: spec.arch,
            kernel: spec.kernel,
            initrd: &initrd,
            timeout: Duration::from_secs(timeout_s),
            console_cap: CONSOLE_CAP,
            log: &spec.out.join(&serial_name),
            accel,
        })?;
        let record = BootRecord {
            plan: plan_name,
            serial_log: serial_name,
            cases: cases.len(),
            ended: ended_name(boot.ended).into(),
            verdict: Verdict::Fail,
            reason: String::new(),
        };
        let console = console::analyse(&boot.console);
        let (record, judgement) = judge_boot(&plan, record, &console);
        let next = after_crash(&cases, &judgement);
        judged.push((plan.clone(), record, console, judgement));
        match next {
            Some(rest) if !rest.is_empty() => plan.only = rest,
            _ => break,
        }
    }
    let mut booted = combine(judged);
    booted.accel = accel.unwrap_or_default();
    Ok(booted)
}

fn judge_boot(
    plan: &Plan,
    mut record: BootRecord,
    console: &console::Console,
) -> (BootRecord, Judgement) {
    let cases = plan_cases(plan);
    let judgement = verdict::judge(
        &cases,
        verdict::Boot {
            console,
            ended: ended_from(&record.ended),
            timeout_s: boot_timeout_s(plan, cases.len()),
            nonce: &plan.nonce,
        },
    );
    record.verdict = judgement.verdict;
    record.reason = judgement.reason.clone();
    (record, judgement)
}

/// After a boot whose kernel crashed in a case, the names of the cases after
/// it; `None` when the boot did not end that way.
fn after_crash(cases: &[&Case], judgement: &Judgement) -> Option<Vec<String>> {
    if judgement.verdict != Verdict::Crash {
        return None;
    }
    let crashed = judgement
        .tests
        .iter()
        .position(|t| t.outcome == Outcome::Crash)?;
    Some(cases[crashed + 1..].iter().map(|c| c.full_name()).collect())
}

/// One judgement for the run from its boots: each case's outcome from the
/// last boot that ran it; the run's verdict the gravest of the boots'.
fn combine(judged: Vec<(Plan, BootRecord, console::Console, Judgement)>) -> Booted {
    let several = judged.len() > 1;
    let mut tests: Vec<TestResult> = Vec::new();
    let mut details = Vec::new();
    let mut evidence = Vec::new();
    let mut boots = Vec::new();
    for (_, record, console, judgement) in &judged {
        for t in &judgement.tests {
            match tests.iter_mut().find(|r| r.name == t.name) {
                Some(r) => *r = t.clone(),
                None => tests.push(t.clone()),
            }
        }
        let mut said = Vec::new();
        if !judgement.evidence.is_empty() {
            said.push(format!(
                "lines on the console that are not the guest's:\n{}",
                judgement.evidence.join("\n")
            ));
        }
        if let Some(f) = &console.failure {
            let excerpt: Vec<&str> = f.excerpt.lines().take(EXCERPT_LINES).collect();
            said.push(excerpt.join("\n"));
        }
        if !said.is_empty() {
            if several {
                details.push(format!("== {} ({}) ==", record.serial_log, record.reason));
            }
            details.extend(said);
        }
        evidence.extend(judgement.evidence.iter().cloned());
        boots.push(record.clone());
    }
    let last_left = judged.last().map(|(_, _, _, j)| j).and_then(|j| {
        let crashed = j.verdict == Verdict::Crash
            && j.tests.iter().any(|t| t.outcome == Outcome::Crash)
            && j.tests.iter().any(|t| t.outcome == Outcome::NotRun);
        crashed.then_some(())
    });
    if last_left.is_some() && boots.len() > MAX_REBOOTS {
        for t in tests.iter_mut().filter(|t| t.outcome == Outcome::NotRun) {
            t.message = format!(
                "not run: the kernel crashed in {} boots, and a run boots at most {} times",
                boots.len(),
                MAX_REBOOTS + 1
            );
        }
    }
    let (verdict, reason) = run_verdict(&boots, &tests);
    Booted {
        judgement: Judgement {
            verdict,
            reason,
            tests,
            evidence,
        },
        boots,
        details: details.join("\n"),
        accel: String::new(),
        kernel_versions: judged
            .iter()
            .filter_map(|(_, _, console, _)| kernel_note(console))
            .collect(),
    }
}

/// What the guest's [`KERNEL_TAG`] note said, if it printed one.
fn kernel_note(console: &console::Console) -> Option<String> {
    console
        .ktap
        .as_deref()?
        .lines()
        .find_map(|l| l.trim().strip_prefix("# ")?.strip_prefix(KERNEL_TAG))
        .map(|v| v.trim().to_string())
}

/// The gravest boot's verdict: tampered, then the first boot's boot-failed,
/// then crash, then timeout; otherwise pass or fail on the tests.
fn run_verdict(boots: &[BootRecord], tests: &[TestResult]) -> (Verdict, String) {
    let passed = tests.iter().filter(|t| t.outcome == Outcome::Pass).count();
    let count = format!("{passed}/{} tests passed", tests.len());
    if let Some(b) = boots.iter().find(|b| b.verdict == Verdict::Tampered) {
        return (Verdict::Tampered, b.reason.clone());
    }
    let first = match boots.first() {
        Some(b) => b,
        None => return (Verdict::BootFailed, "the kernel was never booted".into()),
    };
    if boots.len() == 1 {
        return (first.verdict, first.reason.clone());
    }
    let reboots = format!("{} boots after crashes, {count}", boots.len());
    for grave in [Verdict::Crash, Verdict::Timeout] {
        if let Some(b) = boots.iter().find(|b| b.verdict == grave) {
            return (grave, format!("{} ({reboots})", b.reason));
        }
    }
    if passed == tests.len() {
        (Verdict::Pass, count)
    } else {
        (Verdict::Fail, count)
    }
}

/// Judges a finished run again from what it left in `out` (its plans and
/// serial logs, and result.json for the rest), without building or booting:
/// a parser or rubric fix applies to old runs. Returns the new result;
/// writing it is the caller's choice.
pub fn rejudge(out: &Path) -> Result<RunResult, BootError> {
    let mut result = RunResult::read(out).map_err(io(&out.join("result.json")))?;
    let mut records = result.boots.clone();
    if records.is_empty() && !out.join("plan.json").exists() {
        return Err(BootError::Unreadable {
            path: out.to_path_buf(),
            message: format!(
                "this run never booted a kernel ({}: {}): nothing to judge",
                result.verdict.as_str(),
                result.reason
            ),
        });
    }
    if records.is_empty() {
        // A run from before boots were recorded: one boot.
        records.push(BootRecord {
            plan: "plan.json".into(),
            serial_log: "serial.log".into(),
            cases: 0,
            ended: "exited".into(),
            verdict: Verdict::Fail,
            reason: String::new(),
        });
    }
    let mut judged = Vec::new();
    for record in records {
        let plan_path = out.join(&record.plan);
        let text = std::fs::read_to_string(&plan_path).map_err(io(&plan_path))?;
        let plan = Plan::from_json(&text).map_err(|e| BootError::Unreadable {
            path: plan_path.clone(),
            message: e.to_string(),
        })?;
        let serial_path = out.join(&record.serial_log);
        let bytes = std::fs::read(&serial_path).map_err(io(&serial_path))?;
        let console = console::analyse(&String::from_utf8_lossy(&bytes));
        let (record, judgement) = judge_boot(&plan, record, &console);
        judged.push((plan, record, console, judgement));
    }
    let booted = combine(judged);
    let (verdict, reason) = verdict::fixed_numbers_verdict(
        booted.judgement.verdict,
        booted.judgement.reason,
        &result.wrong_syscall_numbers,
    );
    result.verdict = verdict;
    result.reason = reason;
    result.tests = booted.judgement.tests;
    result.details = booted.details;
    result.boots = booted.boots;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgrade_protocol::{BEGIN_MARKER, END_MARKER};

    #[test]
    fn the_kernel_note_is_read_from_the_guest_stream() {
        let serial =
            "[ 0.1] Linux\n<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n1..1\n# kgrade-nonce: n\n\
                      # kgrade-kernel: #7 SMP 2000-01-01\nok 1 a # nonce:n\n<<KGRADE-KTAP-END>>\n";
        let c = console::analyse(serial);
        assert_eq!(kernel_note(&c).as_deref(), Some("#7 SMP 2000-01-01"));
        let none = console::analyse("<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n<<KGRADE-KTAP-END>>\n");
        assert_eq!(kernel_note(&none), None);
    }

    fn plan(only: &[&str], nonce: &str) -> Plan {
        Plan {
            assignment: "tracker".into(),
            syscalls: Default::default(),
            params: Default::default(),
            only: only.iter().map(|s| s.to_string()).collect(),
            case_timeout_ms: 1000,
            nonce: nonce.into(),
        }
    }

    /// A console where the guest passes `pass` of the plan's cases (each
    /// signed), then, if `oops`, the kernel oopses in the next one.
    fn console_for(plan: &Plan, pass: usize, oops: bool) -> String {
        let cases = plan_cases(plan);
        let mut s = format!(
            "{BEGIN_MARKER}\nKTAP version 1\n1..1\n# kgrade-nonce: {}\n",
            plan.nonce
        );
        let mut suite = "";
        for (i, c) in cases.iter().take(pass).enumerate() {
            if c.suite != suite {
                suite = c.suite;
                s.push_str(&format!("    KTAP version 1\n    # Subtest: {suite}\n"));
            }
            s.push_str(&format!(
                "    ok {} {} # nonce:{}\n",
                i + 1,
                c.name,
                plan.nonce
            ));
        }
        if oops {
            s.push_str("[ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n[ 2.0] RIP: 0010:tracker_fetch+0x1/0x2\n[ 2.1] Kernel panic - not syncing: Fatal exception\n");
        } else {
            s.push_str(&format!("{END_MARKER}\n"));
        }
        s
    }

    fn boot_of(
        plan: &Plan,
        number: usize,
        pass: usize,
        oops: bool,
    ) -> (Plan, BootRecord, console::Console, Judgement) {
        let record = BootRecord {
            plan: numbered("plan", "json", number),
            serial_log: numbered("serial", "log", number),
            cases: plan_cases(plan).len(),
            ended: "exited".into(),
            verdict: Verdict::Fail,
            reason: String::new(),
        };
        let console = console::analyse(&console_for(plan, pass, oops));
        let (record, judgement) = judge_boot(plan, record, &console);
        (plan.clone(), record, console, judgement)
    }

    #[test]
    fn a_crash_boots_again_with_the_cases_after_it() {
        let first = plan(&[], "aa");
        let all = plan_cases(&first);
        let b1 = boot_of(&first, 1, 3, true);
        let rest = after_crash(&all, &b1.3).expect("the kernel crashed in case 4");
        assert_eq!(rest.len(), all.len() - 4);
        assert_eq!(rest[0], all[4].full_name());
        let second = plan(&rest.iter().map(String::as_str).collect::<Vec<_>>(), "bb");
        let b2 = boot_of(&second, 2, rest.len(), false);
        assert_eq!(after_crash(&plan_cases(&second), &b2.3), None);
        let booted = combine(vec![b1, b2]);
        let j = &booted.judgement;
        assert_eq!(j.tests.len(), all.len());
        assert_eq!(j.tests[3].outcome, Outcome::Crash);
        assert!(
            j.tests[3].message.contains("NULL pointer"),
            "{}",
            j.tests[3].message
        );
        let passed = j
            .tests
            .iter()
            .filter(|t| t.outcome == Outcome::Pass)
            .count();
        assert_eq!(passed, all.len() - 1);
        assert_eq!(j.verdict, Verdict::Crash);
        assert!(j.reason.contains("2 boots after crashes"), "{}", j.reason);
        assert_eq!(booted.boots[1].serial_log, "serial-2.log");
        assert!(
            booted.details.contains("== serial.log"),
            "{}",
            booted.details
        );
        assert!(booted.details.contains("RIP: 0010:tracker_fetch"));
    }

    #[test]
    fn reboots_are_bounded() {
        let mut boots = Vec::new();
        let mut p = plan(&[], "n1");
        for n in 1..=MAX_REBOOTS + 1 {
            let b = boot_of(&p, n, 0, true);
            let rest = after_crash(&plan_cases(&p), &b.3).unwrap();
            boots.push(b);
            p = plan(
                &rest.iter().map(String::as_str).collect::<Vec<_>>(),
                &format!("n{}", n + 1),
            );
        }
        let booted = combine(boots);
        let j = &booted.judgement;
        let crashed = j
            .tests
            .iter()
            .filter(|t| t.outcome == Outcome::Crash)
            .count();
        assert_eq!(crashed, MAX_REBOOTS + 1);
        let left: Vec<&TestResult> = j
            .tests
            .iter()
            .filter(|t| t.outcome == Outcome::NotRun)
            .collect();
        assert_eq!(left.len(), j.tests.len() - crashed);
        assert!(
            left[0].message.contains("boots at most 4 times"),
            "{}",
            left[0].message
        );
        assert_eq!(j.verdict, Verdict::Crash);
    }

    #[test]
    fn a_clean_boot_is_one_boot() {
        let p = plan(
            &["register.other_process", "fetch.fresh_entry_is_zero"],
            "cc",
        );
        let b = boot_of(&p, 1, 2, false);
        assert_eq!(after_crash(&plan_cases(&p), &b.3), None);
        let booted = combine(vec![b]);
        assert_eq!(booted.judgement.verdict, Verdict::Pass);
        assert_eq!(booted.boots.len(), 1);
        assert_eq!(booted.details, "");
    }

    #[test]
    fn a_tampered_boot_makes_a_tampered_run() {
        let p = plan(
            &["register.other_process", "fetch.fresh_entry_is_zero"],
            "dd",
        );
        let forged = console_for(&p, 2, false).replace(" # nonce:dd", "");
        let record = BootRecord {
            plan: "plan.json".into(),
            serial_log: "serial.log".into(),
            cases: 2,
            ended: "exited".into(),
            verdict: Verdict::Fail,
            reason: String::new(),
        };
        let console = console::analyse(&forged);
        let (record, j) = judge_boot(&p, record, &console);
        let booted = combine(vec![(p, record, console, j)]);
        assert_eq!(booted.judgement.verdict, Verdict::Tampered);
        assert!(booted.details.contains("not the guest's:\n"));
        assert!(
            booted.details.contains("ok 1 other_process"),
            "{}",
            booted.details
        );
    }

    #[test]
    fn rejudge_reads_plans_and_logs_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = plan(&[], "ee");
        let all = plan_cases(&first);
        let b1 = boot_of(&first, 1, 3, true);
        let rest = after_crash(&all, &b1.3).unwrap();
        let second = plan(&rest.iter().map(String::as_str).collect::<Vec<_>>(), "ff");
        let b2 = boot_of(&second, 2, rest.len(), false);
        for (p, n, pass, oops) in [(&first, 1, 3, true), (&second, 2, rest.len(), false)] {
            std::fs::write(dir.path().join(numbered("plan", "json", n)), p.to_json()).unwrap();
            std::fs::write(
                dir.path().join(numbered("serial", "log", n)),
                console_for(p, pass, oops),
            )
            .unwrap();
        }
        let booted = combine(vec![b1, b2]);
        let result = RunResult {
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
            boots: booted.boots.clone(),
        };
        result.write(dir.path()).unwrap();
        let again = rejudge(dir.path()).unwrap();
        assert_eq!(again.verdict, Verdict::Crash);
        assert_eq!(again.tests, booted.judgement.tests);
        assert_eq!(again.boots, booted.boots);
        assert_eq!(again.details, booted.details);
    }
}
