//! Writing a class's reports from its output directory: gradebook.csv,
//! summary.md, junit.xml, report/ (HTML) and each student's Gradescope
//! results.json.

use super::class_results::ClassResults;
use super::manifest::Manifest;
use super::run_files::{student_dir, write_atomic};
use super::{gradebook, gradescope, html, junit, summary, GradeError};
use crate::ioerr::IoError;
use crate::rubric::Rubric;
use crate::transcript::normalise;
use std::path::Path;
use std::time::{Duration, Instant};

/// The gradebook's file name in the output directory.
pub const GRADEBOOK: &str = "gradebook.csv";
/// The Markdown summary's.
pub const SUMMARY: &str = "summary.md";
/// The JUnit XML's.
pub const JUNIT: &str = "junit.xml";
/// The HTML report's index page.
pub const REPORT_INDEX: &str = "report/index.html";
pub(crate) const GRADESCOPE: &str = "results.json";
/// `kgrade run --reference`'s console comparison, beside result.json.
pub const SERIAL_DIFF: &str = "serial.diff";

/// What a console diff may cost: a submission's kernel writes the console,
/// up to the boot's 4 MiB cap, and every report is rewritten on each
/// `grade` and `merge`. An honest console is tens of KiB.
pub(crate) struct DiffBudget {
    /// Bytes and lines of either console before it is even normalised.
    pub(crate) input_bytes: usize,
    pub(crate) input_lines: usize,
    /// Wall-clock time for the line diff (similar's Myers deadline; past it
    /// the diff is coarser, and a coarse diff is usually too long anyway).
    pub(crate) time: Duration,
    /// Bytes of diff worth showing.
    pub(crate) output_bytes: usize,
}

pub(crate) const DIFF_BUDGET: DiffBudget = DiffBudget {
    input_bytes: 1 << 20,
    input_lines: 20_000,
    time: Duration::from_secs(2),
    output_bytes: 256 << 10,
};

/// The serial console's differences from the reference's, once both are
/// normalised (timestamps, addresses and the like masked), within
/// [`DIFF_BUDGET`]; past it, a line saying the consoles are too different.
pub(crate) fn serial_diff(reference: Option<&str>, actual: Option<&str>) -> Option<String> {
    serial_diff_within(reference?, actual?, &DIFF_BUDGET)
}

