//! kgrade's guest `/init`: mounts what the tests need, reads the plan the
//! host put in the initramfs, runs the selected cases (each in its own
//! process, with a time limit), prints KTAP between the protocol's markers on
//! the console, and reboots (QEMU runs with -no-reboot, so the VM ends).
//!
//! Never run it anywhere but as a VM's pid 1: it mounts over /proc, /dev,
//! /tmp and reboots the machine.

mod ktap;
mod memuse;
mod pfstat;
mod runner;
mod sys;
mod tracker;

use kgrade_protocol::{cases_for, Case, Plan, BEGIN_MARKER, END_MARKER, KERNEL_TAG, PLAN_PATH};
use runner::{Assignment, Ctx, Outcome};

/// The assignments this guest has tests for.
const ASSIGNMENTS: &[&Assignment] = &[
    &tracker::ASSIGNMENT,
    &pfstat::ASSIGNMENT,
    &memuse::ASSIGNMENT,
];

fn main() {
    if sys::getpid() != 1 {
        eprintln!(
            "kgrade-guest: refusing to run as pid {}: this is a VM's /init, \
             and it would mount filesystems and reboot the machine",
            sys::getpid()
        );
        std::process::exit(2);
    }
    runner::install_panic_hook();
    let notes = sys::mount_basics();
    ktap::emit(BEGIN_MARKER);
    match load_plan() {
        Ok((plan, assignment)) => run(plan, assignment, &notes),
        Err(e) => {
            emit_all(ktap::header(0, ""));
            emit_notes(&notes);
            ktap::emit(&ktap::note(&format!("plan error: {e}")));
        }
    }
    ktap::emit(END_MARKER);
    sys::reboot()
}

fn emit_all(lines: Vec<String>) {
    for l in lines {
        ktap::emit(&l);
    }
}

fn emit_notes(notes: &[String]) {
    for n in notes {
        ktap::emit(&ktap::note(n));
    }
}

fn load_plan() -> Result<(Plan, &'static Assignment), String> {
    let text =
        std::fs::read_to_string(PLAN_PATH).map_err(|e| format!("cannot read {PLAN_PATH}: {e}"))?;
    let plan = Plan::from_json(&text).map_err(|e| format!("{PLAN_PATH}: {e}"))?;
    // The nonce is for the guest's eyes: a kernel reading the file system
    // (the student's syscalls open files too) must not find it lying there.
    // Best effort: a failed unlink leaves the run as it was.
    let _ = std::fs::remove_file(PLAN_PATH);
    let assignment = ASSIGNMENTS
        .iter()
        .copied()
        .find(|a| a.name == plan.assignment)
        .ok_or_else(|| {
            format!(
                "this guest has no tests for assignment {:?}",
                plan.assignment
            )
        })?;
    (assignment.check_plan)(&plan)?;
    Ok((plan, assignment))
}

/// The plan's cases grouped by suite, in the order the host expects them.
fn select(plan: &Plan) -> Vec<(&'static str, Vec<&'static Case>)> {
    plan.run_order()
}

/// Names in `plan.only` that are no case of the assignment (a host bug).
fn unknown_selections(plan: &Plan) -> Vec<&str> {
    let known: Vec<String> = cases_for(&plan.assignment).map(|c| c.full_name()).collect();
    plan.only
        .iter()
        .filter(|n| !known.contains(n))
        .map(String::as_str)
        .collect()
}

