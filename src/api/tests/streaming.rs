//! The streamed runs' wire contract over the runner double: each
//! protocol's frames, in order. (warp's test client keeps a close frame to
//! itself: the close codes are read by the real-engine tests, in
//! `tests/api/streaming.rs`, with what running code does while it
//! streams.)

use serde_json::{Value, json};
use warp::test::WsClient;
use warp::ws::Message;

use super::{api, double, hello, judge0, ran, stage};
use crate::outcome::Exit;

async fn connect(path: &str) -> WsClient {
    let runner = hello();
    let routes = super::routes(api(&runner, judge0(&runner, None)));
    warp::test::ws()
        .path(path)
        .handshake(routes)
        .await
        .expect("the handshake")
}

/// Every text frame until the socket closes.
async fn frames(client: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(message) = client.recv().await {
        if message.is_text() {
            frames.push(serde_json::from_str(message.to_str().unwrap()).unwrap());
        }
    }
    frames
}

#[tokio::test]
async fn our_protocol_says_the_stage_the_output_and_last_the_run_codes_answer() {
    let mut client = connect("/run-code/ws").await;
    let request = json!({"language": "python", "code": "print('hi')"});
    client.send(Message::text(request.to_string())).await;
    let frames = frames(&mut client).await;
    assert_eq!(
        frames[0],
        json!({"type": "stage", "stage": "run", "event": "started"})
    );
    assert_eq!(
        frames[1],
        json!({"type": "stdout", "stage": "run", "data": "hi\n"})
    );
    let answer = &frames[2];
    assert_eq!(answer.get("type"), None, "the answer has no type: {answer}");
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["stdout"], "hi\n");
    assert_eq!(answer["exit_code"], 0);
    assert_eq!(frames.len(), 3);
}

#[tokio::test]
async fn a_refused_first_frame_gets_the_error_body_alone() {
    let cases = [
        (json!({"language": "python"}), "invalid_field"),
        (
            json!({"language": "python", "code": "x", "stdin": "y".repeat(101)}),
            "field_too_large",
        ),
        (
            json!({"language": "python", "code": "x", "api_key": 7}),
            "invalid_field",
        ),
    ];
    for (request, reason) in cases {
        let mut client = connect("/run-code/ws").await;
        client.send(Message::text(request.to_string())).await;
        let frames = frames(&mut client).await;
        assert_eq!(frames.len(), 1, "{request}: {frames:?}");
        assert_eq!(frames[0]["code"], reason);
    }
}

#[tokio::test]
async fn pistons_connect_answers_runtime_stage_data_and_exit() {
    let mut client = connect("/api/v2/connect").await;
    let init = json!({"type": "init", "language": "python", "version": "*",
        "files": [{"name": "main.py", "content": "print('hi')"}]});
    client.send(Message::text(init.to_string())).await;
    let frames = frames(&mut client).await;
    assert_eq!(frames[0]["type"], "runtime");
    assert_eq!(frames[0]["language"], "python");
    assert_eq!(frames[1], json!({"type": "stage", "stage": "run"}));
    assert_eq!(
        frames[2],
        json!({"type": "data", "stream": "stdout", "data": "hi\n"})
    );
    assert_eq!(
        frames[3],
        json!({"type": "exit", "stage": "run", "code": 0, "signal": null})
    );
    assert_eq!(frames.len(), 4);
}

#[tokio::test]
async fn pistons_connect_says_an_error_before_a_refusal() {
    for message in [
        "{oops",
        r#"{"type":"init","language":"cobol","version":"*","files":[]}"#,
    ] {
        let mut client = connect("/api/v2/connect").await;
        client.send(Message::text(message)).await;
        let frames = frames(&mut client).await;
        assert_eq!(frames.len(), 1, "{message}: {frames:?}");
        assert_eq!(frames[0]["type"], "error", "{frames:?}");
        assert!(frames[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn server_sent_events_are_the_frames_then_the_answer() {
    let runner = double(|_| Ok(ran(stage(Some(Exit::Code(0)), None, "out\n", "err\n"))));
    let reply = warp::test::request()
        .method("POST")
        .path("/run-code")
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"language": "python", "code": "print(1)"}"#)
        .reply(&super::routes(api(&runner, judge0(&runner, None))))
        .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "text/event-stream");
    let body = String::from_utf8(reply.body().to_vec()).unwrap();
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["stage", "stdout", "stderr", "result"], "{body}");
    assert!(
        body.contains(r#"data:{"type":"stderr","stage":"run","data":"err\n"}"#),
        "{body}"
    );
}
