//! Progress of a class: students done out of the class with an ETA, and what
//! each worker is doing. On a terminal, indicatif bars; elsewhere (CI, Slurm
//! logs) one line per finished run.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// Where a grading run reports its progress.
pub trait Progress: Sync {
    /// `done` of `students` are already finished (reused); `runs` to do.
    fn begin(&self, students: usize, done: usize, runs: usize, reused: usize);
    /// Worker `worker` is at `what` (e.g. "alice tracker/6.1/x86_64: build kernel").
    fn stage(&self, worker: usize, what: &str);
    /// A run finished; `student_done` when it was that student's last.
    fn finished(&self, line: &str, student_done: bool);
    /// The last run finished.
    fn end(&self);
}

/// No output (library use, tests).
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: usize, _: usize, _: usize, _: usize) {}
    fn stage(&self, _: usize, _: &str) {}
    fn finished(&self, _: &str, _: bool) {}
    fn end(&self) {}
}

/// Progress bars on a terminal: the class, and one line per worker.
pub struct Bars {
    multi: MultiProgress,
    main: ProgressBar,
    workers: Vec<ProgressBar>,
}

impl Bars {
    /// Bars for `workers` workers, on stderr.
    pub fn new(workers: usize) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let main = multi.add(ProgressBar::new(0));
        main.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:30} {pos}/{len} students  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let style = ProgressStyle::with_template("  {spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let workers = (0..workers)
            .map(|_| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(style.clone());
                b.set_message("waiting");
                b
            })
            .collect();
        Bars {
            multi,
            main,
            workers,
        }
    }
}

impl Progress for Bars {
    fn begin(&self, students: usize, done: usize, runs: usize, reused: usize) {
        self.main.set_length(students as u64);
        self.main.set_position(done as u64);
        self.main.reset_eta();
        self.main
            .set_message(format!("{runs} runs to do, {reused} reused"));
        self.main.enable_steady_tick(Duration::from_millis(500));
        for w in &self.workers {
            w.enable_steady_tick(Duration::from_millis(200));
        }
        if self.multi.is_hidden() {
            eprintln!("kgrade grade: {students} students, {done} already graded, {runs} runs to do, {reused} reused");
        }
    }

    fn stage(&self, worker: usize, what: &str) {
        if let Some(w) = self.workers.get(worker) {
            w.set_message(crate::text::printable(what));
        }
    }

    fn finished(&self, line: &str, student_done: bool) {
        // Names and reasons come from submissions: no escape sequences.
        let line = crate::text::printable(line);
        let line = line.as_str();
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
        if student_done {
            self.main.inc(1);
        }
    }

    fn end(&self) {
        for w in &self.workers {
            w.finish_and_clear();
        }
        self.main.finish_and_clear();
    }
}
