//! Hostile clients: each malformed or abusive request gets its 4xx and a
//! clear JSON error, and no container is made for any of them.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// Sends raw bytes as one HTTP request on a fresh connection; returns the
/// status and the JSON body.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, Value) {
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    read_response(&mut socket).await
}

async fn read_response(socket: &mut TcpStream) -> (u16, Value) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn post(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /run-code HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

async fn expect(app: &TestApp, body: &[u8], status: u16, code: &str) -> Value {
    let (got, answer) = raw(app, &post(body)).await;
    assert_eq!(
        (got, answer["code"].as_str().unwrap_or_default()),
        (status, code),
        "{}: {answer}",
        String::from_utf8_lossy(&body[..body.len().min(80)])
    );
    assert!(!answer["message"].as_str().unwrap().is_empty());
    answer
}

#[tokio::test]
async fn malformed_bodies_are_400_and_make_no_container() {
    let app = spawn_app().await;
    expect(
        &app,
        br#"{"language": "python", "code": "print(1)""#,
        400,
        "malformed_json",
    )
    .await;
    expect(&app, b"\xff\xfe{\"language\": 1}", 400, "malformed_json").await;
    expect(
        &app,
        b"{\"language\": \"python\", \"code\": \"\xff\xfe\"}",
        400,
        "malformed_json",
    )
    .await;
    expect(
        &app,
        b"{\"language\": \"python\", \"code\": \"a\0b\"}",
        400,
        "malformed_json",
    )
    .await;
    expect(
        &app,
        br#"{"language": "python", "code": 5}"#,
        400,
        "invalid_type",
    )
    .await;
    expect(
        &app,
        br#"{"language": "python", "code": "x", "args": [1, 2]}"#,
        400,
        "invalid_type",
    )
    .await;
    let answer = expect(
        &app,
        br#"{"language": "python", "code": "x", "files": [{"name": "a"}]}"#,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(answer["field"], "content");
    expect(&app, b"null", 400, "invalid_type").await;
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn deeply_nested_json_is_400_at_once() {
    let app = spawn_app().await;
    let started = Instant::now();
    let deep = format!(
        r#"{{"language": "python", "code": "x", "stdin": {}}}"#,
        "[".repeat(500_000)
    );
    expect(&app, deep.as_bytes(), 400, "invalid_type").await;
    let deep = format!(r#"{{"language": {}"#, "{\"a\":".repeat(200_000));
    expect(&app, deep.as_bytes(), 400, "invalid_type").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn nul_bytes_are_refused_where_they_cannot_go() {
    let app = spawn_app().await;
    expect(
        &app,
        br#"{"language": "pyt\u0000hon", "code": "x"}"#,
        400,
        "unknown_language",
    )
    .await;
    let answer = expect(
        &app,
        br#"{"language": "python", "code": "x", "args": ["\u0000"]}"#,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(answer["field"], "args");
    let answer = expect(
        &app,
        br#"{"language": "python", "code": "x", "files": [{"name": "a\u0000.py", "content": ""}]}"#,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(answer["field"], "files");
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn huge_args_and_files_lists_are_413() {
    let app = spawn_app().await;
    let args: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let body = json!({"language": "python", "code": "x", "args": args}).to_string();
    let answer = expect(&app, body.as_bytes(), 413, "field_too_large").await;
    assert_eq!(answer["field"], "args");
    let body =
        json!({"language": "python", "code": "x", "args": ["a".repeat(200_000)]}).to_string();
    expect(&app, body.as_bytes(), 413, "field_too_large").await;
    let files: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("f{i}"), "content": ""}))
        .collect();
    let body = json!({"language": "python", "code": "x", "files": files}).to_string();
    let answer = expect(&app, body.as_bytes(), 413, "field_too_large").await;
    assert_eq!(answer["field"], "files");
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn negative_and_absurd_limits_are_400() {
    let app = spawn_app().await;
    for (timeout, code) in [
        ("-1", "invalid_type"),
        ("1e30", "invalid_type"),
        ("1.5", "invalid_type"),
        ("\"100\"", "invalid_type"),
        ("0", "invalid_field"),
        ("18446744073709551615", "invalid_field"),
        ("99999999999999999999999", "invalid_type"),
    ] {
        let body = format!(r#"{{"language": "python", "code": "x", "timeout_ms": {timeout}}}"#);
        expect(&app, body.as_bytes(), 400, code).await;
    }
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_from_its_length_alone() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    // Announce 10 MiB, send none of it: the answer must not wait for it.
    socket
        .write_all(b"POST /run-code HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut socket).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (413, "body_too_large")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_408_and_a_slow_header_is_cut_off() {
    let app = spawn_app_with(|c| {
        c.server.body_timeout_ms = 500;
        c.server.header_timeout_ms = 500;
    })
    .await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(b"POST /run-code HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"langu")
        .await
        .unwrap();
    let (status, body) = read_response(&mut socket).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (408, "body_timeout")
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let started = Instant::now();
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(b"POST /run-code HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "a half-sent header held the connection open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The service still answers.
    assert_eq!(app.get("/health").await.0, 200);
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_are_cut_off_and_a_real_request_gets_through() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 8;
        // One peer may hold them all: this is the global cap's test.
        c.server.max_connections_per_peer = Some(8);
        c.server.header_timeout_ms = 500;
    })
    .await;
    // Thirty clients connect and send nothing, holding their connections.
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let started = Instant::now();
    let answer = app.python("print('through')").await;
    assert_eq!(answer["stdout"], "through\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Each idle connection was closed by the server.
    for mut socket in idle {
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "an idle connection was never closed");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_methods_and_paths_get_json_not_html() {
    let app = spawn_app().await;
    for request in [
        &b"PATCH /run-code HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"BREW /run-code HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /run-code%00 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let (status, body) = raw(&app, request).await;
        assert!(matches!(status, 404 | 405), "{status}: {body}");
        assert!(body["code"].is_string(), "{body}");
    }
    assert!(app.containers().await.is_empty());
    app.stop().await;
}

/// A connection to `app` from the loopback address `from` (a peer of its
/// own), with a receive buffer of `recv_buffer` bytes when given.
pub(crate) async fn connect_from(
    app: &TestApp,
    from: [u8; 4],
    recv_buffer: Option<u32>,
) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    socket.connect(app.addr).await.unwrap()
}

/// The status of `GET /health` sent from the loopback address `from`.
async fn health_from(app: &TestApp, from: [u8; 4]) -> u16 {
    let mut socket = connect_from(app, from, None).await;
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut socket).await.0
}

#[tokio::test]
async fn a_peer_past_its_share_of_connections_gets_429_and_another_peer_is_served() {
    // The attack of security review 3, M2: one peer's silent sockets used
    // to take every connection slot, before any key was checked.
    let app = spawn_app_with(|c| {
        c.server.max_connections = 16;
        c.server.header_timeout_ms = 30_000;
    })
    .await;
    let share = 4; // a quarter of 16
    let mut silent = Vec::new();
    for _ in 0..share {
        silent.push(connect_from(&app, [127, 0, 0, 2], None).await);
    }
    for _ in 0..20 {
        let mut past = connect_from(&app, [127, 0, 0, 2], None).await;
        let (status, body) = read_response(&mut past).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("too_many_connections")),
            "{body}"
        );
    }
    // Other peers are served at once, and run code.
    let started = Instant::now();
    assert_eq!(health_from(&app, [127, 0, 0, 3]).await, 200);
    assert_eq!(app.python("print('through')").await["stdout"], "through\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A connection that closes gives its slot back.
    drop(silent.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(health_from(&app, [127, 0, 0, 2]).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_answer_the_client_does_not_read_is_dropped_at_the_write_deadline() {
    // Security review 3, H1: an answer its client never read was held, with
    // every byte of it, for as long as the client kept the connection.
    let app = spawn_app_with(|c| {
        c.server.write_timeout_ms = 1000;
        c.limits.output_bytes = 16 * 1024 * 1024;
    })
    .await;
    let code = "import sys; sys.stdout.write('x' * 12_000_000)";
    let body = serde_json::to_vec(&json!({"language": "python", "code": code})).unwrap();
    let mut socket = connect_from(&app, [127, 0, 0, 4], Some(4096)).await;
    socket.write_all(&post(&body)).await.unwrap();
    // The run takes well under a second; the answer (stdout and output,
    // 24 MB) stalls once the buffers are full, and the deadline passes.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut got = Vec::new();
    let mut buf = vec![0; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was never closed");
    let text = String::from_utf8_lossy(&got[..got.len().min(4096)]).to_lowercase();
    assert!(
        text.starts_with("http/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    let length: usize = text
        .split("content-length: ")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .and_then(|n| n.parse().ok())
        .expect("a content-length");
    assert!(length > 24_000_000, "{length}");
    assert!(
        got.len() < length,
        "the whole answer ({length} bytes) was kept for a client that did not read it"
    );
    // The service goes on serving.
    assert_eq!(app.get("/health").await.0, 200);
    app.stop().await;
}
