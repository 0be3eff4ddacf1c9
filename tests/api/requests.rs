//! Bad requests: each gets its status, a stable code and a clear message,
//! and no container is created for any of them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, wait_for_a_container};

/// POSTs raw bytes to a path.
async fn post_raw(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON error"))
}

async fn assert_error(app: &TestApp, body: &str, status: u16, code: &str) -> Value {
    let (got, answer) = post_raw(app, "/run-code", body.to_string()).await;
    assert_eq!(
        (got, answer["code"].as_str().unwrap()),
        (status, code),
        "{body}: {answer}"
    );
    assert!(!answer["message"].as_str().unwrap().is_empty());
    answer
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let app = spawn_app().await;
    assert_error(
        &app,
        r#"{"language": "python", "code": "#,
        400,
        "malformed_json",
    )
    .await;
    assert_error(&app, "   ", 400, "malformed_json").await;
    assert_error(&app, "not json", 400, "malformed_json").await;
    assert_error(&app, r#"{"language": 3, "code": "x"}"#, 400, "invalid_type").await;
    assert_error(
        &app,
        r#"{"language": "python", "code": "x", "args": "a"}"#,
        400,
        "invalid_type",
    )
    .await;
    assert_error(
        &app,
        r#"{"language": "python", "code": "x", "timeout_ms": -1}"#,
        400,
        "invalid_type",
    )
    .await;
    assert_error(&app, r#"["python", "print(1)"]"#, 400, "invalid_type").await;
    let answer = assert_error(&app, r#"{"language": "python"}"#, 400, "invalid_field").await;
    assert_eq!(answer["field"], "code");
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_field_is_400_and_named() {
    let app = spawn_app().await;
    let answer = assert_error(
        &app,
        r#"{"language": "python", "code": "x", "timeout": 5}"#,
        400,
        "unknown_field",
    )
    .await;
    assert_eq!(answer["field"], "timeout");
    assert!(answer["message"].as_str().unwrap().contains("`timeout`"));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_language_is_400_listing_the_languages() {
    let app = spawn_app().await;
    let answer = assert_error(
        &app,
        r#"{"language": "cobol", "code": "x"}"#,
        400,
        "unknown_language",
    )
    .await;
    assert_eq!(answer["languages"], json!(["python"]));
    assert!(answer["message"].as_str().unwrap().contains("python"));
    app.stop().await;
}

#[tokio::test]
async fn invalid_values_are_400_naming_the_field() {
    let app = spawn_app().await;
    for (body, field) in [
        (r#"{"language": "python", "code": ""}"#, "code"),
        (
            r#"{"language": "python", "code": "x", "timeout_ms": 0}"#,
            "timeout_ms",
        ),
        (
            r#"{"language": "python", "code": "x", "timeout_ms": 10001}"#,
            "timeout_ms",
        ),
        (
            r#"{"language": "python", "code": "x", "args": ["a\u0000b"]}"#,
            "args",
        ),
        (r#"{"language": "", "code": "x"}"#, "language"),
    ] {
        let answer = assert_error(&app, body, 400, "invalid_field").await;
        assert_eq!(answer["field"], field, "{body}");
    }
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn code_stdin_args_and_body_over_their_limits_are_413() {
    let app = spawn_app_with(|c| {
        c.max_code_bytes = 1000;
        c.max_stdin_bytes = 1000;
        c.max_args = 3;
        c.max_body_bytes = 100_000;
    })
    .await;
    let big = "x".repeat(1001);
    for (body, field) in [
        (json!({"language": "python", "code": big}), "code"),
        (
            json!({"language": "python", "code": "1", "stdin": big}),
            "stdin",
        ),
        (
            json!({"language": "python", "code": "1", "args": ["a", "b", "c", "d"]}),
            "args",
        ),
    ] {
        let answer = assert_error(&app, &body.to_string(), 413, "field_too_large").await;
        assert_eq!(answer["field"], field);
    }
    let huge = json!({"language": "python", "code": "x".repeat(200_000)}).to_string();
    assert_error(&app, &huge, 413, "body_too_large").await;
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_without_a_length_is_411() {
    let app = spawn_app().await;
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        r#"{"language": "python", "code": "print(1)"}"#.as_bytes().to_vec(),
    )]);
    let (status, answer) = post_raw(&app, "/run-code", reqwest::Body::wrap_stream(stream)).await;
    assert_eq!(
        (status, answer["code"].as_str().unwrap()),
        (411, "length_required")
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_paths_404() {
    let app = spawn_app().await;
    for (method, path, status, code) in [
        ("GET", "/run-code", 405, "method_not_allowed"),
        ("PUT", "/run-code", 405, "method_not_allowed"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("DELETE", "/languages", 405, "method_not_allowed"),
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/run", 404, "not_found"),
        ("GET", "/run-code/extra", 404, "not_found"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let body: Value = response.json().await.expect("JSON, not HTML");
        assert_eq!(body["code"], code, "{method} {path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_full_service_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.max_concurrent_runs = 1;
        c.max_queue = 0;
    })
    .await;
    let long =
        app.run(json!({"language": "python", "code": "import time\ntime.sleep(3)\nprint('done')"}));
    let refused = async {
        wait_for_a_container(&app.docker, &app.instance).await;
        let response = app
            .client
            .post(app.url("/run-code"))
            .json(&json!({"language": "python", "code": "print(1)"}))
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, retry_after, body)
    };
    let ((long_status, long_answer), (status, retry_after, body)) = tokio::join!(long, refused);
    assert_eq!(status, 429);
    assert_eq!(body["code"], "busy");
    assert_eq!(retry_after.unwrap(), "1");
    assert_eq!(long_status, 200);
    assert_eq!(long_answer["stdout"], "done\n");
    app.stop().await;
}

#[tokio::test]
async fn a_queued_request_waits_for_a_slot_and_then_runs() {
    let app = spawn_app_with(|c| {
        c.max_concurrent_runs = 1;
        c.max_queue = 4;
    })
    .await;
    let first = app.python("import time\ntime.sleep(1)\nprint('first')");
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.python("print('second')").await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first["stdout"], "first\n");
    assert_eq!(second["stdout"], "second\n");
    app.stop().await;
}
