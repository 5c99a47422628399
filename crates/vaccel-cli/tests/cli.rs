//! The `vaccel` binary, run as a user would: the same binary switches
//! plugin by changing only VACCEL_PLUGINS, and bad input is one clear line.

use std::path::Path;
use std::process::{Command, Output};

fn vaccel(plugins: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(args)
        .env("VACCEL_PLUGINS", plugins)
        .env_remove("VACCEL_BACKENDS")
        .env_remove("VACCEL_LOG_LEVEL")
        .output()
        .expect("running vaccel")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(o);
    assert!(err.contains(needle), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
}

#[test]
fn same_binary_switches_plugin_with_vaccel_plugins() {
    let so = vaccel_test_utils::plugin_library("vaccel-plugin-noop");
    let so = so.to_str().unwrap();

    let o = vaccel(so, &["plugins"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1. noop 0.1.0 ("), "{out}");
    assert!(out.contains(so), "source path listed: {out}");
    assert!(out.contains("types: DEBUG (0x100)"), "{out}");
    assert!(out.contains("NOOP, EXEC"), "{out}");

    let o = vaccel(so, &["noop", "-n", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("noop: 1000 call(s) on plugin 'noop'"),
        "{}",
        stdout(&o)
    );

    let o = vaccel("exec", &["noop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("on plugin 'exec'"), "{}", stdout(&o));

    // A plugin written in C, loaded into the same binary.
    let root = vaccel_test_utils::workspace_root();
    let c = vaccel_test_utils::compile_c_shared(
        &root.join("crates/vaccel-core/tests/fixtures/cplugin.c"),
        &[&root.join("include")],
    );
    let o = vaccel(c.to_str().unwrap(), &["noop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("on plugin 'cplugin'"), "{}", stdout(&o));
}

#[test]
fn plugins_json_lists_details() {
    let o = vaccel("noop:exec", &["plugins", "--json", "--available"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["loaded"][0]["name"], "noop");
    assert_eq!(v["loaded"][1]["name"], "exec");
    assert_eq!(v["loaded"][0]["source"], "built-in");
    assert!(v["loaded"][1]["details"]["allow"].is_string());
}

#[test]
fn profile_flag_prints_regions() {
    let o = vaccel("noop", &["--profile", "noop", "-n", "5"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("[prof] vaccel_noop_op: total_time:"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("nr_entries: 5"), "{}", stdout(&o));
}

#[test]
fn exec_through_the_cli() {
    let root = vaccel_test_utils::workspace_root();
    let lib = vaccel_test_utils::compile_c_shared(
        &root.join("crates/vaccel-plugin-exec/tests/fixtures/exectest.c"),
        &[],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args([
            "exec",
            lib.to_str().unwrap(),
            "double_int",
            "i32:21",
            "--out",
            "i32",
        ])
        .env("VACCEL_PLUGINS", "exec")
        .env("VACCEL_EXEC_ALLOWLIST", &lib)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("out[0] = 42"), "{}", stdout(&o));

    let o = vaccel(
        "exec",
        &[
            "exec",
            lib.to_str().unwrap(),
            "double_int",
            "i32:21",
            "--out",
            "i32",
        ],
    );
    assert_one_line_error(&o, "not on the exec allow-list");
    assert!(stderr(&o).contains("(EPERM)"));
}

#[test]
fn bad_input_is_one_clear_line() {
    assert_one_line_error(&vaccel("nosuch", &["noop"]), "unknown plugin 'nosuch'");
    assert_one_line_error(&vaccel("/no/such/lib.so", &["noop"]), "does not exist");
    let root = vaccel_test_utils::workspace_root();
    let abi = vaccel_test_utils::compile_c_shared(
        &root.join("crates/vaccel-core/tests/fixtures/abi99.c"),
        &[],
    );
    let o = vaccel(abi.to_str().unwrap(), &["noop"]);
    assert_one_line_error(&o, "built for plugin ABI 99");
    assert!(stderr(&o).contains("(ELIBBAD)"));
    let not = vaccel_test_utils::compile_c_shared(
        &root.join("crates/vaccel-core/tests/fixtures/notplugin.c"),
        &[],
    );
    assert_one_line_error(
        &vaccel(not.to_str().unwrap(), &["noop"]),
        "is not a vAccel plugin",
    );
    assert_one_line_error(
        &vaccel("noop", &["--hint", "quantum", "noop"]),
        "unknown plugin type 'quantum'",
    );
    assert_one_line_error(
        &vaccel("noop", &["--hint", "gpu", "noop"]),
        "no loaded plugin matches hint GPU",
    );
    assert_one_line_error(
        &vaccel("noop", &["exec", "lib.so", "f", "i32:x"]),
        "not a valid i32",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["noop"])
        .env("VACCEL_LOG_LEVEL", "9")
        .output()
        .unwrap();
    assert_one_line_error(&o, "VACCEL_LOG_LEVEL=9");
    // Usage errors come from clap with exit code 2.
    let o = vaccel("noop", &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(Path::new(env!("CARGO_BIN_EXE_vaccel")).exists());
}

#[test]
fn deprecated_backends_alias_still_works() {
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["noop"])
        .env_remove("VACCEL_PLUGINS")
        .env("VACCEL_BACKENDS", "noop")
        .env("VACCEL_LOG_LEVEL", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("on plugin 'noop'"));
    assert!(
        stderr(&o).contains("VACCEL_BACKENDS is deprecated"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_in_process() {
    use clap::Parser;
    let cli = vaccel_cli::Cli::try_parse_from(["vaccel", "--plugins", "noop", "noop", "-n", "3"])
        .unwrap();
    let mut out = Vec::new();
    vaccel_cli::run(cli, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("noop: 3 call(s)"));
}

/// `vaccel classify` on the test photos with both engines: a dog breed for
/// the dog, a cat for the cat; `detect` and `blur` on the portrait.
#[test]
fn classify_detect_and_blur_the_test_photos() {
    let models = vaccel_test_utils::models_dir();
    let root = vaccel_test_utils::workspace_root();
    let img = |n: &str| root.join("test-data/images").join(n).display().to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vaccel"))
            .args(args)
            .env_remove("VACCEL_PLUGINS")
            .env("VACCEL_MODELS_DIR", &models)
            .output()
            .unwrap()
    };
    let top1 = |out: &str, image: &str| -> u32 {
        let after = out
            .split(&format!("{image}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no result for {image}: {out}"));
        let line = after.lines().next().unwrap();
        let idx = line.rsplit('[').next().unwrap().trim_end_matches(']');
        idx.parse()
            .unwrap_or_else(|_| panic!("no class index in '{line}'"))
    };
    for engine in ["tract", "ort"] {
        let p = run(&["--engine", engine, "plugins"]);
        let listed = stdout(&p);
        if engine == "ort" && !listed.contains("engine: ort") {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the ort engine is unavailable here:\n{listed}"
            );
            continue;
        }
        assert!(listed.contains(&format!("engine: {engine}")), "{listed}");
        let (dog, cat) = (img("dog.jpg"), img("cat.jpg"));
        let o = run(&["--engine", engine, "classify", &dog, &cat]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        let d = top1(&out, &dog);
        assert!(
            (151..=268).contains(&d),
            "{engine}: dog top-1 class {d} is not a dog breed:\n{out}"
        );
        let c = top1(&out, &cat);
        assert!(
            [281, 282, 285].contains(&c),
            "{engine}: cat top-1 class {c}:\n{out}"
        );
        assert!(out.contains("ms/op (plugin 'onnx')"), "{out}");
        let o = run(&["--engine", engine, "classify", "--text", &dog]);
        assert!(
            stdout(&o).contains("classification tags: "),
            "{}",
            stdout(&o)
        );
    }
    let o = run(&["detect", &img("portrait.jpg")]);
    assert!(
        stdout(&o).contains("1 face(s)"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blurred.jpg");
    let o = run(&["blur", &img("portrait.jpg"), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("blurred 1 face(s)"), "{}", stdout(&o));
    assert_eq!(&std::fs::read(&out).unwrap()[..2], &[0xff, 0xd8]);
    // Bad input: one clear line, no panic.
    let o = run(&["classify", &img("README.md")]);
    assert_one_line_error(&o, "cannot decode image");
    let o = run(&["classify", "/nonexistent.jpg"]);
    assert_one_line_error(&o, "cannot read /nonexistent.jpg");
}

#[test]
fn agent_bad_input_is_one_clear_line() {
    assert_one_line_error(
        &vaccel("noop", &["agent", "--listen", "foo"]),
        "invalid address 'foo': missing scheme",
    );
    assert_one_line_error(
        &vaccel("noop", &["agent", "--listen", "tcp://127.0.0.1:0"]),
        "needs a shared token",
    );
    assert_one_line_error(
        &vaccel(
            "noop",
            &["agent", "--listen", "unix:///nonexistent/dir/a.sock"],
        ),
        "cannot listen on unix:///nonexistent/dir/a.sock",
    );
    let o = vaccel(
        "noop",
        &[
            "agent",
            "--listen",
            "unix:///tmp/x.sock",
            "--unix-mode",
            "999",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not an octal file mode"),
        "{}",
        stderr(&o)
    );
    for (bad, why) in [("soon", "invalid digit"), ("2000000", "not in 0..=1000000")] {
        let o = vaccel(
            "noop",
            &[
                "agent",
                "--listen",
                "unix:///tmp/x.sock",
                "--busy-poll-us",
                bad,
            ],
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["--log-level", "3", "--log-format", "json", "noop"])
        .env("VACCEL_PLUGINS", "noop")
        .env_remove("VACCEL_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty(), "info logs expected (plugin loaded)");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"] == "INFO", "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"loaded plugin\"")
                && l.contains("\"plugin\":\"noop\"")),
        "{err}"
    );
    // The environment variable does the same; a bad value is one clear line.
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["noop"])
        .env("VACCEL_PLUGINS", "noop")
        .env("VACCEL_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_one_line_error(&o, "VACCEL_LOG_FORMAT=xml: expected text or json");
}

#[test]
fn bad_remote_settings_are_one_line_errors() {
    for (var, value) in [
        ("VACCEL_RPC_BUSY_POLL_US", "soon"),
        ("VACCEL_RPC_BUSY_POLL_US", "5000000"),
        ("VACCEL_RPC_TIMEOUT", "-1"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
            .arg("noop")
            .env("VACCEL_PLUGINS", "remote")
            .env(var, value)
            .env_remove("VACCEL_LOG_LEVEL")
            .output()
            .unwrap();
        assert_one_line_error(&o, &format!("{var}={value}"));
    }
}
