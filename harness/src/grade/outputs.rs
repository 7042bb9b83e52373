//! Writing a class's reports from its output directory: gradebook.csv,
//! summary.md, junit.xml, report/ (HTML) and each student's Gradescope
//! results.json.

use super::manifest::Manifest;
use super::record::{student_dir, write_atomic};
use super::results::ClassResults;
use super::{gradebook, gradescope, html, junit, GradeError};
use crate::rubric::Rubric;
use std::path::Path;

pub const GRADEBOOK: &str = "gradebook.csv";
pub const SUMMARY: &str = "summary.md";
pub const JUNIT: &str = "junit.xml";
pub const REPORT_INDEX: &str = "report/index.html";
pub const GRADESCOPE: &str = "results.json";

/// The serial console's differences from the reference's, once both are
/// normalised (timestamps, addresses and the like masked).
pub fn serial_diff(reference: Option<&str>, actual: Option<&str>) -> Option<String> {
    crate::transcript::diff(reference?, actual?)
}

fn write(path: &Path, text: &str) -> Result<(), GradeError> {
    write_atomic(path, text.as_bytes()).map_err(|source| GradeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn write_reports(
    out: &Path,
    manifest: &Manifest,
    rubric: &Rubric,
) -> Result<ClassResults, GradeError> {
    let class = ClassResults::load(out, manifest, rubric);
    write(&out.join(GRADEBOOK), &gradebook::csv(&class))?;
    write(&out.join(SUMMARY), &gradebook::summary(&class))?;
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