fn run(plan: Plan, assignment: &Assignment, notes: &[String]) {
    let suites = select(&plan);
    emit_all(ktap::header(suites.len(), &plan.nonce));
    emit_notes(notes);
    let count: usize = suites.iter().map(|(_, c)| c.len()).sum();
    ktap::emit(&ktap::note(&format!(
        "kgrade-guest {}: {} on {}, {count} cases, {} ms each at most, {} CPUs",
        env!("CARGO_PKG_VERSION"),
        plan.assignment,
        std::env::consts::ARCH,
        plan.case_timeout_ms,
        sys::cpus()
    )));
    ktap::emit(&ktap::note(&format!(
        "{KERNEL_TAG}{}",
        sys::kernel_version()
    )));
    for name in unknown_selections(&plan) {
        ktap::emit(&ktap::note(&format!(
            "plan selects an unknown case: {name}"
        )));
    }
    let timeout_ms = plan.case_timeout_ms;
    let nonce = plan.nonce.clone();
    let ctx = Ctx::new(plan);
    for (i, (suite, cases)) in suites.iter().enumerate() {
        emit_all(ktap::suite_header(suite, cases.len()));
        let mut all_passed = true;
        for (j, case) in cases.iter().enumerate() {
            let outcome = run_one(&ctx, assignment, case, timeout_ms);
            all_passed &= outcome == Outcome::Pass;
            emit_all(ktap::case_lines(j + 1, case.name, &outcome, &nonce));
        }
        ktap::emit(&ktap::suite_result(i + 1, suite, all_passed, &nonce));
    }
}

fn run_one(ctx: &Ctx, assignment: &Assignment, case: &Case, timeout_ms: u64) -> Outcome {
    if let Some(name) = case.needs.iter().find(|n| !ctx.sys.has(n)) {
        return Outcome::Fail(format!("missing syscall: {name}"));
    }
    match assignment.case(&case.full_name()) {
        Some(f) => runner::run_case(ctx, f, timeout_ms),
        None => Outcome::Fail("not implemented in this guest".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(only: &str) -> Plan {
        Plan::from_json(&format!(
            r#"{{"assignment":"tracker","syscalls":{{}},"case_timeout_ms":1000,"only":{only}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn every_assignment_with_cases_has_a_guest_module() {
        for a in ASSIGNMENTS {
            assert!(cases_for(a.name).count() > 0, "{}", a.name);
        }
        assert!(ASSIGNMENTS.iter().any(|a| a.name == "tracker"));
        assert!(ASSIGNMENTS.iter().any(|a| a.name == "pfstat"));
        assert!(ASSIGNMENTS.iter().any(|a| a.name == "memuse"));
    }

    #[test]
    fn every_catalogue_case_is_implemented_and_nothing_else() {
        use std::collections::BTreeSet;
        for a in ASSIGNMENTS {
            let catalogue: BTreeSet<String> = cases_for(a.name).map(|c| c.full_name()).collect();
            let implemented: BTreeSet<String> =
                a.cases.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(
                implemented.len(),
                a.cases.len(),
                "{}: a case is listed twice",
                a.name
            );
            let missing: Vec<_> = catalogue.difference(&implemented).collect();
            let extra: Vec<_> = implemented.difference(&catalogue).collect();
            assert!(
                missing.is_empty(),
                "{}: not implemented: {missing:?}",
                a.name
            );
            assert!(
                extra.is_empty(),
                "{}: not in the catalogue: {extra:?}",
                a.name
            );
        }
    }

    #[test]
    fn suites_in_catalogue_order() {
        let all = select(&plan("[]"));
        let names: Vec<&str> = all.iter().map(|(s, _)| *s).collect();
        assert_eq!(&names[..3], ["register", "fetch", "deregister"]);
        assert_eq!(all[0].1.len(), 7);
        let total: usize = all.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(total, cases_for("tracker").count());
    }

    #[test]
    fn selection_keeps_only_named_cases() {
        let p = plan(r#"["heap.brk_shrink","register.other_process","nope.x"]"#);
        let s = select(&p);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].0, s[0].1[0].name), ("register", "other_process"));
        assert_eq!((s[1].0, s[1].1[0].name), ("heap", "brk_shrink"));
        assert_eq!(unknown_selections(&p), vec!["nope.x"]);
    }

    #[test]
    fn missing_syscalls_fail_without_running() {
        let ctx = Ctx::new(plan("[]"));
        let case = cases_for("tracker")
            .find(|c| c.full_name() == "fetch.fresh_entry_is_zero")
            .unwrap();
        assert_eq!(
            run_one(&ctx, &tracker::ASSIGNMENT, case, 1000),
            Outcome::Fail("missing syscall: register".into())
        );
    }
}
