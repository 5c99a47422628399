//! Shared by the C-facing tests: build the library, install it into a
//! temporary prefix with `scripts/install-capi.sh`, compile C programs
//! against it with `cc $(pkg-config --cflags --libs vaccel)`, run them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    vaccel_test_utils::workspace_root()
}

/// The workspace's `include/` directory.
pub fn include_dir() -> PathBuf {
    root().join("include")
}

/// The freshly built `libvaccel_capi.so` (cargo is asked every time, so it
/// is never stale; `libvaccel_capi.a` sits next to it).
pub fn cdylib() -> PathBuf {
    vaccel_test_utils::plugin_library("vaccel-capi")
}

/// A prefix with the C API installed by `scripts/install-capi.sh --from`
/// (once per test binary).
pub fn prefix() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let lib = cdylib();
        let dir = tempfile::tempdir().expect("temp dir");
        let st = Command::new("bash")
            .arg(root().join("scripts/install-capi.sh"))
            .arg("--from")
            .arg(lib.parent().expect("library dir"))
            .arg("--no-ldconfig")
            .arg("--link")
            .arg(dir.path())
            .env_remove("DESTDIR")
            .stdout(Stdio::null())
            .status()
            .expect("running scripts/install-capi.sh");
        assert!(st.success(), "scripts/install-capi.sh failed");
        dir
    })
    .path()
}

/// `pkg-config --cflags --libs vaccel` (plus more `args`) against the
/// temporary prefix, split into arguments.
pub fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("vaccel")
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config (apt-get install pkg-config): {e}"));
    assert!(
        out.status.success(),
        "pkg-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pkg-config output")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A scratch directory for this test binary's outputs.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Compile C sources into `out` against the installed library, with
/// `-std=c11 -Wall -Wextra -Werror`, `$(pkg-config --cflags --libs vaccel)`
/// and an rpath to the prefix; `extra` goes before the libraries.
pub fn compile(srcs: &[&Path], out: &Path, extra: &[&str]) {
    let mut cmd = Command::new(cc());
    cmd.args(["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .args(pkg_config(&["--cflags"]))
        .args(srcs)
        .args(extra)
        .args(pkg_config(&["--libs"]))
        .arg(format!("-Wl,-rpath,{}", prefix().join("lib").display()));
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler (apt-get install gcc): {e}"));
    assert!(
        o.status.success(),
        "compiling {srcs:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run a program with a clean vAccel environment plus `env`.
pub fn run(bin: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("VACCEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    if let Some(data) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(data).expect("writing stdin");
    }
    child.wait_with_output().expect("waiting for the program")
}

/// stdout of a run that must succeed.
pub fn run_ok(bin: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> String {
    let o = run(bin, args, env, stdin);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{} {args:?} failed ({}):\nstdout:\n{out}\nstderr:\n{}",
        bin.display(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}
