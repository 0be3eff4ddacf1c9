//! The service around the runs: probes, the language list, start-up
//! rules, Docker trouble, leftovers, disconnects and shutdown.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use code_runner::Application;
use serde_json::json;

use crate::helpers::{
    CGROUP_LIMITS_PY, PYTHON_IMAGE, assert_no_containers_of, containers_of, docker, spawn_app,
    spawn_app_with, test_config, wait_for_a_container,
};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await, (200, json!({"status": "ok"})));
    app.stop().await;
}

#[tokio::test]
async fn ready_is_200_when_docker_answers_and_every_image_is_there() {
    let app = spawn_app().await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn languages_lists_each_language_with_its_version_and_limits() {
    let app = spawn_app().await;
    let (status, body) = app.get("/languages").await;
    assert_eq!(status, 200);
    let python = &body["languages"][0];
    assert_eq!(python["name"], "python");
    assert_eq!(python["version"], "3.13");
    assert_eq!(python["image"], PYTHON_IMAGE);
    assert_eq!(python["aliases"], json!(["py", "python3"]));
    assert_eq!(python["limits"]["memory_mb"], 128);
    assert_eq!(python["limits"]["wall_time_ms"], 10000);
    assert_eq!(python["limits"]["output_bytes"], 65536);
    assert_eq!(body["languages"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_broken_language_file_refuses_start_up_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let python =
        std::fs::read_to_string(crate::helpers::languages_dir().join("python.toml")).unwrap();
    std::fs::write(dir.path().join("python.toml"), &python).unwrap();
    std::fs::write(
        dir.path().join("lua.toml"),
        python
            .replace("name = \"python\"", "name = \"lua\"")
            .replace("aliases = [\"py\", \"python3\"]", "aliases = []")
            + "\n[limits]\nmemory_mb = 100000\n",
    )
    .unwrap();
    let mut config = test_config();
    config.languages_dir = dir.path().to_path_buf();
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(err.contains("lua.toml"), "{err}");
    assert!(err.contains("limits.memory_mb"), "{err}");

    std::fs::write(
        dir.path().join("lua.toml"),
        python.replace("version =", "colour = \"red\"\nversion ="),
    )
    .unwrap();
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(err.contains("lua.toml:"), "{err}");
    assert!(err.contains("unknown field `colour`"), "{err}");

    std::fs::write(
        dir.path().join("lua.toml"),
        python.replace("name = \"python\"", "name = \"snake\""),
    )
    .unwrap();
    let err = Application::build(config)
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(
        err.contains("lua.toml: the name `py` is already used by"),
        "{err}"
    );
    assert!(err.contains("python.toml"), "{err}");
}

#[tokio::test]
async fn with_no_languages_folder_the_built_in_python_is_served() {
    let app = spawn_app_with(|c| c.languages_dir = "/nonexistent/languages".into()).await;
    let answer = app.python("print('built in')").await;
    assert_eq!(answer["stdout"], "built in\n");
    app.stop().await;
}

#[tokio::test]
async fn a_missing_image_makes_ready_503_and_runs_503_image_missing() {
    let dir = tempfile::tempdir().unwrap();
    let python =
        std::fs::read_to_string(crate::helpers::languages_dir().join("python.toml")).unwrap();
    std::fs::write(dir.path().join("python.toml"), &python).unwrap();
    std::fs::write(
        dir.path().join("ghost.toml"),
        crate::helpers::language_file_base("python.toml")
            .replace("name = \"python\"", "name = \"ghost\"")
            .replace("aliases = [\"py\", \"python3\"]", "aliases = []")
            .replace(PYTHON_IMAGE, "code-runner-test/no-such-image:1"),
    )
    .unwrap();
    let app = spawn_app_with(|c| c.languages_dir = dir.path().to_path_buf()).await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["missing_images"],
        json!(["code-runner-test/no-such-image:1"])
    );
    assert!(
        body["problems"][0].as_str().unwrap().contains("ghost"),
        "{body}"
    );
    let (status, body) = app
        .run(json!({"language": "ghost", "code": "print(1)"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (503, "image_missing"),
        "{body}"
    );
    let answer = app.python("print('python still runs')").await;
    assert_eq!(answer["stdout"], "python still runs\n");
    app.stop().await;
}

#[tokio::test]
async fn without_docker_the_service_starts_and_answers_503() {
    let _ = docker().await;
    let app =
        spawn_app_with(|c| c.docker_host = Some("unix:///nonexistent/docker.sock".into())).await;
    assert_eq!(app.get("/health").await, (200, json!({"status": "ok"})));
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503);
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{body}"
    );
    let (status, body) = app
        .run(json!({"language": "python", "code": "print(1)"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (503, "docker_unavailable")
    );
    assert!(body["message"].as_str().unwrap().contains("Docker"));
}

#[tokio::test]
async fn containers_left_by_an_earlier_process_are_removed_at_start() {
    let docker = docker().await;
    let config = test_config();
    let labels = HashMap::from([
        ("code-runner".to_string(), config.instance.clone()),
        (
            "code-runner.boot".to_string(),
            "an-earlier-process".to_string(),
        ),
    ]);
    let body = ContainerCreateBody {
        image: Some(PYTHON_IMAGE.to_string()),
        cmd: Some(vec!["sleep".into(), "300".into()]),
        labels: Some(labels),
        network_disabled: Some(true),
        ..Default::default()
    };
    let name = format!("{}-leftover", config.instance);
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let id = docker
        .create_container(Some(options), body)
        .await
        .unwrap()
        .id;
    docker.start_container(&id, None).await.unwrap();
    assert_eq!(containers_of(&docker, &config.instance).await.len(), 1);

    let instance = config.instance.clone();
    let app = spawn_app_with(move |c| *c = config).await;
    assert_no_containers_of(&docker, &instance, Duration::from_secs(10)).await;
    assert_eq!(app.python("print(1)").await["stdout"], "1\n");
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_run_leaves_no_container() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let body = json!({"language": "python", "code": "import time\ntime.sleep(30)"}).to_string();
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /run-code HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    wait_for_a_container(&app.docker, &app.instance).await;
    drop(socket);
    app.assert_no_containers_within(Duration::from_secs(3))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_run_in_flight_finish_and_refuses_new_connections() {
    let mut app = spawn_app().await;
    let run = app.run(
        json!({"language": "python", "code": "import time\ntime.sleep(1.5)\nprint('finished')"}),
    );
    let stop = async {
        wait_for_a_container(&app.docker, &app.instance).await;
        let url = app.url("/health");
        app.begin_shutdown();
        tokio::time::sleep(Duration::from_millis(300)).await;
        reqwest::Client::new().get(url).send().await.is_err()
    };
    let ((status, answer), refused) = tokio::join!(run, stop);
    assert_eq!(status, 200);
    assert_eq!(answer["stdout"], "finished\n");
    assert!(refused, "a new connection was accepted during shutdown");
    app.wait_stopped(Duration::from_secs(10)).await;
    assert!(app.containers().await.is_empty());
}

#[tokio::test]
async fn shutdown_stops_runs_that_outlast_the_grace_period_and_removes_them() {
    let mut app = spawn_app_with(|c| c.server.shutdown_grace_ms = 500).await;
    let run = app.run(json!({"language": "python", "code": "import time\ntime.sleep(30)"}));
    let stop = async {
        wait_for_a_container(&app.docker, &app.instance).await;
        app.begin_shutdown();
    };
    let started = Instant::now();
    let ((status, body), ()) = tokio::join!(run, stop);
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (503, "shutting_down"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    app.wait_stopped(Duration::from_secs(10)).await;
    assert!(app.containers().await.is_empty());
}

#[tokio::test]
async fn an_engine_refusal_is_an_internal_error_with_a_request_id_not_docker_unavailable() {
    // More CPUs than the host has: the engine answers the create with an
    // error, which is the service's fault (its configuration), not Docker
    // being away.
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    let greedy = crate::helpers::language_file_base("python.toml")
        .replace("name = \"python\"", "name = \"greedy\"")
        .replace("aliases = [\"py\", \"python3\"]", "aliases = []")
        + &format!("\n[limits]\ncpus = {}.0\n", host_cpus * 64);
    let app = crate::helpers::spawn_app_with_languages(
        vec![
            (
                "python.toml".to_string(),
                crate::helpers::language_file("python.toml"),
            ),
            ("greedy.toml".to_string(), greedy),
        ],
        |_| {},
    )
    .await;
    let response = app
        .client
        .post(app.url("/run-code"))
        .json(&json!({"language": "greedy", "code": "print(1)"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (500, Some("internal_error")),
        "{body}"
    );
    assert_eq!(body["request_id"], header);
    assert!(!body["message"].as_str().unwrap().contains("CPU"), "{body}");
    // The engine is fine: python still runs.
    assert_eq!(app.python("print('fine')").await["stdout"], "fine\n");
    app.stop().await;
}

#[tokio::test]
async fn the_server_default_limits_reach_a_language_whose_file_leaves_them_out() {
    let app = spawn_app_with(|c| {
        c.limits.memory_mb = 96;
        c.limits.pids = 40;
    })
    .await;
    let answer = app
        .python(&format!(
            "{CGROUP_LIMITS_PY}print(memory_mb())\nprint(pids_max())\n"
        ))
        .await;
    assert_eq!(answer["stdout"], "96\n40\n", "{answer}");
    let (_, languages) = app.get("/languages").await;
    assert_eq!(languages["languages"][0]["limits"]["memory_mb"], 96);
    app.stop().await;
}
