//! The front door an operator exposes: API keys, a rate per client, fair
//! shares against one greedy or slow client, Prometheus metrics, the 413
//! that clients sending the whole body still read, the cached readiness
//! probe, JSON logs, and the open-file limit checked at start. Clients
//! are told apart by their address: the tests bind 127.0.0.2 and
//! 127.0.0.3.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, binary, free_port, languages_dir, spawn_app_with};

/// A client calling from `ip` (a loopback address of its own).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn post_run(
    client: &reqwest::Client,
    app: &TestApp,
    code: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(app.url("/run-code"))
        .json(&json!({"language": "python", "code": code}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn with_keys_every_route_but_health_wants_one_and_each_key_its_routes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# a key that may only run code\nonly-run run\n").unwrap();
    let file = keys.clone();
    let app = spawn_app_with(move |c| {
        c.front_door.api_keys = vec![code_runner::config::Secret("alpha".into())];
        c.front_door.api_keys_file = Some(file);
        c.front_door.metrics_key = Some(code_runner::config::Secret("scrape".into()));
    })
    .await;
    let client = &app.client;
    let status = |r: &reqwest::Response| r.status().as_u16();
    assert_eq!(
        client
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let none = post_run(client, &app, "print(1)", None).await;
    assert_eq!(status(&none), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(
        status(&post_run(client, &app, "print(1)", Some("wrong")).await),
        401
    );
    let ok = post_run(client, &app, "print(1)", Some("alpha")).await;
    assert_eq!(status(&ok), 200);
    let by_header = client
        .post(app.url("/run-code"))
        .header("x-api-key", "only-run")
        .json(&json!({"language": "python", "code": "print(2)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);

    let get = |path: &str, key: &str| {
        client
            .get(app.url(path))
            .header("x-api-key", key.to_string())
            .send()
    };
    // A key held to /run-code may not use Piston's routes.
    let refused = get("/api/v2/runtimes", "only-run").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "forbidden");
    assert_eq!(get("/ready", "alpha").await.unwrap().status(), 200);
    assert_eq!(get("/judge0/about", "alpha").await.unwrap().status(), 200);
    // /metrics has its own key.
    assert_eq!(get("/metrics", "alpha").await.unwrap().status(), 403);
    assert_eq!(get("/metrics", "scrape").await.unwrap().status(), 200);
    assert_eq!(
        client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_past_its_rate_gets_429_with_the_headers_and_another_does_not() {
    // One run a minute, a burst of two: no token comes back while the
    // three runs below are made, however slow the machine (at 60 a minute,
    // three runs taking over a second let a third through).
    let app = spawn_app_with(|c| {
        c.front_door.rate_limit_per_minute = 1;
        c.front_door.rate_limit_burst = 2;
    })
    .await;
    let greedy = client_from("127.0.0.2");
    let start = Instant::now();
    let first = post_run(&greedy, &app, "print(1)", None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "1");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    let second = post_run(&greedy, &app, "print(1)", None).await;
    assert_eq!(second.headers()["ratelimit-remaining"], "0");
    let third = post_run(&greedy, &app, "print(1)", None).await;
    let took = start.elapsed().as_secs();
    assert_eq!(third.status(), 429);
    // The first token comes back a minute after the first run.
    let retry: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (60u64.saturating_sub(took + 1)..=60).contains(&retry),
        "retry in {retry} s, {took} s after the first run"
    );
    assert_eq!(third.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Another client has its own bucket; reading the languages is not
    // counted.
    let other = client_from("127.0.0.3");
    assert_eq!(post_run(&other, &app, "print(1)", None).await.status(), 200);
    assert_eq!(
        greedy
            .get(app.url("/languages"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
}

/// The time `client`'s `print(1)` takes to be answered 200.
async fn timed_print(client: &reqwest::Client, app: &TestApp) -> Duration {
    let start = Instant::now();
    let answer = post_run(client, app, "print(1)", None).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["stdout"], "1\n", "{body}");
    start.elapsed()
}

#[tokio::test]
async fn one_clients_36_slow_runs_leave_anothers_print_answered_at_once() {
    let app = spawn_app_with(|c| {
        c.runs.max_concurrent = 4;
        c.runs.max_queue = 32;
        c.runs.client_max_concurrent = None;
        c.runs.client_max_queue = None;
    })
    .await;
    let greedy = client_from("127.0.0.2");
    let flood: Vec<_> = (0..36)
        .map(|_| {
            let (greedy, url) = (greedy.clone(), app.url("/run-code"));
            tokio::spawn(async move {
                greedy
                    .post(url)
                    .json(&json!({"language": "python", "code": "import time\ntime.sleep(10)"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Its share (2 of the 4 slots) is running.
    let start = Instant::now();
    while app.containers().await.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the flood never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let polite = client_from("127.0.0.3");
    let took = timed_print(&polite, &app).await;
    assert!(
        took < Duration::from_secs(5),
        "print(1) took {took:?} behind the flood"
    );
    for request in &flood {
        request.abort();
    }
    app.stop().await;
}

#[tokio::test]
async fn one_clients_48_slow_bodies_leave_anothers_print_answered_at_once() {
    let app = spawn_app_with(|_| {}).await;
    let target = app.addr;
    let mut slow = Vec::new();
    for _ in 0..48 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new("127.0.0.2".parse().unwrap(), 0))
            .unwrap();
        let mut stream = socket.connect(target).await.unwrap();
        stream
            .write_all(b"POST /run-code HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A byte every 2 s keeps each body alive.
    let dribble = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            for stream in &mut slow {
                let _ = stream.write_all(b" ").await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let polite = client_from("127.0.0.3");
    let took = timed_print(&polite, &app).await;
    assert!(
        took < Duration::from_secs(5),
        "print(1) took {took:?} behind the slow bodies"
    );
    dribble.abort();
    app.stop().await;
}

/// The value of the sample `name` (with its labels) in `text`, 0 if absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_runs_statuses_waits_pool_rejections_reloads_and_probes() {
    let app = crate::helpers::spawn_app_with_languages(
        vec![(
            "python.toml".into(),
            crate::helpers::language_file("python.toml"),
        )],
        |c| c.reload_interval_ms = 200,
    )
    .await;
    let scrape = || async {
        let response = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        response.text().await.unwrap()
    };
    let before = scrape().await;
    let ok = "code_runner_runs_total{language=\"python\",status=\"ok\"}";
    let timeout = "code_runner_runs_total{language=\"python\",status=\"timeout\"}";
    let waits = "code_runner_queue_wait_seconds_count";
    let misses = "code_runner_pool_claims_total{result=\"miss\"}";
    let bad = "code_runner_rejections_total{status=\"400\"}";
    let cpu = "code_runner_run_cpu_seconds_count{language=\"python\"}";
    let reloads = "code_runner_language_reload_failures_total";
    let probes = "code_runner_readiness_probes_total";
    app.python("print(1)").await;
    app.run_ok(json!({"language": "python", "code": "while True: pass", "timeout_ms": 500}))
        .await;
    let (status, _) = app.run(json!({"language": "cobol", "code": "x"})).await;
    assert_eq!(status, 400);
    std::fs::write(
        app.languages.as_ref().unwrap().path().join("broken.toml"),
        "name = \"broken\"\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Ten probes within a second reach the engine at most twice.
    for _ in 0..10 {
        app.get("/ready").await;
    }
    let after = scrape().await;
    let delta = |name| sample(&after, name) - sample(&before, name);
    assert_eq!(delta(ok), 1.0, "{after}");
    assert_eq!(delta(timeout), 1.0, "{after}");
    assert_eq!(delta(waits), 2.0);
    assert_eq!(delta(misses), 2.0);
    assert_eq!(delta(cpu), 2.0);
    assert_eq!(delta(bad), 1.0);
    assert_eq!(delta(reloads), 1.0);
    assert!((1.0..=2.0).contains(&delta(probes)), "{}", delta(probes));
    assert!(after.contains("# TYPE code_runner_containers_alive gauge"));
    assert!(
        after.contains("code_runner_pool_ready{language=\"python\"} 0"),
        "{after}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_that_node_fetch_and_python_urllib_read() {
    let app = spawn_app_with(|c| c.server.max_body_bytes = 1 << 20).await;
    let url = app.url("/run-code");
    let node = format!(
        "fetch('{url}', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: 'x'.repeat(3 * 1024 * 1024)}})\
         .then(async r => console.log(r.status, (await r.json()).code))\
         .catch(e => {{ console.log('error', e.cause ? e.cause.code : e.message); process.exit(1); }})"
    );
    let python = format!(
        "import urllib.request, urllib.error, json\n\
         req = urllib.request.Request('{url}', data=b'x' * (3 * 1024 * 1024), headers={{'content-type': 'application/json'}})\n\
         try:\n    urllib.request.urlopen(req)\nexcept urllib.error.HTTPError as e:\n    print(e.code, json.load(e)['code'])\n"
    );
    for (program, args) in [
        ("node", vec!["-e", &node]),
        ("python3", vec!["-c", &python]),
    ] {
        let out = tokio::process::Command::new(program)
            .args(&args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.trim(),
            "413 body_too_large",
            "{program}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_client_text_in_them_is_cut() {
    let port = free_port();
    let instance = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let child = binary()
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", &instance)
        .env("CODE_RUNNER_LANGUAGES_DIR", languages_dir())
        .env("CODE_RUNNER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{url}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let long = "y".repeat(100_000);
    let answer = client
        .post(format!("{url}/run-code"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"language": "python", "code": "1", "{long}": 1}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body = answer.text().await.unwrap();
    assert!(body.len() < 1500, "{} bytes", body.len());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| {
            assert!(l.len() < 2048, "a log line of {} bytes", l.len());
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "code-runner listening" && l["level"] == "INFO"),
        "{logs}"
    );
    let refused = lines
        .iter()
        .find(|l| l["message"] == "request refused")
        .expect("the refusal is logged");
    assert!(
        refused["error"].as_str().unwrap().contains("…[cut:"),
        "{refused}"
    );
}

/// Starts the binary with `max_connections` under the open-file limits
/// (soft, hard); its exit code and stderr, or `None` if it served.
async fn start_with_file_limit(
    max_connections: u64,
    soft: u64,
    hard: u64,
) -> Option<(i32, String)> {
    let port = free_port();
    let mut command = binary();
    command
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_LANGUAGES_DIR", languages_dir())
        .env("CODE_RUNNER_MAX_CONNECTIONS", max_connections.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only this child.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return Some((status.code().unwrap_or(-1), stderr));
        }
        if client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            return None;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "neither served nor exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_connection_cap_is_checked_against_the_open_file_limit_at_start() {
    // The soft limit is raised when the hard one allows.
    assert_eq!(start_with_file_limit(1024, 300, 4096).await, None);
    // Otherwise start-up stops, naming both.
    let (code, stderr) = start_with_file_limit(1024, 300, 512)
        .await
        .expect("refused to start");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("max_connections") && stderr.contains("1024"),
        "{stderr}"
    );
    assert!(stderr.contains("at most 512"), "{stderr}");
}
