//! Test helpers shared across the workspace (dev-dependency only).
//!
//! Nothing here depends on the vaccel crates, so every crate — including
//! `vaccel-core` — can use it in its tests.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The cargo profile directory the running test binary lives in
/// (`target/debug` for `target/debug/deps/foo-hash`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// Compile a C source file into a shared library (once per process) and
/// return its path. `include` directories are passed with `-I`.
/// Panics with a clear message when no C compiler is installed.
pub fn compile_c_shared(src: &Path, include: &[&Path]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get(src) {
        return p.clone();
    }
    let stem = src
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("source file name");
    let out = scratch().join(format!("lib{stem}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-shared", "-fPIC", "-std=c11", "-O2", "-Wall", "-Werror", "-o",
    ])
    .arg(&out);
    for i in include {
        cmd.arg("-I").arg(i);
    }
    cmd.arg(src);
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler '{cc}' (apt-get install gcc): {e}"));
    assert!(st.success(), "compiling {} failed", src.display());
    built.insert(src.to_path_buf(), out.clone());
    out
}

/// The shared library of a workspace crate built as a `cdylib`
/// (`vaccel-plugin-noop` → `libvaccel_plugin_noop.so`).
///
/// `cargo test --workspace` builds every member's cdylib before any test
/// runs, into `target/<profile>/deps/`, so that copy is current and is used
/// as is. Only when it is missing (e.g. `cargo test -p` of another crate) is
/// the library built here, in the running binary's profile and into a
/// separate target directory: building it into the shared one with a
/// different feature set would leave two versions of its rlib next to each
/// other and break later compilations (doctests) in the same run.
pub fn plugin_library(crate_name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = done.get(crate_name) {
        return p.clone();
    }
    let file = format!("lib{}.so", crate_name.replace('-', "_"));
    let fresh = profile_dir().join("deps").join(&file);
    if fresh.exists() {
        done.insert(crate_name.to_string(), fresh.clone());
        return fresh;
    }
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    let target = profile_dir()
        .parent()
        .expect("target dir")
        .join("plugin-build");
    let built = target
        .join(if release { "release" } else { "debug" })
        .join(&file);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--lib",
            "-p",
            crate_name,
            "--target-dir",
        ])
        .arg(&target);
    if release {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .expect("running cargo to build a plugin library");
    assert!(st.success(), "building {crate_name} failed");
    assert!(built.exists(), "{} was not produced", built.display());
    done.insert(crate_name.to_string(), built.clone());
    built
}

/// A lock across test processes (a directory that only one can create).
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> DirLock {
        let start = Instant::now();
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return DirLock(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock left by a killed run is stale after 20 minutes.
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(1200));
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(1800),
                        "timed out waiting for {}",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot create lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The models directory, made by `python3 scripts/setup_models.py` (run once
/// per test process, under a lock shared with other test processes).
pub fn models_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let models = root.join("models");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let _ = std::fs::create_dir_all(&target);
        let _lock = DirLock::acquire(target.join(".vaccel-setup-models.lock"));
        let out = std::process::Command::new("python3")
            .arg(root.join("scripts/setup_models.py"))
            .arg("--models-dir")
            .arg(&models)
            .current_dir(&root)
            .output()
            .expect("running python3 scripts/setup_models.py (is python3 installed?)");
        assert!(
            out.status.success(),
            "scripts/setup_models.py failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            models.join("efficientnet-lite0.onnx").is_file(),
            "setup did not produce the model"
        );
        models
    })
    .clone()
}
