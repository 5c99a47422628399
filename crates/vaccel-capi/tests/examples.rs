//! The C examples in `examples/c/`, the install script and the pkg-config
//! file, end to end: install into a temporary prefix with
//! `scripts/install-capi.sh --from <built artifacts>`, build every example
//! with `cc … $(pkg-config --cflags --libs vaccel)` (and with the
//! Makefile), and run them.
//!
//! Which plugin each check needs:
//! - noop (built in): classify / classify_stdin / upstream_classify print
//!   the noop tag, sgemm runs, noop runs;
//! - exec (built in) + `VACCEL_EXEC_ALLOWLIST`: exec;
//! - the CPU plugin (a plugin .so, built here): sgemm's result is checked
//!   against the example's own C reference;
//! - **the ONNX plugin** (built in) **and the models** of
//!   `scripts/setup_models.py`: real classification, detection and face
//!   blurring (`needs_onnx_*` tests).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn examples_dir() -> PathBuf {
    common::root().join("examples/c")
}

fn image(name: &str) -> PathBuf {
    common::root().join("test-data/images").join(name)
}

/// Every example, built once per test binary.
fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let out = common::scratch().join("examples");
        std::fs::create_dir_all(&out).expect("examples dir");
        for ex in [
            "classify",
            "classify_stdin",
            "sgemm",
            "exec",
            "noop",
            "upstream_classify",
        ] {
            let src = examples_dir().join(format!("{ex}.c"));
            let extra: &[&str] = if ex == "sgemm" { &["-lm"] } else { &[] };
            common::compile(&[&src], &out.join(ex), extra);
        }
        common::compile(
            &[&examples_dir().join("libmytestlib.c")],
            &out.join("libmytestlib.so"),
            &["-shared", "-fPIC"],
        );
        out
    });
    dir.join(name)
}

fn noop() -> [(&'static str, &'static str); 1] {
    [("VACCEL_PLUGINS", "noop")]
}

#[test]
fn install_layout_and_pkg_config() {
    let p = common::prefix();
    let lib = p.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    assert!(lib.join(format!("libvaccel.so.{version}")).is_file());
    assert_eq!(
        std::fs::read_link(lib.join("libvaccel.so")).unwrap(),
        Path::new("libvaccel.so.0")
    );
    assert_eq!(
        std::fs::read_link(lib.join("libvaccel.so.0")).unwrap(),
        PathBuf::from(format!("libvaccel.so.{version}"))
    );
    assert!(lib.join("libvaccel.a").is_file());
    assert!(p.join("include/vaccel.h").is_file());
    assert!(p.join("include/vaccel/session.h").is_file());
    assert!(p.join("include/vaccel/plugin_abi.h").is_file());
    let inc = format!("-I{}", p.join("include").display());
    assert_eq!(common::pkg_config(&["--cflags"]), vec![inc]);
    assert_eq!(
        common::pkg_config(&["--libs"]),
        vec![format!("-L{}", lib.display()), "-lvaccel".to_string()]
    );
    let st = common::pkg_config(&["--libs", "--static"]);
    for l in ["-lvaccel", "-lpthread", "-ldl", "-lm"] {
        assert!(st.iter().any(|a| a == l), "{l} missing from {st:?}");
    }
    assert_eq!(
        common::pkg_config(&["--modversion"]),
        vec![version.to_string()]
    );

    // A program records the versioned SONAME.
    let out = Command::new("readelf")
        .arg("-d")
        .arg(bin("noop"))
        .output()
        .expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("[libvaccel.so.0]"), "{dynamic}");
}

