//! Judge0's API against the real engine: the official Python SDK
//! unchanged but for its URL, the endpoints' run semantics, submissions
//! that survive `kill -9` (SQLite and PostgreSQL), two replicas sharing one
//! PostgreSQL, and callbacks to a receiver on loopback. `scripts/test`
//! starts the PostgreSQL (`scripts/postgres`, `TEST_POSTGRES_URL`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{
    TestApp, assert_no_containers_of, binary, docker, free_port, language_file, post_json,
    python_client, spawn_app_with_languages,
};

/// A server with python and the catalogue's C and C++, storing its
/// submissions in an SQLite file in its languages folder (or `database`).
pub(crate) async fn judge0_app(
    database: Option<String>,
    change: impl FnOnce(&mut code_runner::Config),
) -> TestApp {
    let files = vec![
        ("python.toml".to_string(), language_file("python.toml")),
        ("c.toml".to_string(), language_file("available/c.toml")),
        ("cpp.toml".to_string(), language_file("available/cpp.toml")),
    ];
    spawn_app_with_languages(files, move |c| {
        c.judge0.database = database
            .unwrap_or_else(|| format!("sqlite://{}/judge0.sqlite", c.languages_dir.display()));
        change(c);
    })
    .await
}

/// A database of its own in the test PostgreSQL; its URL.
pub(crate) async fn postgres_database() -> String {
    let admin = std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL names the tests' PostgreSQL: run scripts/test (or scripts/postgres)",
    );
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("the tests' PostgreSQL at {admin} cannot be reached: {e}"));
    let name = format!("judge0_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Polls `token` until it is finished, for at most `within`.
async fn finished(app_url: &str, client: &reqwest::Client, token: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(response) = client
            .get(format!("{app_url}/judge0/submissions/{token}?fields=*"))
            .send()
            .await
            && let Ok(answer) = response.json::<Value>().await
            && answer["status"]["id"].as_i64().unwrap_or(0) > 2
        {
            return answer;
        }
        assert!(
            start.elapsed() < within,
            "{token} did not finish within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn judge0s_python_sdk_works_unchanged_but_for_the_url() {
    let app = judge0_app(None, |_| {}).await;
    let out = python_client("judge0_client.py", &[&app.url("/judge0")]).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        16,
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn submissions_run_with_judge0s_semantics_on_the_real_engine() {
    let app = judge0_app(None, |_| {}).await;
    let run = |body: Value| {
        let app = &app;
        async move {
            let (status, answer) = app
                .post("/judge0/submissions?wait=true&fields=*", &body)
                .await;
            assert_eq!(status, 201, "{answer}");
            answer
        }
    };
    let status = |answer: &Value| answer["status"]["id"].as_i64().unwrap();

    // Compiler options reach the compiler as words, never through a shell.
    let c = "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }";
    let answer =
        run(json!({"source_code": c, "language_id": 50, "compiler_options": "-O0 -DVALUE=7"}))
            .await;
    assert_eq!(
        (status(&answer), &answer["stdout"]),
        (3, &json!("7\n")),
        "{answer}"
    );
    // A shell's characters are not flag characters: refused before any
    // compiler (or shell) sees them.
    let (refused, answer) = app
        .post(
            "/judge0/submissions?wait=true",
            &json!({"source_code": c, "language_id": 50, "compiler_options": "-DVALUE=1;id"}),
        )
        .await;
    assert_eq!(refused, 422, "{answer}");
    assert!(
        answer["compiler_options"][0]
            .as_str()
            .unwrap()
            .starts_with("has `-DVALUE=1;id`, which language `c` does not allow"),
        "{answer}"
    );

    // Arguments, split as a shell would split them, but never run by one.
    let args = "import sys\nprint(sys.argv[1:])";
    let answer = run(
        json!({"source_code": args, "language_id": 71, "command_line_arguments": "a 'b c' $(id)"}),
    )
    .await;
    assert_eq!(answer["stdout"], "['a', 'b c', '$(id)']\n", "{answer}");

    // Additional files, from a zip.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("data/values.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"20 22\n").unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let reader = "print(sum(map(int, open('data/values.txt').read().split())))";
    let answer =
        run(json!({"source_code": reader, "language_id": 71, "additional_files": b64(&zip)})).await;
    assert_eq!(answer["stdout"], "42\n", "{answer}");

    // stderr into stdout, in the order written (the two streams reach the
    // service on two pipes: writes a moment apart keep their order).
    let both = "import sys, time\nprint('a', flush=True)\ntime.sleep(0.05)\nprint('b', file=sys.stderr, flush=True)\ntime.sleep(0.05)\nprint('c')";
    let answer =
        run(json!({"source_code": both, "language_id": 71, "redirect_stderr_to_stdout": true}))
            .await;
    assert_eq!(
        (&answer["stdout"], &answer["stderr"]),
        (&json!("a\nb\nc\n"), &Value::Null)
    );

    // The limits, as Judge0's users read them.
    let answer = run(json!({"source_code": "while True: pass", "language_id": 71, "cpu_time_limit": 0.5, "cpu_extra_time": 0.2})).await;
    assert_eq!(
        (status(&answer), &answer["message"]),
        (5, &json!("Time limit exceeded"))
    );
    let secs: f64 = answer["time"].as_str().unwrap().parse().unwrap();
    assert!((0.5..1.5).contains(&secs), "{answer}");
    let bomb = "a = []\nwhile True: a.append(bytearray(8 << 20))";
    let answer = run(json!({"source_code": bomb, "language_id": 71, "memory_limit": 65536})).await;
    assert_eq!(
        (status(&answer), &answer["exit_code"], &answer["message"]),
        (11, &json!(137), &json!("Memory limit exceeded")),
        "{answer}"
    );
    let segv = "int main(void) { volatile int *p = 0; return *p; }";
    let answer = run(json!({"source_code": segv, "language_id": 50})).await;
    assert_eq!(
        (status(&answer), &answer["exit_signal"]),
        (7, &json!(11)),
        "{answer}"
    );
    let flood = "while True: print('x' * 1000)";
    let answer = run(json!({"source_code": flood, "language_id": 71, "max_file_size": 16})).await;
    assert_eq!(
        (status(&answer), &answer["exit_signal"]),
        (8, &json!(25)),
        "{answer}"
    );
    assert!(answer["stdout"].as_str().unwrap().len() <= 16 * 1024);

    // Several runs: Accepted each time.
    let answer = run(json!({"source_code": "print(input())", "language_id": 71, "stdin": "x", "expected_output": "x", "number_of_runs": 3})).await;
    assert_eq!(status(&answer), 3, "{answer}");
    assert_eq!(answer["number_of_runs"], 3);
    app.stop().await;
}

/// A `code-runner` process serving python with Judge0's submissions in
/// `database`, one run at a time.
struct Process {
    child: Child,
    url: String,
}

fn start_process(instance: &str, database: &str, languages: &std::path::Path) -> Process {
    let port = free_port();
    let child = binary()
        .env("CODE_RUNNER_PORT", port.to_string())
        .env("CODE_RUNNER_INSTANCE", instance)
        .env("CODE_RUNNER_LANGUAGES_DIR", languages)
        .env("CODE_RUNNER_JUDGE0__DATABASE", database)
        .env("CODE_RUNNER_MAX_CONCURRENT_RUNS", "1")
        .env("CODE_RUNNER_POOL_SIZE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Process {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_up(process: &Process, client: &reqwest::Client) {
    let started = Instant::now();
    while client
        .get(format!("{}/health", process.url))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The (token, attempts) of every stored submission.
async fn attempts(database: &str) -> Vec<(String, i64, Option<String>)> {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(database).await.unwrap();
    let rows: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT token, attempts, instance FROM judge0_submissions ORDER BY id")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    rows
}

/// Queues three slow submissions, kills the service with SIGKILL while
/// one runs, starts it again on the same database: every submission
/// finishes once, with its own output; the one cut short ran again.
async fn survives_kill_9(database: String) {
    let docker = docker().await;
    let languages = tempfile::tempdir().unwrap();
    std::fs::write(
        languages.path().join("python.toml"),
        language_file("python.toml"),
    )
    .unwrap();
    let instance = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let client = reqwest::Client::new();
    let mut first = start_process(&instance, &database, languages.path());
    wait_up(&first, &client).await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        let code = format!("import time\ntime.sleep(1.5)\nprint({i})");
        let (status, answer) = post_json(
            &client,
            &format!("{}/judge0/submissions", first.url),
            &json!({"source_code": code, "language_id": 71}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_string());
    }
    // Killed while the first runs.
    let start = Instant::now();
    loop {
        let answer: Value = client
            .get(format!("{}/judge0/submissions/{}", first.url, tokens[0]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["status"]["id"] == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never processing: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let mut second = start_process(&instance, &database, languages.path());
    wait_up(&second, &client).await;
    for (i, token) in tokens.iter().enumerate() {
        let answer = finished(&second.url, &client, token, Duration::from_secs(60)).await;
        assert_eq!(answer["status"]["id"], 3, "{answer}");
        assert_eq!(answer["stdout"], format!("{i}\n"), "{answer}");
    }
    let rows = attempts(&database).await;
    let counts: Vec<i64> = rows.iter().map(|(_, a, _)| *a).collect();
    assert_eq!(
        counts,
        [2, 1, 1],
        "the one cut short ran again, the others once"
    );
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    // The restart removed what the killed process left; the second's own
    // go once it is gone too (the next start would remove them).
    let third = start_process(&instance, &database, languages.path());
    wait_up(&third, &client).await;
    let mut third = third;
    nix_term(&third.child);
    third.child.wait().unwrap();
    assert_no_containers_of(&docker, &instance, Duration::from_secs(10)).await;
}

fn nix_term(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn with_sqlite_every_accepted_submission_survives_kill_9_and_finishes_once() {
    let dir = tempfile::tempdir().unwrap();
    survives_kill_9(format!("sqlite://{}/judge0.sqlite", dir.path().display())).await;
}

#[tokio::test]
async fn with_postgresql_every_accepted_submission_survives_kill_9_and_finishes_once() {
    survives_kill_9(postgres_database().await).await;
}

#[tokio::test]
async fn two_replicas_on_one_postgresql_share_submissions_and_run_each_once() {
    let database = postgres_database().await;
    let one_slot = |c: &mut code_runner::Config| c.runs.max_concurrent = 1;
    let a = judge0_app(Some(database.clone()), one_slot).await;
    let b = judge0_app(Some(database.clone()), one_slot).await;
    let mut tokens = Vec::new();
    for i in 0..6 {
        let code = format!("import time\ntime.sleep(0.5)\nprint({i})");
        let (status, answer) = a
            .post(
                "/judge0/submissions",
                &json!({"source_code": code, "language_id": 71}),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_string());
    }
    // Read on the other replica.
    for (i, token) in tokens.iter().enumerate() {
        let answer = finished(&b.url(""), &b.client, token, Duration::from_secs(60)).await;
        assert_eq!(
            (&answer["status"]["id"], &answer["stdout"]),
            (&json!(3), &json!(format!("{i}\n")))
        );
    }
    let rows = attempts(&database).await;
    assert!(rows.iter().all(|(_, n, _)| *n == 1), "{rows:?}");
    let by: std::collections::HashSet<_> = rows.iter().map(|(_, _, i)| i.clone()).collect();
    assert_eq!(by.len(), 2, "both replicas ran some: {rows:?}");
    a.stop().await;
    b.stop().await;
}

/// A receiver of callbacks on loopback: it records each PUT's body, and
/// drops without an answer the first `drop_first` connections.
async fn receiver(drop_first: usize) -> (SocketAddr, Arc<Mutex<Vec<Value>>>, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let (kept, count) = (bodies.clone(), connections.clone());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = {
                let mut c = count.lock().unwrap();
                *c += 1;
                *c
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body by Content-Length.
            let body = loop {
                let read = socket.read(&mut buf).await.unwrap_or(0);
                if read == 0 {
                    break None;
                }
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        assert!(text.starts_with("PUT "), "{text}");
                        break Some(request[end + 4..end + 4 + length].to_vec());
                    }
                }
            };
            if n <= drop_first {
                drop(socket);
                continue;
            }
            if let Some(body) = body {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        }
    });
    (addr, bodies, connections)
}

#[tokio::test]
async fn a_finished_submission_is_put_to_its_callback_with_retries() {
    let (addr, bodies, connections) = receiver(1).await;
    let app = judge0_app(None, |c| {
        c.judge0.callback_hosts = vec![addr.to_string().parse().unwrap()];
        c.judge0.callback_tries = 3;
        c.judge0.callback_timeout_ms = 2000;
    })
    .await;
    let callback = format!("http://{addr}/done");
    let body =
        json!({"source_code": "print('called back')", "language_id": 71, "callback_url": callback});
    let (status, answer) = app.post("/judge0/submissions", &body).await;
    assert_eq!(status, 201, "{answer}");
    let token = answer["token"].as_str().unwrap().to_string();
    let start = Instant::now();
    while bodies.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no callback came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = bodies.lock().unwrap()[0].clone();
    assert_eq!(body["token"], token.as_str());
    assert_eq!(body["status"], json!({"id": 3, "description": "Accepted"}));
    // Always base64, as Judge0 sends it.
    assert_eq!(body["stdout"], "Y2FsbGVkIGJhY2sK\n");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "token",
            "time",
            "memory",
            "stdout",
            "stderr",
            "compile_output",
            "message",
            "status"
        ]
    );
    // The first connection was dropped unanswered: a second try came.
    assert_eq!(*connections.lock().unwrap(), 2);

    // A host not listed is refused when submitted.
    let (status, answer) = app
        .post(
            "/judge0/submissions",
            &json!({"source_code": "1", "language_id": 71, "callback_url": "http://127.0.0.1:1/x"}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["callback_url"][0]
            .as_str()
            .unwrap()
            .contains("does not call back")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_callback_that_never_answers_is_tried_then_given_up_and_the_result_stays() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming().take(5) {
            keep.lock().unwrap().push(socket.unwrap());
        }
    });
    let app = judge0_app(None, |c| {
        c.judge0.callback_hosts = vec![addr.to_string().parse().unwrap()];
        c.judge0.callback_tries = 2;
        c.judge0.callback_timeout_ms = 300;
    })
    .await;
    let body = json!({"source_code": "print(1)", "language_id": 71, "callback_url": format!("http://{addr}/x")});
    let (_, answer) = app.post("/judge0/submissions?wait=true", &body).await;
    assert_eq!(answer["status"]["id"], 3, "{answer}");
    let start = Instant::now();
    while held.lock().unwrap().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "not retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(held.lock().unwrap().len(), 2, "two tries, no more");
    app.stop().await;
}
