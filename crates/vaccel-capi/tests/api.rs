//! `tests/c/api.c`: the C API doing its job on the noop plugin — sessions,
//! resources, every op function, genop, argument arrays and models —
//! compiled against the installed library with `-Wall -Wextra -Werror`.

mod common;

use std::path::PathBuf;

#[test]
fn the_c_api_works_end_to_end_on_the_noop_plugin() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c/api.c");
    let bin = common::scratch().join("api");
    common::compile(&[&src], &bin, &[]);
    let file = src.to_str().expect("UTF-8 path");
    let out = common::run_ok(&bin, &[file], &[("VACCEL_PLUGINS", "noop")], None);
    assert!(
        out.contains("api: ") && out.contains("checks passed"),
        "{out}"
    );
}