#[test]
fn destdir_stages_the_install() {
    let stage = tempfile::tempdir().unwrap();
    let st = Command::new("bash")
        .arg(common::root().join("scripts/install-capi.sh"))
        .arg("--from")
        .arg(common::cdylib().parent().unwrap())
        .arg("--link")
        .arg("/opt/vaccel-test")
        .env("DESTDIR", stage.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let staged = stage.path().join("opt/vaccel-test");
    assert!(staged.join("lib/libvaccel.so.0").exists());
    let pc = std::fs::read_to_string(staged.join("lib/pkgconfig/vaccel.pc")).unwrap();
    assert!(pc.contains("prefix=/opt/vaccel-test\n"), "{pc}");
    assert!(!pc.contains(&*stage.path().to_string_lossy()), "{pc}");
}

#[test]
fn noop_example() {
    let out = common::run_ok(&bin("noop"), &[], &noop(), None);
    assert!(out.starts_with("noop: OK (session 1"), "{out}");
}

#[test]
fn classify_prints_the_noop_tag() {
    let img = image("dog.jpg");
    let out = common::run_ok(&bin("classify"), &[img.to_str().unwrap()], &noop(), None);
    assert_eq!(out, "classification tags: 100.000% noop\n");
    // With profiling on, the region and the per-op statistics go to stderr.
    let o = common::run(
        &bin("classify"),
        &[img.to_str().unwrap(), "3"],
        &[
            ("VACCEL_PLUGINS", "noop"),
            ("VACCEL_PROFILING_ENABLED", "1"),
        ],
        None,
    );
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[prof] classify: total_time: "), "{err}");
    assert!(err.contains("nr_entries: 3"), "{err}");
    assert!(err.contains("[prof] vaccel_image_classify_op:"), "{err}");
}

#[test]
fn classify_stdin_reads_the_image_from_stdin() {
    let bytes = std::fs::read(image("cat.jpg")).unwrap();
    let out = common::run_ok(&bin("classify_stdin"), &[], &noop(), Some(&bytes));
    assert_eq!(out, "classification tags: 100.000% noop\n");
    let o = common::run(&bin("classify_stdin"), &[], &noop(), Some(b""));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no image on stdin"));
}

#[test]
fn upstream_style_example_compiles_unchanged_and_runs() {
    let img = image("coffee.jpg");
    let out = common::run_ok(
        &bin("upstream_classify"),
        &[img.to_str().unwrap(), "3"],
        &noop(),
        None,
    );
    assert_eq!(
        out,
        "Initialized session with id: 1\nclassification tags: 100.000% noop\n"
    );
}

#[test]
fn sgemm_runs_on_noop() {
    let out = common::run_ok(&bin("sgemm"), &["16"], &noop(), None);
    // noop computes C = beta * C = 0.5 everywhere.
    assert!(
        out.starts_with("sgemm 16x16: C[0] = 0.5, sum = 128,"),
        "{out}"
    );
}

#[test]
fn sgemm_is_correct_with_the_cpu_plugin() {
    // Needs the CPU plugin, loaded from its .so (not a built-in).
    let cpu = vaccel_test_utils::plugin_library("vaccel-plugin-cpu");
    let out = common::run_ok(
        &bin("sgemm"),
        &["48", "--check"],
        &[("VACCEL_PLUGINS", cpu.to_str().unwrap())],
        None,
    );
    assert!(out.starts_with("sgemm 48x48: "), "{out}");
}

#[test]
fn exec_calls_the_test_library() {
    let lib = bin("libmytestlib.so");
    let dir = lib.parent().unwrap().to_str().unwrap().to_string();
    let out = common::run_ok(
        &bin("exec"),
        &[lib.to_str().unwrap(), "21"],
        &[("VACCEL_PLUGINS", "exec"), ("VACCEL_EXEC_ALLOWLIST", &dir)],
        None,
    );
    assert_eq!(
        out,
        "mytestfunc(21) = 42\n\
         reverse_string(\"hello vaccel\") = \"leccav olleh\"\n\
         mytestfunc via resource(21) = 42\n"
    );
    // Not on the allow-list: EPERM with the runtime's explanation.
    let o = common::run(
        &bin("exec"),
        &[lib.to_str().unwrap()],
        &[("VACCEL_PLUGINS", "exec")],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("failed (1)"), "{err}");
    assert!(err.contains("VACCEL_EXEC_ALLOWLIST"), "{err}");
}

#[test]
fn static_library_links_with_the_private_libs() {
    let out = common::scratch().join("noop_static");
    let p = common::prefix();
    let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(format!("-I{}", p.join("include").display()))
        .arg(examples_dir().join("noop.c"))
        .arg(p.join("lib/libvaccel.a"))
        .args(["-lpthread", "-ldl", "-lm"]) // Libs.private
        .output()
        .expect("cc");
    assert!(
        o.status.success(),
        "static link failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = common::run_ok(&out, &[], &noop(), None);
    assert!(text.starts_with("noop: OK"), "{text}");
    let ldd = Command::new("readelf")
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&ldd.stdout).contains("libvaccel"));
}

