//! `tests/c/bad_input.c`, compiled against the installed library and run
//! in each of its modes: NULL sessions and buffers, zero lengths, output
//! buffers that are too small (truncated + NUL for text, `VACCEL_ERANGE`
//! with the size needed for binary outputs), unknown op ids in genop,
//! released sessions, missing resource files, ops the plugin lacks, an
//! unknown plugin name. Each case must return its error code; the program
//! must not crash.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

fn program() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c/bad_input.c");
        let out = common::scratch().join("bad_input");
        common::compile(&[&src], &out, &[]);
        out
    })
}

#[test]
fn bad_input_with_the_noop_plugin() {
    let out = common::run_ok(program(), &[], &[("VACCEL_PLUGINS", "noop")], None);
    assert!(out.contains("bad_input: "), "{out}");
    assert!(out.contains("checks passed"), "{out}");
}

#[test]
fn ops_the_plugin_lacks_are_enotsup() {
    let out = common::run_ok(program(), &["notsup"], &[("VACCEL_PLUGINS", "exec")], None);
    assert!(out.contains("checks passed"), "{out}");
}

#[test]
fn profiling_regions_when_enabled() {
    let o = common::run(
        program(),
        &["prof"],
        &[
            ("VACCEL_PLUGINS", "noop"),
            ("VACCEL_PROFILING_ENABLED", "1"),
        ],
        None,
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        err.contains("[prof] region: total_time: ") && err.contains("nr_entries: 3"),
        "{err}"
    );
}

#[test]
fn an_unknown_plugin_fails_session_creation_cleanly() {
    let out = common::run_ok(
        program(),
        &["badplugins"],
        &[("VACCEL_PLUGINS", "nosuch")],
        None,
    );
    assert!(out.contains("checks passed"), "{out}");
}
