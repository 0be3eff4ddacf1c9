//! The `code-runner` binary itself: start-up failures and signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    assert_no_containers_of, binary, docker, free_port, languages_dir, wait_for_a_container,
};

#[test]
fn a_bad_setting_stops_start_up_naming_the_variable() {
    let out = binary().env("CODE_RUNNER_PORT", "eighty").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CODE_RUNNER_PORT"), "{stderr}");
    assert!(stderr.contains("`server.port`"), "{stderr}");
}

#[test]
fn a_broken_language_file_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ruby.toml"), "name = \"ruby\"\n").unwrap();
    let out = binary()
        .env("CODE_RUNNER_LANGUAGES_DIR", dir.path())
        .env("CODE_RUNNER_PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ruby.toml"), "{stderr}");
    assert!(stderr.contains("missing field"), "{stderr}");
}

#[tokio::test]
async fn sigterm_with_a_run_in_flight_finishes_it_removes_everything_and_exits_0() {
    let docker = docker().await;
    let port = free_port();
    let instance = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut child = binary()
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", &instance)
        .env("CODE_RUNNER_LANGUAGES_DIR", languages_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{url}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = client
        .post(format!("{url}/run-code"))
        .json(&json!({"language": "python", "code": "import time\ntime.sleep(1)\nprint('done')"}))
        .send();
    let term = async {
        wait_for_a_container(&docker, &instance).await;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let (answer, ()) = tokio::join!(run, term);
    let answer: Value = answer.unwrap().json().await.unwrap();
    assert_eq!(answer["stdout"], "done\n");
    let exited = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exited.code(), Some(0));
    assert_no_containers_of(&docker, &instance, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_healthcheck_command_passes_against_a_live_service_and_fails_without_one() {
    let port = free_port();
    let healthcheck = move || {
        binary()
            .args(["healthcheck"])
            .env("CODE_RUNNER_PORT", port.to_string())
            .env("CODE_RUNNER_HOST", "0.0.0.0")
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(healthcheck).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));

    let app = crate::helpers::spawn_app_with(|c| c.server.port = port).await;
    let out = tokio::task::spawn_blocking(healthcheck).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;

    let out = binary().arg("bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
