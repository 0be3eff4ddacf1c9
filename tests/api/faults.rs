//! A failing Docker and a dying service: nothing is lost, nothing is left.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{UnixListener, UnixStream};

use crate::helpers::{
    assert_no_containers_of, binary, containers_of, docker, free_port, languages_dir,
    spawn_app_with,
};

/// A unix socket that forwards to the real engine while it runs: Docker
/// "comes back" when it starts.
async fn forward_docker_socket(path: PathBuf) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        // Aborting this task drops the set, which cuts every open connection.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            connections.spawn(async move {
                if let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                }
            });
        }
    })
}

#[tokio::test]
async fn when_docker_comes_back_runs_succeed_without_a_restart() {
    let _ = docker().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let app = spawn_app_with(|c| c.docker_host = Some(host)).await;

    assert_eq!(app.get("/health").await.0, 200);
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (503, "docker_unavailable")
    );

    let forwarder = forward_docker_socket(socket.clone()).await;
    // /ready answers from a probe at most a second old.
    let started = Instant::now();
    loop {
        let (status, body) = app.get("/ready").await;
        if status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = app.python("print('back')").await;
    assert_eq!(answer["stdout"], "back\n");

    // And when it goes away again, the answer is 503 again, then 200.
    forwarder.abort();
    let _ = forwarder.await;
    std::fs::remove_file(&socket).unwrap();
    let (status, _) = app
        .run(json!({"language": "python", "code": "print(1)"}))
        .await;
    assert_eq!(status, 503);
    let forwarder = forward_docker_socket(socket).await;
    assert_eq!(app.python("print('again')").await["stdout"], "again\n");
    app.stop().await;
    forwarder.abort();
}

fn start_service(port: u16, instance: &str) -> Child {
    binary()
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", instance)
        .env("CODE_RUNNER_LANGUAGES_DIR", languages_dir())
        // The count of containers below is of runs only.
        .env("CODE_RUNNER_POOL_SIZE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_up(port: u16) {
    let started = Instant::now();
    let client = reqwest::Client::new();
    while client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn after_a_sigkill_mid_run_a_restart_removes_every_container_it_had_made() {
    let docker = docker().await;
    let port = free_port();
    let instance = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut first = start_service(port, &instance);
    wait_until_up(port).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/run-code");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let request = client
            .post(&url)
            .json(&json!({"language": "python", "code": "import time\ntime.sleep(60)"}))
            .send();
        runs.push(tokio::spawn(request));
    }
    let started = Instant::now();
    while crate::helpers::sandboxes_of(&docker, &instance).await.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the runs did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    for run in runs {
        assert!(
            run.await.unwrap().is_err(),
            "a run was answered by a killed service"
        );
    }
    // The killed process could not clean up.
    assert_eq!(containers_of(&docker, &instance).await.len(), 3);

    let mut second = start_service(port, &instance);
    wait_until_up(port).await;
    assert_no_containers_of(&docker, &instance, Duration::from_secs(5)).await;
    let answer: serde_json::Value = client
        .post(&url)
        .json(&json!({"language": "python", "code": "print('fresh')"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["stdout"], "fresh\n");
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(second.wait().unwrap().code(), Some(0));
    assert_no_containers_of(&docker, &instance, Duration::from_secs(1)).await;
}
