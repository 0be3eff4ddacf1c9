//! The attacks of security review 3 on what a request costs the service
//! past its run, each written as the attack and asserting the safe
//! answer: Judge0 answers its clients never read (H1), callbacks to hosts
//! that never answer (M5), callback names that resolve to the service's
//! own network and entries without a port (L6), and requests whose runs,
//! or polls, outrun the rate (L4, H1).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, binary, language_file, spawn_app_with_languages};

/// A server with python whose Judge0 submissions are kept in an SQLite
/// file of its own.
async fn judge0_app(change: impl FnOnce(&mut code_runner::Config)) -> TestApp {
    let files = vec![("python.toml".to_string(), language_file("python.toml"))];
    spawn_app_with_languages(files, move |c| {
        c.judge0.database = format!("sqlite://{}/judge0.sqlite", c.languages_dir.display());
        change(c);
    })
    .await
}

/// A listener on loopback that accepts connections and never answers:
/// its address, and the connections it holds.
fn silent_listener() -> (SocketAddr, Arc<Mutex<Vec<std::net::TcpStream>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            match socket {
                Ok(socket) => keep.lock().unwrap().push(socket),
                Err(_) => return,
            }
        }
    });
    (addr, held)
}

/// Polls the submission `token` until it has finished; its view.
async fn finished(app: &TestApp, token: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, answer) = app.get(&format!("/judge0/submissions/{token}")).await;
        if status == 200 && answer["status"]["id"].as_i64().unwrap_or(0) > 2 {
            return answer;
        }
        assert!(
            started.elapsed() < within,
            "{token} did not finish within {within:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Queues a submission; its token.
async fn submit(app: &TestApp, body: &Value) -> String {
    let (status, answer) = app.post("/judge0/submissions", body).await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn callbacks_to_a_port_that_never_answers_do_not_delay_another_submissions_run() {
    // Security review 3, M5: each worker used to wait for its callback
    // (tries × timeout, 15 s here) before it took the next submission.
    let (silent, held) = silent_listener();
    let workers = 2;
    let app = judge0_app(|c| {
        c.judge0.workers = workers;
        c.judge0.callback_hosts = vec![silent.to_string().parse().unwrap()];
        c.judge0.callback_tries = 3;
        c.judge0.callback_timeout_ms = 5000;
    })
    .await;
    let hook = format!("http://{silent}/hook");
    let mut stalling = Vec::new();
    for _ in 0..workers {
        let body = json!({"source_code": "print(1)", "language_id": 71, "callback_url": hook});
        stalling.push(submit(&app, &body).await);
    }
    for token in &stalling {
        finished(&app, token, Duration::from_secs(60)).await;
    }
    let started = Instant::now();
    while held.lock().unwrap().len() < workers {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the callbacks never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every callback is now waiting on the silent port; another
    // submission runs at once.
    let started = Instant::now();
    let other = submit(
        &app,
        &json!({"source_code": "print('through')", "language_id": 71}),
    )
    .await;
    let answer = finished(&app, &other, Duration::from_secs(60)).await;
    assert_eq!(answer["stdout"], "through\n", "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "another submission waited {:?} behind the callbacks",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_name_resolving_to_loopback_listed_by_name_only_is_never_called() {
    // Security review 3, L6: the allow-list matched the URL's name and
    // never the address it resolved to, so a listed name that resolves to
    // the service's own network (here `localhost`) reached it.
    let (receiver, held) = silent_listener();
    let by_name = format!("localhost:{}", receiver.port());
    let app = judge0_app(|c| {
        c.judge0.callback_hosts = vec![by_name.parse().unwrap()];
        c.judge0.callback_tries = 1;
        c.judge0.callback_timeout_ms = 1000;
    })
    .await;
    let hook = format!("http://localhost:{}/hook", receiver.port());
    let body = json!({"source_code": "print(1)", "language_id": 71, "callback_url": hook});
    let token = submit(&app, &body).await;
    finished(&app, &token, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        held.lock().unwrap().len(),
        0,
        "a callback listed by name reached a loopback address"
    );
    app.stop().await;

    // Listed by its address and port too, the same callback is made, to
    // that address.
    let app = judge0_app(|c| {
        c.judge0.callback_hosts = vec![
            by_name.parse().unwrap(),
            receiver.to_string().parse().unwrap(),
        ];
        c.judge0.callback_tries = 1;
        c.judge0.callback_timeout_ms = 1000;
    })
    .await;
    let token = submit(&app, &body).await;
    finished(&app, &token, Duration::from_secs(60)).await;
    let started = Instant::now();
    while held.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the callback listed by address was never made"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[test]
fn a_callback_host_without_a_port_stops_start_up_naming_the_key() {
    // Security review 3, L6 and M5: a bare host admitted every port of
    // it, so a client chose one that never answers, or another service's.
    let mut child = binary()
        .env("CODE_RUNNER_PORT", "0")
        .env("CODE_RUNNER_JUDGE0__CALLBACK_HOSTS", "[hooks.example.com]")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the service started with a callback host that names no port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`judge0.callback_hosts")
            && stderr.contains("CODE_RUNNER_JUDGE0__CALLBACK_HOSTS")
            && stderr.contains("names no port"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_judge0_batch_of_10_under_a_rate_of_3_a_minute_is_refused_and_its_runs_are_charged() {
    // Security review 3, L4: the rate counted requests, not runs, so one
    // batch of 10 passed a rate of 3 a minute.
    let app = judge0_app(|c| {
        c.front_door.rate_limit_per_minute = 3;
        c.front_door.rate_limit_burst = 3;
    })
    .await;
    let batch = |n: usize| {
        let one = json!({"source_code": "print(1)", "language_id": 71});
        json!({"submissions": vec![one; n]})
    };
    let (status, answer) = app.post("/judge0/submissions/batch", &batch(10)).await;
    assert_eq!(status, 413, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("runs 10 programs") && error.contains("front_door.rate_limit_burst"),
        "{error}"
    );
    // A submission's number_of_runs counts too.
    let (status, answer) = app
        .post(
            "/judge0/submissions",
            &json!({"source_code": "print(1)", "language_id": 71, "number_of_runs": 4}),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    app.stop().await;

    // Under the burst, a batch passes and is charged its runs: the next
    // request is past the rate.
    let app = judge0_app(|c| {
        c.front_door.rate_limit_per_minute = 3;
        c.front_door.rate_limit_burst = 3;
    })
    .await;
    let response = app
        .client
        .post(app.url("/judge0/submissions/batch"))
        .json(&batch(3))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    let (status, answer) = app.post("/judge0/submissions/batch", &batch(1)).await;
    assert_eq!(status, 429, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_run_with_more_tests_than_the_burst_is_refused() {
    // Security review 3, L4: one /run-code with 64 tests cost one token.
    let app = crate::helpers::spawn_app_with(|c| {
        c.front_door.rate_limit_per_minute = 3;
        c.front_door.rate_limit_burst = 3;
    })
    .await;
    let tests: Vec<Value> = (0..4).map(|i| json!({"stdin": i.to_string()})).collect();
    let (status, answer) = app
        .run(json!({"language": "python", "code": "print(input())", "tests": tests}))
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["code"], "too_many_runs", "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn judge0_reads_past_the_rate_get_429() {
    // Security review 3, H1: GETs under /judge0 passed the rate limiter
    // free, so a client could ask for its largest answers without end.
    let app = judge0_app(|c| {
        c.front_door.rate_limit_per_minute = 3;
        c.front_door.rate_limit_burst = 3;
    })
    .await;
    let token = uuid::Uuid::new_v4();
    for _ in 0..3 {
        let (status, answer) = app.get(&format!("/judge0/submissions/{token}")).await;
        assert_eq!(status, 404, "{answer}");
    }
    let response = app
        .client
        .get(app.url(&format!(
            "/judge0/submissions/batch?tokens={token}&fields=*"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    app.stop().await;
}

/// The test process's resident memory, in bytes (the server runs in it).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test]
async fn batch_reads_of_large_submissions_never_read_hold_one_submission_each_not_the_batch() {
    // Security review 3, H1: `GET /submissions/batch?fields=*` over 20
    // submissions of 2 MB each was built whole in memory, 54 MB an answer,
    // and held for as long as its client did not read it.
    let stdin_bytes = 2_000_000;
    let app = judge0_app(|c| {
        c.requests.max_stdin_bytes = 2 * 1024 * 1024;
        c.server.max_body_bytes = 4 * 1024 * 1024;
        // The answers are held as long as the test looks at them.
        c.server.write_timeout_ms = 60_000;
    })
    .await;
    let stdin: String = (0..stdin_bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let body = json!({"source_code": "pass", "language_id": 71, "stdin": stdin});
        tokens.push(submit(&app, &body).await);
    }
    for token in &tokens {
        finished(&app, token, Duration::from_secs(120)).await;
    }
    let path = format!(
        "/judge0/submissions/batch?tokens={}&fields=*&base64_encoded=true",
        tokens.join(",")
    );
    let before = resident_bytes();
    let mut silent = Vec::new();
    for _ in 0..8 {
        let mut socket = crate::clients::connect_from(&app, [127, 0, 0, 5], Some(4096)).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
            .await
            .unwrap();
        silent.push(socket);
    }
    let mut grown = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        grown = grown.max(resident_bytes().saturating_sub(before));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each answer is about 54 MB; 8 held whole are over 400 MB.
    assert!(
        grown < 160 << 20,
        "8 answers never read took {} MiB",
        grown >> 20
    );
    drop(silent);
    // A client that reads gets the whole answer.
    let answer: Value = app
        .client
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let submissions = answer["submissions"].as_array().unwrap();
    assert_eq!(submissions.len(), 20);
    for (submission, token) in submissions.iter().zip(&tokens) {
        assert_eq!(submission["token"], token.as_str());
        assert_eq!(submission["status"]["id"], 3, "{}", submission["status"]);
        let encoded: String = submission["stdin"].as_str().unwrap().split('\n').collect();
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
        assert_eq!(decoded, stdin.as_bytes());
    }
    app.stop().await;
}