pub(crate) fn serial_diff_within(
    reference: &str,
    actual: &str,
    budget: &DiffBudget,
) -> Option<String> {
    let too_different = |why: String| Some(format!("(too different to diff: {why})\n"));
    for (side, text) in [("reference", reference), ("submission", actual)] {
        // Counted without building anything: a flood of empty lines is cheap here.
        let lines = text.bytes().filter(|&b| b == b'\n').count();
        if text.len() > budget.input_bytes || lines > budget.input_lines {
            return too_different(format!(
                "the {side}'s console has {lines} lines, {} bytes",
                text.len()
            ));
        }
    }
    let (a, b) = (normalise(reference), normalise(actual));
    if a == b {
        return None;
    }
    let started = Instant::now();
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(budget.time)
        .diff_lines(&a, &b);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header("reference", "submission")
        .to_string();
    if text.len() > budget.output_bytes {
        return too_different(format!(
            "the differences run to {} bytes ({:.1} s)",
            text.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    Some(text)
}

/// Writes `out/serial.diff`: the console of the run in `out` against the
/// reference run's in `reference`, normalised as in a class report, so a
/// single run shows a student what the report would.
pub fn write_serial_diff(reference: &Path, out: &Path) -> Result<(), GradeError> {
    let read = |dir: &Path| {
        let path = dir.join("serial.log");
        std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|source| GradeError::Io(IoError { path, source }))
    };
    let (expected, actual) = (read(reference)?, read(out)?);
    let text = serial_diff(Some(&expected), Some(&actual))
        .unwrap_or_else(|| "(no differences from the reference's console)\n".into());
    write(&out.join(SERIAL_DIFF), &text)
}

fn write(path: &Path, text: &str) -> Result<(), GradeError> {
    write_atomic(path, text.as_bytes()).map_err(|source| {
        GradeError::Io(IoError {
            path: path.to_path_buf(),
            source,
        })
    })
}

pub(crate) fn write_reports(
    out: &Path,
    manifest: &Manifest,
    rubric: &Rubric,
) -> Result<ClassResults, GradeError> {
    let class = ClassResults::load(out, manifest, rubric);
    write(&out.join(GRADEBOOK), &gradebook::csv(&class))?;
    write(&out.join(SUMMARY), &summary::markdown(&class))?;
    write(&out.join(JUNIT), &junit::junit(&class))?;
    let reference_serials: Vec<Option<String>> =
        class.references.iter().map(|r| r.serial()).collect();
    for s in &class.students {
        let diffs: Vec<Option<String>> = s
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let reference = reference_serials.get(i).and_then(|r| r.as_deref());
                serial_diff(reference, run.serial().as_deref())
            })
            .collect();
        write(
            &student_dir(out, &s.dir).join(GRADESCOPE),
            &gradescope::to_json(&gradescope::results(&class, s, &diffs)),
        )?;
        write(
            &out.join("report").join(html::student_page_name(&s.dir)),
            &html::student(&class, s, &diffs),
        )?;
    }
    write(&out.join(REPORT_INDEX), &html::index(&class))?;
    Ok(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str =
        "<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n1..1\nok 1 register\n<<KGRADE-KTAP-END>>\n";

    #[test]
    fn small_differences_are_shown() {
        let failing = REFERENCE.replace("ok 1", "not ok 1");
        let d = serial_diff(Some(REFERENCE), Some(&failing)).unwrap();
        assert!(d.contains("+not ok 1 register"), "{d}");
        assert_eq!(serial_diff(Some(REFERENCE), Some(REFERENCE)), None);
        assert_eq!(serial_diff(None, Some(REFERENCE)), None);
    }

    #[test]
    fn a_single_run_gets_its_serial_diff_file() {
        let (reference, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(reference.path().join("serial.log"), REFERENCE).unwrap();
        std::fs::write(out.path().join("serial.log"), REFERENCE).unwrap();
        write_serial_diff(reference.path(), out.path()).unwrap();
        let same = std::fs::read_to_string(out.path().join(SERIAL_DIFF)).unwrap();
        assert!(same.contains("no differences"), "{same}");
        let failing = REFERENCE.replace("ok 1", "not ok 1");
        std::fs::write(out.path().join("serial.log"), failing).unwrap();
        write_serial_diff(reference.path(), out.path()).unwrap();
        let d = std::fs::read_to_string(out.path().join(SERIAL_DIFF)).unwrap();
        assert!(d.contains("+not ok 1 register"), "{d}");
        // No reference console: an error, not an empty diff that looks like a pass.
        let empty = tempfile::tempdir().unwrap();
        assert!(write_serial_diff(empty.path(), out.path()).is_err());
    }

    /// What the boot's console cap lets through, as fast as it can be told.
    #[test]
    fn a_4_mib_console_does_not_stall_the_reports() {
        let floods = [
            "\n".repeat(4 << 20),
            "\r\n".repeat(2 << 20),
            (0..300_000)
                .map(|i| format!("line {i}\n"))
                .collect::<String>(),
        ];
        for flood in &floods {
            let started = Instant::now();
            let d = serial_diff(Some(REFERENCE), Some(flood)).unwrap();
            assert!(d.starts_with("(too different to diff"), "{d}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
        }
    }

    /// Within the input caps, the time and output budgets still hold: two
    /// consoles of distinct lines are the Myers diff's worst case.
    #[test]
    fn the_diff_itself_is_bounded_in_time_and_size() {
        let a: String = (0..19_000)
            .map(|i| format!("ok {i} a{}\n", i * 7919 % 10007))
            .collect();
        let b: String = (0..19_000)
            .map(|i| format!("ok {i} b{}\n", i * 104729 % 10009))
            .collect();
        let budget = DiffBudget {
            time: Duration::from_millis(300),
            ..DIFF_BUDGET
        };
        let started = Instant::now();
        let d = serial_diff_within(&a, &b, &budget).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(
            d.len() <= budget.output_bytes || d.starts_with("(too different"),
            "{}",
            d.len()
        );
    }
}