#[test]
fn the_makefile_builds_every_example() {
    if Command::new("make").arg("--version").output().is_err() {
        // Not faked: say loudly that this check did not run.
        eprintln!("NOTE: make is not installed: the Makefile check did not run");
        return;
    }
    let out = common::scratch().join("make-build");
    let o = Command::new("make")
        .arg("-C")
        .arg(examples_dir())
        .arg(format!("O={}", out.display()))
        .arg("CFLAGS=-O1 -Werror")
        .arg(format!(
            "LDFLAGS=-Wl,-rpath,{}",
            common::prefix().join("lib").display()
        ))
        .env("PKG_CONFIG_PATH", common::prefix().join("lib/pkgconfig"))
        .output()
        .expect("make");
    assert!(
        o.status.success(),
        "make failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "classify",
        "classify_stdin",
        "sgemm",
        "exec",
        "noop",
        "upstream_classify",
        "libmytestlib.so",
    ] {
        assert!(out.join(f).is_file(), "make did not build {f}");
    }
    let text = common::run_ok(&out.join("noop"), &[], &noop(), None);
    assert!(text.starts_with("noop: OK"), "{text}");
}

// ------------------------------------------------------------------ ONNX
// These need the ONNX plugin (built in by default) and the models made by
// scripts/setup_models.py (vaccel_test_utils::models_dir runs it).

fn onnx_env(models: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("VACCEL_PLUGINS", "onnx".to_string()),
        ("VACCEL_MODELS_DIR", models.display().to_string()),
    ]
}

fn run_onnx(name: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let models = vaccel_test_utils::models_dir();
    let env = onnx_env(&models);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::run_ok(&bin(name), args, &env, stdin)
}

#[test]
fn needs_onnx_classify_names_a_dog_breed() {
    let models = vaccel_test_utils::models_dir();
    let labels = std::fs::read_to_string(models.join("imagenet-labels.txt")).unwrap();
    // ImageNet indices 151-268 are dog breeds.
    let dogs: Vec<&str> = labels.lines().skip(151).take(118).collect();
    let img = image("dog.jpg");
    let out = run_onnx("classify", &[img.to_str().unwrap()], None);
    let tag = out
        .trim_end()
        .strip_prefix("classification tags: ")
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    let (pct, label) = tag.split_once("% ").expect("score and label");
    let pct: f64 = pct.parse().expect("a percentage");
    assert!(pct > 0.0 && pct <= 100.0, "{out}");
    assert!(dogs.contains(&label), "'{label}' is not a dog breed");
    // The same through stdin, OpenFaaS style.
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(run_onnx("classify_stdin", &[], Some(&bytes)), out);
}

#[test]
fn needs_onnx_api_detects_and_blurs_faces() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/c/faces.c");
    let out = common::scratch().join("faces");
    common::compile(&[&src], &out, &[]);
    let models = vaccel_test_utils::models_dir();
    let env = onnx_env(&models);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let img = image("portrait.jpg");
    let text = common::run_ok(&out, &[img.to_str().unwrap()], &env, None);
    assert!(text.lines().any(|l| l == "faces: 1"), "{text}");
    assert!(text.contains("detected 1 face(s)"), "{text}");
    assert!(text.contains("checks passed"), "{text}");
}

