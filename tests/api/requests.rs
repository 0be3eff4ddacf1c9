//! The real server's request bounds: the size limits the configuration
//! sets reach the edge (413, and no container), a full service answers 429
//! with `Retry-After`, and a queued request waits for a slot. How every
//! refusal is rendered (malformed JSON, wrong types, unknown fields and
//! languages, invalid values, 411, 405 and 404) is the fast tier's
//! (`src/api/tests/mod.rs`, over a runner double).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, wait_for_a_container};

async fn assert_error(app: &TestApp, body: &str, status: u16, code: &str) -> Value {
    let (got, answer) = app.post_bytes("/run-code", body.to_string()).await;
    assert_eq!(
        (got, answer["code"].as_str().unwrap()),
        (status, code),
        "{body}: {answer}"
    );
    assert!(!answer["message"].as_str().unwrap().is_empty());
    answer
}

/// The limits are set in the configuration: this is where `Config`'s
/// bounds are seen to reach the edge (the fast tier sets the API's by hand).
#[tokio::test]
async fn code_stdin_args_and_body_over_their_limits_are_413() {
    let app = spawn_app_with(|c| {
        c.requests.max_code_bytes = 1000;
        c.requests.max_stdin_bytes = 1000;
        c.requests.max_args = 3;
        c.server.max_body_bytes = 100_000;
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
async fn a_full_service_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.runs.max_concurrent = 1;
        c.runs.max_queue = 0;
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
        c.runs.max_concurrent = 1;
        c.runs.max_queue = 4;
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
