//! What the end-to-end tests share: fixtures, and the reference with a
//! fixture patch laid over it (as mutants are, so only what it touches is
//! rebuilt).

#![allow(dead_code)]

use kgrade::report::RunResult;
use std::path::{Path, PathBuf};

pub const TARGET: &str = "tracker/6.1/x86_64";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the reference with `fixture_name` over it, running `only` (empty:
/// all); the run's directory is returned with the result.
pub fn reference_with(fixture_name: &str, only: &[&str]) -> (RunResult, tempfile::TempDir) {
    let root = kgrade::paths::project_root();
    let catalog = kgrade::target::Catalog::load(&root).unwrap();
    let target = catalog.target(TARGET).unwrap();
    let patch = kgrade::submission::PatchFile {
        name: fixture_name.into(),
        text: std::fs::read_to_string(fixture(fixture_name)).unwrap(),
    };
    let out = tempfile::tempdir().unwrap();
    let req = kgrade::pipeline::Request {
        catalog: &catalog,
        target,
        submission_path: None,
        kernel_src: None,
        out: out.path(),
        overlay: Some(&patch),
        only: only.iter().map(|s| s.to_string()).collect(),
        discard_workspace: false,
        allow_unsandboxed: false,
        build_timeout: None,
        // As test-all: the mutants rebuild over a reference that filled it.
        fill_cache: true,
    };
    let r = kgrade::pipeline::run(&req, &mut |_| {}).unwrap();
    assert!(out.path().join("result.json").is_file());
    (r, out)
}
