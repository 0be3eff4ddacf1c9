//! Judge0's stored submissions kept apart by key, each written as the
//! attack of security review 3 against the real server: a second key
//! reading and deleting the first's submission (L3), one key filling the
//! queue or holding the workers (M3), an `expected_output`, a zip and a
//! client's stored bytes that outgrow their bounds (M4), and concurrent
//! POSTs at the queue's bound (L5, on SQLite and PostgreSQL).

use std::io::Write;
use std::time::{Duration, Instant};

use code_runner::config::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::judge0::{judge0_app, postgres_database};

/// A server with the keys `alpha` and `beta`, and `auditor`, granted
/// `judge0:all` in a keys file (kept in `keys`).
async fn keyed_app(
    keys: &tempfile::TempDir,
    change: impl FnOnce(&mut code_runner::Config),
) -> TestApp {
    let file = keys.path().join("keys");
    std::fs::write(&file, "auditor judge0:all,probes\n").unwrap();
    judge0_app(None, move |c| {
        c.front_door.api_keys = vec![Secret("alpha".into()), Secret("beta".into())];
        c.front_door.api_keys_file = Some(file);
        change(c);
    })
    .await
}

/// `method path` with `key` (none: no key), and `body`; status and JSON.
async fn call(
    app: &TestApp,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn python(code: &str) -> Value {
    json!({"source_code": code, "language_id": 71})
}

/// `key`'s submission `token`'s status id, or `None` when it is not found.
async fn status_of(app: &TestApp, key: Option<&str>, token: &str) -> Option<i64> {
    let path = format!("/judge0/submissions/{token}?fields=status_id");
    match call(app, key, Method::GET, &path, None).await {
        (200, answer) => answer["status_id"].as_i64(),
        _ => None,
    }
}

/// Polls `token` until it is finished, for at most `within`.
async fn until_finished(app: &TestApp, key: Option<&str>, token: &str, within: Duration) {
    let start = Instant::now();
    while status_of(app, key, token).await.unwrap_or(0) <= 2 {
        assert!(start.elapsed() < within, "{token} did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `token` until a worker has claimed it.
async fn until_running(app: &TestApp, key: Option<&str>, token: &str) {
    let start = Instant::now();
    while status_of(app, key, token).await != Some(2) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{token} never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Queues `body` as `key`; the token.
async fn queue(app: &TestApp, key: Option<&str>, body: &Value) -> String {
    let (status, answer) = call(app, key, Method::POST, "/judge0/submissions", Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn another_keys_token_is_not_found_to_read_or_delete_and_a_key_granted_all_reaches_it() {
    let keys = tempfile::tempdir().unwrap();
    let app = keyed_app(&keys, |_| {}).await;
    let secret = python("print('the answer is 42')");
    let (status, answer) = call(
        &app,
        Some("alpha"),
        Method::POST,
        "/judge0/submissions?wait=true",
        Some(&secret),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let token = answer["token"].as_str().unwrap().to_string();
    let unknown = uuid::Uuid::new_v4().to_string();
    let not_found = (404, json!({"error": "Not Found"}));

    // beta holds alpha's token: it is as unknown to beta as a made-up one.
    for (method, path) in [
        (Method::GET, format!("/judge0/submissions/{token}?fields=*")),
        (Method::DELETE, format!("/judge0/submissions/{token}")),
    ] {
        let theirs = call(&app, Some("beta"), method.clone(), &path, None).await;
        assert_eq!(theirs, not_found, "{method} {path}");
        let made_up = path.replace(&token, &unknown);
        assert_eq!(
            call(&app, Some("beta"), method, &made_up, None).await,
            not_found
        );
    }
    let batch = format!("/judge0/submissions/batch?tokens={token},{unknown}&fields=stdout");
    let (status, answer) = call(&app, Some("beta"), Method::GET, &batch, None).await;
    assert_eq!(
        (status, answer),
        (200, json!({"submissions": [null, null]}))
    );

    // It is still there, for alpha and for the key granted every one.
    let path = format!("/judge0/submissions/{token}?fields=stdout,source_code");
    for key in ["alpha", "auditor"] {
        let (status, answer) = call(&app, Some(key), Method::GET, &path, None).await;
        assert_eq!(
            (status, &answer["stdout"]),
            (200, &json!("the answer is 42\n")),
            "{key}: {answer}"
        );
    }
    let (status, answer) = call(&app, Some("alpha"), Method::GET, &batch, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["submissions"],
        json!([{"stdout": "the answer is 42\n"}, null])
    );
    let delete = format!("/judge0/submissions/{token}");
    let (status, _) = call(&app, Some("alpha"), Method::DELETE, &delete, None).await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&app, Some("auditor"), &token).await, None);
    app.stop().await;
}

#[tokio::test]
async fn one_key_filling_its_share_of_the_queue_does_not_stop_another_keys_post() {
    let keys = tempfile::tempdir().unwrap();
    let app = keyed_app(&keys, |c| {
        c.judge0.workers = 1;
        c.judge0.max_queue = 8;
    })
    .await;
    // alpha sends slow submissions until it is refused.
    let slow = python("import time\ntime.sleep(3)");
    let mut refused = None;
    for _ in 0..12 {
        let (status, answer) = call(
            &app,
            Some("alpha"),
            Method::POST,
            "/judge0/submissions",
            Some(&slow),
        )
        .await;
        if status != 201 {
            refused = Some((status, answer));
            break;
        }
    }
    // Refused at its share (a quarter of 8, and one the worker holds),
    // long before the queue is full.
    let (status, answer) = refused.expect("alpha is refused past its share");
    assert_eq!(status, 429, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.starts_with("queue is full for this client: at most 2 of its submissions may wait"),
        "{error}"
    );
    // beta is not stopped by it.
    let token = queue(&app, Some("beta"), &python("print(1)")).await;
    until_finished(&app, Some("beta"), &token, Duration::from_secs(30)).await;
    app.stop().await;
}

#[tokio::test]
async fn a_keys_queued_submissions_do_not_hold_another_keys_behind_them() {
    let keys = tempfile::tempdir().unwrap();
    let app = keyed_app(&keys, |c| {
        c.judge0.workers = 1;
        c.judge0.client_max_queue = Some(100);
    })
    .await;
    let slow = python("import time\ntime.sleep(2)");
    let first = queue(&app, Some("alpha"), &slow).await;
    until_running(&app, Some("alpha"), &first).await;
    let mut alphas = vec![first];
    for _ in 0..4 {
        alphas.push(queue(&app, Some("alpha"), &slow).await);
    }
    let beta = queue(&app, Some("beta"), &python("print(1)")).await;
    until_finished(&app, Some("beta"), &beta, Duration::from_secs(30)).await;
    // beta's took the next turn, not the sixth: most of alpha's still wait.
    let mut waiting = 0;
    for token in &alphas {
        if status_of(&app, Some("alpha"), token).await.unwrap() <= 2 {
            waiting += 1;
        }
    }
    assert!(waiting >= 3, "only {waiting} of alpha's 5 were left");
    app.stop().await;
}

/// A zip of one small file, padded with a comment to `size` bytes.
fn padded_zip(size: usize) -> Vec<u8> {
    let zip_of = |comment: &str| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("data.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"1 2\n").unwrap();
        zip.set_comment(comment).unwrap();
        zip.finish().unwrap().into_inner()
    };
    let bare = zip_of("").len();
    let bytes = zip_of(&"x".repeat(size - bare));
    assert_eq!(bytes.len(), size);
    bytes
}

#[tokio::test]
async fn an_expected_output_or_a_zip_larger_than_what_it_stands_for_is_refused_422() {
    let app = judge0_app(None, |c| {
        c.requests.max_stdin_bytes = 1000;
        c.requests.max_code_bytes = 2000;
    })
    .await;
    let b64 =
        |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let code = "print(open('data.txt').read().strip())";
    let cases = [
        (
            json!({"source_code": "print(1)", "language_id": 71, "expected_output": "1".repeat(1001)}),
            json!({"expected_output": ["is 1001 bytes, more than the limit of 1000 bytes (requests.max_stdin_bytes)"]}),
        ),
        (
            json!({"source_code": code, "language_id": 71, "additional_files": b64(&padded_zip(2001))}),
            json!({"additional_files": ["is 2001 bytes, more than the limit of 2000 bytes (requests.max_code_bytes)"]}),
        ),
    ];
    for (body, refusal) in cases {
        let (status, answer) = app.post("/judge0/submissions", &body).await;
        assert_eq!((status, answer), (422, refusal));
    }
    // At the bounds, both are taken.
    let at = json!({"source_code": code, "language_id": 71,
        "additional_files": b64(&padded_zip(2000)), "expected_output": "1 2"});
    let (status, answer) = app.post("/judge0/submissions?wait=true", &at).await;
    assert_eq!(
        (status, &answer["status"]["id"]),
        (201, &json!(3)),
        "{answer}"
    );
    let at =
        json!({"source_code": "print(1)", "language_id": 71, "expected_output": "1".repeat(1000)});
    assert_eq!(app.post("/judge0/submissions", &at).await.0, 201);
    app.stop().await;
}

#[tokio::test]
async fn a_key_over_its_stored_bytes_is_refused_429_while_another_is_served() {
    let keys = tempfile::tempdir().unwrap();
    let app = keyed_app(&keys, |c| {
        c.judge0.client_max_stored_bytes = Some(16_000);
    })
    .await;
    // Each holds 3 KB of stdin, about 4 KB stored (base64).
    let big =
        json!({"source_code": "print(len(input()))", "language_id": 71, "stdin": "x".repeat(3000)});
    let mut accepted = 0;
    let refused = loop {
        let (status, answer) = call(
            &app,
            Some("alpha"),
            Method::POST,
            "/judge0/submissions?wait=true",
            Some(&big),
        )
        .await;
        if status != 201 {
            break (status, answer);
        }
        accepted += 1;
        assert!(
            accepted < 20,
            "alpha stored {accepted} and was never refused"
        );
    };
    assert!((2..=4).contains(&accepted), "{accepted}");
    let error = refused.1["error"].as_str().unwrap().to_string();
    assert_eq!(refused.0, 429, "{error}");
    assert_eq!(
        error,
        "this client's stored submissions would hold more than 16000 bytes (judge0.client_max_stored_bytes); delete finished ones or wait until they expire"
    );
    // beta is served.
    let (status, answer) = call(
        &app,
        Some("beta"),
        Method::POST,
        "/judge0/submissions?wait=true",
        Some(&big),
    )
    .await;
    assert_eq!((status, &answer["stdout"]), (201, &json!("3000\n")));
    app.stop().await;
}

#[tokio::test]
async fn past_the_stored_submissions_bound_a_post_is_507_until_one_is_deleted() {
    let app = judge0_app(None, |c| {
        c.judge0.max_stored = 2;
        c.judge0.client_max_stored = Some(2);
    })
    .await;
    let one = python("print(1)");
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (status, answer) = app.post("/judge0/submissions?wait=true", &one).await;
        assert_eq!(status, 201, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_string());
    }
    let (status, answer) = app.post("/judge0/submissions", &one).await;
    assert_eq!(
        (status, answer),
        (
            507,
            json!({"error": "the submissions database holds 2 submissions, the most it may (judge0.max_stored); retry later"})
        )
    );
    let delete = format!("/judge0/submissions/{}", tokens[0]);
    assert_eq!(call(&app, None, Method::DELETE, &delete, None).await.0, 200);
    assert_eq!(app.post("/judge0/submissions", &one).await.0, 201);
    app.stop().await;
}

/// Fills the queue to one below its bound while the one worker is busy,
/// then 16 keys send a POST each at once: exactly one is queued.
async fn concurrent_posts_at_the_bound_take_exactly_the_room_left(database: Option<String>) {
    let keys: Vec<String> = (0..16).map(|i| format!("key-{i}")).collect();
    let secrets = keys.iter().map(|k| Secret(k.clone())).collect();
    let app = judge0_app(database, |c| {
        c.front_door.api_keys = secrets;
        c.judge0.workers = 1;
        c.judge0.max_queue = 10;
        c.judge0.client_max_queue = Some(10);
    })
    .await;
    let first = Some(keys[0].as_str());
    let busy = queue(&app, first, &python("import time\ntime.sleep(8)")).await;
    until_running(&app, first, &busy).await;
    let one = python("print(1)");
    for _ in 0..9 {
        queue(&app, first, &one).await;
    }
    let posts: Vec<_> = keys
        .iter()
        .map(|key| {
            let request = app
                .client
                .post(app.url("/judge0/submissions"))
                .bearer_auth(key)
                .json(&one);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for post in posts {
        answers.push(post.await.unwrap());
    }
    let queued = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(queued, 1, "{answers:?}");
    for (status, answer) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!((*status, answer), (503, &json!({"error": "queue is full"})));
    }
    app.stop().await;
}

#[tokio::test]
async fn with_sqlite_concurrent_posts_at_the_queues_bound_never_pass_it() {
    concurrent_posts_at_the_bound_take_exactly_the_room_left(None).await;
}

#[tokio::test]
async fn with_postgresql_concurrent_posts_at_the_queues_bound_never_pass_it() {
    concurrent_posts_at_the_bound_take_exactly_the_room_left(Some(postgres_database().await)).await;
}
