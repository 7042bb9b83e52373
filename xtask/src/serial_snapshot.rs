//! The reference run's serial transcript, normalised, is an insta snapshot:
//! a change to what the guest prints, or to what the reference kernel says,
//! fails test-all with the diff, and `cargo insta review` (or `accept`) takes
//! the new transcript once it is understood.

use kgrade::{paths, transcript};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Where the committed transcripts live, one `<target>.snap` each.
pub fn snapshot_dir() -> PathBuf {
    paths::project_root().join("harness/tests/serial-snapshots")
}

/// Compares `serial_log`'s normalised transcript with the snapshot named
/// after `target` in `dir`. insta prints the diff and, outside CI, leaves a
/// `.snap.new` beside the snapshot for `cargo insta review`.
pub fn check(dir: &Path, target: &str, serial_log: &Path) -> Result<(), String> {
    let serial = std::fs::read_to_string(serial_log)
        .map_err(|e| format!("cannot read {}: {e}", serial_log.display()))?;
    let normalised = transcript::normalise(&serial);
    let name = paths::component(target);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(format!(
        "normalised serial transcript of the reference run on {target}"
    ));
    // insta reports a mismatch by panicking; one target's difference must
    // not stop test-all from checking the others.
    catch_unwind(AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name.as_str(), normalised))
    }))
    .map_err(|_| {
        format!(
            "the serial transcript differs from {}/{name}.snap (diff above); \
             if the change is intended, run `cargo insta review`",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "<<KGRADE-KTAP-BEGIN>>\nKTAP version 1\n1..1\n    ok 1 self_returns_zero\nok 1 register\n[    0.9] reboot: Restarting system\n<<KGRADE-KTAP-END>>\n";

    /// What `cargo insta accept` does to a pending snapshot, by insta's own
    /// file format: the `.snap.new` the failed check left becomes the
    /// snapshot (so CI needs no cargo-insta compiled for this).
    fn accept(dir: &Path) {
        let pending = dir.join("tracker_6.1_x86_64.snap.new");
        assert!(
            pending.exists(),
            "the failed check left no {}",
            pending.display()
        );
        std::fs::rename(&pending, dir.join("tracker_6.1_x86_64.snap")).unwrap();
    }

    /// nextest runs each test in its own process, so setting INSTA_UPDATE
    /// here touches no other test.
    #[test]
    fn a_changed_transcript_fails_until_accepted() {
        std::env::set_var("INSTA_UPDATE", "new");
        std::env::remove_var("INSTA_FORCE_PASS");
        let tmp = tempfile::tempdir().unwrap();
        let snaps = tmp.path().join("snapshots");
        let log = tmp.path().join("serial.log");
        std::fs::write(&log, SERIAL).unwrap();

        // No snapshot yet: the check fails and proposes one.
        assert!(check(&snaps, "tracker/6.1/x86_64", &log).is_err());
        assert!(snaps.join("tracker_6.1_x86_64.snap.new").exists());
        accept(&snaps);
        check(&snaps, "tracker/6.1/x86_64", &log).expect("accepted snapshot matches");

        // Run-to-run noise does not count as a change...
        let noisy = SERIAL.replace("[    0.9]", "[    1.734]");
        std::fs::write(&log, noisy).unwrap();
        check(&snaps, "tracker/6.1/x86_64", &log).expect("timestamps are redacted");

        // ...but a different outcome does, until it is accepted.
        let changed = SERIAL.replace("    ok 1 self", "    not ok 1 self");
        std::fs::write(&log, &changed).unwrap();
        let err = check(&snaps, "tracker/6.1/x86_64", &log).unwrap_err();
        assert!(err.contains("cargo insta review"), "{err}");
        accept(&snaps);
        check(&snaps, "tracker/6.1/x86_64", &log).expect("accepted change matches");
        let stored = std::fs::read_to_string(snaps.join("tracker_6.1_x86_64.snap")).unwrap();
        assert!(
            stored.contains("    not ok 1 self_returns_zero"),
            "{stored}"
        );
    }
}
