//! `gradebook.csv`: one row per student, one column per target, a total:
//! what an LMS imports.
//!
//! A function of the results alone (no times, no paths), so a resumed or
//! merged run writes the same bytes as an uninterrupted one.

use super::class_results::ClassResults;
use crate::rubric::fmt_points;
use crate::text;

/// `student,<target>...,total`; a run kgrade could not grade leaves its cell
/// (and the total) empty, so an LMS shows it as ungraded rather than 0.
pub fn csv(class: &ClassResults) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut header = vec!["student".to_string()];
    header.extend(class.targets.iter().map(|t| text::csv_cell(t)));
    header.push("total".into());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&header);
    for s in &class.students {
        // Names come from the submissions folder: never a formula.
        let mut row = vec![text::csv_cell(&s.name)];
        for r in &s.runs {
            row.push(
                r.score
                    .as_ref()
                    .map(|x| fmt_points(x.earned))
                    .unwrap_or_default(),
            );
        }
        row.push(s.total().map(fmt_points).unwrap_or_default());
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
