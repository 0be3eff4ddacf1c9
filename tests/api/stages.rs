//! The compile stage: its own sandbox and limits, apart from the run's; and
//! the files a request brings.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{CGROUP_LIMITS_PY, TestApp, language_file, spawn_app_with_languages};

/// A test-only compiled language on the python image: `compile` is the
/// compile command given, then `main.py` runs.
fn compiled_python(compile: &str, compile_limits: &str) -> String {
    format!(
        "name = \"pyc\"\nversion = \"3.13\"\nimage = \"python:3.13-slim\"\nsource_file = \"main.py\"\n\
         compile = [\"sh\", \"-c\", {compile:?}]\nrun = [\"python3\", \"main.py\"]\n\
         [compile_limits]\n{compile_limits}\n[limits]\nwall_time_ms = 5000\n"
    )
}

async fn app_with(compile: &str, compile_limits: &str) -> TestApp {
    spawn_app_with_languages(
        vec![
            ("python.toml".to_string(), language_file("python.toml")),
            (
                "pyc.toml".to_string(),
                compiled_python(compile, compile_limits),
            ),
        ],
        |_| {},
    )
    .await
}

#[tokio::test]
async fn a_compile_that_times_out_is_reported_as_a_timeout() {
    let app = app_with(
        "echo compiling; exec python3 -c 'while True: pass'",
        "wall_time_ms = 1000",
    )
    .await;
    let answer = app
        .run_ok(json!({"language": "pyc", "code": "print(1)"}))
        .await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["compile"]["status"], "timeout");
    assert_eq!(answer["compile"]["stdout"], "compiling\n");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("Compile time limit exceeded")
    );
    assert_eq!(answer["stdout"], "");
    app.assert_no_containers_within(Duration::from_secs(2))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_compile_that_runs_out_of_memory_is_reported_as_such() {
    let app = app_with(
        "exec python3 -c 'a = bytearray(400 << 20)'",
        "memory_mb = 64",
    )
    .await;
    let answer = app
        .run_ok(json!({"language": "pyc", "code": "print(1)"}))
        .await;
    assert_eq!(answer["status"], "memory_limit", "{answer}");
    assert_eq!(answer["compile"]["status"], "memory_limit");
    assert!(answer["error"].as_str().unwrap().contains("64 MiB"));
    app.stop().await;
}

#[tokio::test]
async fn the_run_deadline_counts_from_the_run_not_the_compile() {
    let app = app_with(
        "sleep 1.5; exec python3 -m py_compile main.py",
        "wall_time_ms = 5000",
    )
    .await;
    let answer = app
        .run_ok(json!({
            "language": "pyc",
            "code": "import time\ntime.sleep(0.5)\nprint('ran')",
            "timeout_ms": 1200,
        }))
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "ran\n");
    assert!(answer["compile"]["duration_ms"].as_u64().unwrap() >= 1500);
    assert!(answer["duration_ms"].as_u64().unwrap() < 1200);
    app.stop().await;
}

#[tokio::test]
async fn the_run_sees_what_the_compile_wrote_and_runs_under_its_own_limits() {
    let app = app_with(
        "echo 'print(open(\"built.txt\").read().strip())' >> main.py && echo artefact > built.txt",
        "memory_mb = 300",
    )
    .await;
    let answer = app
        .run_ok(json!({
            "language": "pyc",
            "code": format!("{CGROUP_LIMITS_PY}import os\nprint(os.sysconf('SC_PAGE_SIZE') > 0)\nprint(memory_mb())\n"),
        }))
        .await;
    assert_eq!(answer["stdout"], "True\n128\nartefact\n", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn compile_output_and_run_output_are_reported_apart() {
    let app = app_with("echo to-compile-stdout; echo to-compile-stderr >&2", "").await;
    let answer = app
        .run_ok(json!({"language": "pyc", "code": "import sys\nprint('run out')\nprint('run err', file=sys.stderr)"}))
        .await;
    assert_eq!(answer["compile"]["stdout"], "to-compile-stdout\n");
    assert_eq!(answer["compile"]["stderr"], "to-compile-stderr\n");
    assert_eq!(answer["stdout"], "run out\n");
    assert_eq!(answer["stderr"], "run err\n");
    app.stop().await;
}

#[tokio::test]
async fn bad_file_names_are_400_naming_them_with_no_container() {
    let app = app_with("true", "").await;
    for name in [
        "../escape.py",
        "/etc/passwd",
        "a/../../b",
        "",
        "-rf",
        "@opts.py",
        "dir\\x.py",
        "tab\tname.py",
        "rtl\u{202e}yp.exe",
        "main.py",
        "main.py/inside",
    ] {
        let (status, body) = app
            .run(json!({"language": "python", "code": "print(1)", "files": [{"name": name, "content": "x"}]}))
            .await;
        assert_eq!(
            (status, body["code"].as_str().unwrap()),
            (400, "invalid_field"),
            "{name:?}: {body}"
        );
        assert_eq!(body["field"], "files");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{name:?}")),
            "{body}"
        );
    }
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)", "files": [
            {"name": "a.py", "content": "1"}, {"name": "a.py", "content": "2"}]}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (400, "invalid_field"),
        "{body}"
    );
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)", "files": [
            {"name": "pkg", "content": "1"}, {"name": "pkg/mod.py", "content": "2"}]}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (400, "invalid_field"),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("folder"),
        "{body}"
    );
    let files: Vec<_> = (0..33)
        .map(|i| json!({"name": format!("f{i}.py"), "content": ""}))
        .collect();
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)", "files": files}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (413, "field_too_large"),
        "{body}"
    );
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)", "files": [{"name": "big.py", "content": "x".repeat(300_000)}]}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (413, "field_too_large"),
        "{body}"
    );
    assert!(app.containers().await.is_empty());
    app.stop().await;
}
