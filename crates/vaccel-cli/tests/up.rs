//! `vaccel up` end to end: the real binary starts the agent and the gateway;
//! plain HTTP clients call the functions at OpenFaaS paths; SIGTERM stops
//! everything with exit status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vaccel_test_utils::{models_dir, workspace_root};

struct Stack {
    child: Child,
    addr: String,
    lines: Vec<String>,
}

impl Stack {
    fn start() -> Stack {
        let models = models_dir();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vaccel"))
            .args(["up", "--port", "0", "--no-setup"])
            .env("VACCEL_MODELS_DIR", &models)
            .env_remove("VACCEL_PLUGINS")
            .current_dir(workspace_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running vaccel up");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        let mut addr = None;
        loop {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap() == 0 {
                panic!("vaccel up exited early; output: {lines:#?}");
            }
            if let Some(rest) = l.strip_prefix("gateway:") {
                let url = rest.split_whitespace().next().unwrap();
                addr = Some(url.trim_start_matches("http://").to_string());
            }
            let done = l.starts_with("Ctrl-C");
            lines.push(l.trim_end().to_string());
            if done {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
        });
        Stack {
            child,
            addr: addr.expect("gateway line"),
            lines,
        }
    }

    /// One HTTP/1.1 request; returns (status, headers lower-cased, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let hs: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body = raw[split + 4..].to_vec();
        let chunked = hs
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        (
            status,
            hs.clone(),
            if chunked { dechunk(&body) } else { body },
        )
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("test-data/images").join(name)).unwrap()
}

