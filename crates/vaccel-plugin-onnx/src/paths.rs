//! Where the default model, its labels and the onnxruntime library live.
//!
//! The models directory is, in order of preference:
//! 1. `VACCEL_MODELS_DIR` (or the directory given to
//!    [`crate::OnnxPlugin::builder`]), used alone when set;
//! 2. `models/` in the current directory;
//! 3. the nearest `models/` directory at or up to three levels above the
//!    directory of the running executable (so binaries, tests and examples run
//!    from cargo's `target/<profile>/…` find the workspace's `models/`).

use std::path::{Path, PathBuf};

/// File name of the default classification model.
pub const DEFAULT_MODEL: &str = "efficientnet-lite0.onnx";
/// File name of the default labels.
pub const DEFAULT_LABELS: &str = "imagenet-labels.txt";

/// Candidate models directories, best first. `explicit` wins over everything.
pub fn models_dirs(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = explicit {
        return vec![d.to_path_buf()];
    }
    if let Some(d) = std::env::var_os("VACCEL_MODELS_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(d)];
    }
    let mut out = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        out.push(cwd.join("models"));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        for anc in exe_dir.ancestors().take(4) {
            let cand = anc.join("models");
            if !out.contains(&cand) {
                out.push(cand);
            }
        }
    }
    out
}

/// The first candidate directory holding `file`.
pub fn find_in(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(file)).find(|p| p.is_file())
}

/// The candidate directories, for messages.
pub fn describe(dirs: &[PathBuf]) -> String {
    let v: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if v.is_empty() {
        "(no candidate directory)".to_string()
    } else {
        v.join(", ")
    }
}