/// The same C binary, moved from the local ONNX plugin to the remote plugin
/// by changing only `VACCEL_PLUGINS` and `VACCEL_RPC_ADDRESS`, prints the
/// same tags: the agent (with the host's ONNX plugin) runs in this process.
#[test]
fn needs_onnx_same_binary_same_tags_through_the_agent() {
    let models = vaccel_test_utils::models_dir();
    let img = image("dog.jpg");
    let local = run_onnx("classify", &[img.to_str().unwrap()], None);
    assert!(local.starts_with("classification tags: "), "{local}");

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let addr = vaccel_transport::Address::Unix(sock.clone());
    let mut cfg = vaccel::Config {
        plugins: Some("onnx:cpu:noop".into()),
        op_fallback: Some(true),
        ..Default::default()
    };
    cfg.options
        .insert("onnx.models_dir".into(), models.display().to_string());
    let rt = std::sync::Arc::new(vaccel::runtime_with(cfg).expect("host runtime"));
    let config = vaccel_agent::AgentConfig {
        listen: vec![addr],
        ..Default::default()
    };
    let agent = vaccel_agent::testing::BackgroundAgent::start(rt, config);
    let env = [
        ("VACCEL_PLUGINS", "remote".to_string()),
        ("VACCEL_RPC_ADDRESS", format!("unix://{}", sock.display())),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let remote = common::run_ok(&bin("classify"), &[img.to_str().unwrap()], &env, None);
    assert_eq!(remote, local, "same tags locally and through the agent");
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(
        common::run_ok(&bin("classify_stdin"), &[], &env, Some(&bytes)),
        local
    );
    drop(agent);
}

/// The C stdin classifier served the OpenFaaS way: `vaccel watchdog` in
/// serializing mode forks it per request (body on stdin, stdout is the
/// response); a real HTTP client posts the image. Bad input makes the C
/// program fail: 500 with its stderr, and the watchdog keeps serving.
#[test]
fn needs_onnx_watchdog_forks_classify_stdin() {
    use std::io::{Read, Write};

    fn post(addr: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .unwrap();
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Call-Id: c-1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {raw}"));
        (status, raw)
    }

    let models = vaccel_test_utils::models_dir();
    let img = image("dog.jpg");
    let expected = run_onnx("classify_stdin", &[], Some(&std::fs::read(&img).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let fprocess = format!(
        "env VACCEL_PLUGINS=onnx VACCEL_MODELS_DIR={} {}",
        models.display(),
        bin("classify_stdin").display()
    );
    let vars: std::collections::HashMap<String, String> = [
        ("mode", "serializing"),
        ("fprocess", fprocess.as_str()),
        ("port", "0"),
        ("metrics_port", "0"),
        ("exec_timeout", "60s"),
        ("TMPDIR", dir.path().to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut config = vaccel_watchdog::Config::from_env_map(&vars).unwrap();
    config.bind_address = std::net::Ipv4Addr::LOCALHOST.into();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(vaccel_watchdog::Watchdog::bind(
            config,
            &vaccel_watchdog::Registry::new(),
        ))
        .unwrap();
    let addr = server.local_addr();

    let (status, raw) = post(addr, &std::fs::read(&img).unwrap());
    assert_eq!(status, 200, "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("x-duration-seconds: "), "{raw}");
    assert!(lower.contains("x-call-id: c-1"), "{raw}");
    assert!(
        raw.ends_with(&expected),
        "the response body is the program's stdout ({expected:?}): {raw}"
    );

    let (status, raw) = post(addr, b"not an image");
    assert_eq!(status, 500, "{raw}");
    assert!(
        raw.contains("classification failed"),
        "stderr excerpt: {raw}"
    );

    let (status, raw) = post(addr, &std::fs::read(&img).unwrap());
    assert_eq!(status, 200, "still serving: {raw}");
    server.shutdown();
    let report = rt.block_on(server.wait()).unwrap();
    assert!(report.drained);
}