/// Mean absolute difference of two same-sized RGB images over a box.
fn mean_abs_diff(
    a: &image::RgbImage,
    b: &image::RgbImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> f64 {
    let mut sum = 0u64;
    let mut n = 0u64;
    for y in y0..y1.min(a.height()) {
        for x in x0..x1.min(a.width()) {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            for c in 0..3 {
                sum += u64::from(p[c].abs_diff(q[c]));
                n += 1;
            }
        }
    }
    sum as f64 / n.max(1) as f64
}

#[test]
fn stack_serves_classify_blur_and_the_function_list_then_stops_on_sigterm() {
    let stack = Stack::start();
    assert!(
        stack
            .lines
            .iter()
            .any(|l| l.contains("curl --data-binary @test-data/images/dog.jpg")),
        "prints example curl lines: {:#?}",
        stack.lines
    );

    // classify: the tags, through the remote plugin and the agent.
    let (st, hs, body) = stack.call("POST", "/function/classify", &[], &image("dog.jpg"));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let top = v["labels"][0]["label"].as_str().unwrap();
    assert!(top.contains("German shepherd"), "{v}");
    assert_eq!(header(&hs, "x-vaccel-plugin"), Some("remote"));
    let op: f64 = header(&hs, "x-vaccel-op-seconds").unwrap().parse().unwrap();
    let total: f64 = header(&hs, "x-duration-seconds").unwrap().parse().unwrap();
    assert!(
        op > 0.0 && op <= total,
        "op {op} s within the call's {total} s"
    );
    let (st, _, body) = stack.call(
        "POST",
        "/function/classify",
        &[("Accept", "text/plain")],
        &image("dog.jpg"),
    );
    assert_eq!(st, 200);
    assert!(
        String::from_utf8_lossy(&body).starts_with("classification tags: "),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // blur: the face region changed, the background did not.
    let portrait = image("portrait.jpg");
    let (st, hs, body) = stack.call("POST", "/function/blur", &[], &portrait);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&hs, "content-type"), Some("image/jpeg"));
    assert_eq!(header(&hs, "x-faces"), Some("1"));
    let before = image::load_from_memory(&portrait).unwrap().to_rgb8();
    let after = image::load_from_memory(&body).unwrap().to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    let local = vaccel::runtime_with(vaccel::Config {
        plugins: Some("onnx".into()),
        ..vaccel::Config::from_env().unwrap()
    })
    .unwrap();
    let faces = local
        .session(vaccel::PluginType::empty())
        .unwrap()
        .image_detect(&portrait)
        .unwrap();
    assert_eq!(faces.len(), 1);
    let f = faces[0];
    let face = (
        f.x.max(0.0) as u32,
        f.y.max(0.0) as u32,
        (f.x + f.width) as u32,
        (f.y + f.height) as u32,
    );
    let (w, h) = before.dimensions();
    let inside = mean_abs_diff(&before, &after, face);
    let outside = mean_abs_diff(&before, &after, (0, h * 85 / 100, w, h));
    assert!(inside > 8.0, "face region barely changed: {inside:.2}");
    assert!(outside < 2.5, "background changed: {outside:.2}");

    // Bad input is a 400 and the stack keeps serving.
    let (st, _, body) = stack.call("POST", "/function/classify", &[], b"not an image");
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let (st, _, body) = stack.call("POST", "/function/nosuch", &[], b"x");
    assert_eq!(st, 404);
    assert!(String::from_utf8_lossy(&body).contains("classify"));

    // The OpenFaaS function list, with invocation counts.
    let (st, _, body) = stack.call("GET", "/system/functions", &[], b"");
    assert_eq!(st, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for n in ["classify", "blur", "echo", "noop"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let classify = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "classify")
        .unwrap();
    assert!(
        classify["invocationCount"].as_u64().unwrap() >= 2,
        "{classify}"
    );

    // SIGTERM: clean stop, exit status 0.
    let mut stack = stack;
    let pid = stack.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let st = stack.child.wait().unwrap();
    assert!(st.success(), "vaccel up exited with {st}");
}

/// The serverless study end to end: `vaccel bench` posts the frames of the
/// test video to `vaccel up`'s blur function, 2 threads × 2 think times,
/// and writes the JTL, the summaries and the HTML report; `vaccel bench
/// report` re-renders the report from one JTL. With a headless Chromium on
/// the machine the report is also screenshotted (charts must render).
#[test]
fn bench_study_against_the_blur_function() {
    let stack = Stack::start();
    let out = tempfile::tempdir().unwrap();
    let study = out.path().join("study");
    let url = format!("http://{}/function/blur", stack.addr);
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["bench", &url, "--video"])
        .arg(workspace_root().join("test-data/video/portrait-pan.mp4"))
        .args([
            "--max-frames",
            "6",
            "--threads",
            "1,2",
            "--think",
            "0,100ms",
            "--iterations",
            "3",
            "--pause",
            "0s",
            "--quiet",
            "--fail-if",
            "success>=1",
            "--out",
        ])
        .arg(&study)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for label in ["t1-think0s", "t1-think100ms", "t2-think0s", "t2-think100ms"] {
        let dir = study.join(label);
        let jtl = std::fs::read_to_string(dir.join("results.jtl")).unwrap();
        let mut lines = jtl.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect,"),
            "{label}: JMeter columns first"
        );
        let threads = if label.starts_with("t1") { 1 } else { 2 };
        assert_eq!(lines.count(), 3 * threads, "{label}: one row per request");
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["count"], 3 * threads as u64, "{label}: {s}");
        assert_eq!(s["success_rate"], 1.0, "{label}: {s}");
        // The function's own timings came through the gateway's headers.
        assert!(s["handler_ms"]["median"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["op_ms"]["median"].as_f64().unwrap() > 0.0, "{s}");
        assert!(dir.join("histograms.hlog").is_file());
    }
    let html = std::fs::read_to_string(study.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 8, "charts in the report");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );

    // Re-render from one JTL file.
    let single = out.path().join("single.html");
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["bench", "report"])
        .arg(study.join("t2-think0s/results.jtl"))
        .arg("-o")
        .arg(&single)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&single).unwrap().contains("<svg"));

    // The screenshot, where a headless browser exists.
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    match chromium {
        Some(b) => {
            let png = out.path().join("report.png");
            let st = Command::new(b)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1400,2400",
                ])
                .arg(format!("--screenshot={}", png.display()))
                .arg(format!("file://{}", study.join("report.html").display()))
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
            let img = image::open(&png).unwrap().to_rgb8();
            // Charts draw coloured series: count clearly coloured pixels.
            let coloured = img
                .pixels()
                .filter(|p| {
                    let (mx, mn) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
                    mx - mn > 80
                })
                .count();
            assert!(
                coloured > 2000,
                "the screenshot shows charts ({coloured} coloured pixels)"
            );
        }
        None => eprintln!(
            "SKIPPED: report screenshot (no headless chromium on this machine; apt-get install chromium)"
        ),
    }
}
