//! Streamed runs against the real engine (docs/streaming.md): the
//! service's own WebSocket protocol, Server-Sent Events, their limits,
//! refusals and cleanup. Piston's `/api/v2/connect` is driven by a client
//! written from Piston's documentation (`tests/clients/piston_connect.py`).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{TestApp, pooled, python_client, spawn_app, spawn_app_with};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client of `GET /run-code/ws`: every frame it got, with when.
struct Client {
    socket: Socket,
    frames: Vec<(Instant, Value)>,
    close: Option<(u16, String)>,
}

impl Client {
    async fn connect(app: &TestApp, path: &str) -> Client {
        let url = app.url(path).replacen("http", "ws", 1);
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects");
        Client {
            socket,
            frames: Vec::new(),
            close: None,
        }
    }

    async fn open(app: &TestApp, request: Value) -> Client {
        let mut client = Client::connect(app, "/run-code/ws").await;
        client.send(request).await;
        client
    }

    async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("sends");
    }

    /// Reads one frame (within 30 s); `None` once closed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let got = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("a frame within 30 s");
            match got {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("a JSON frame");
                    self.frames.push((Instant::now(), value.clone()));
                    return Some(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads until the stdout frames so far hold `text`.
    async fn until_stdout(&mut self, text: &str) {
        while !self.stdout().contains(text) {
            let frame = self.next().await;
            assert!(frame.is_some(), "closed before `{text}`: {:?}", self.frames);
            assert!(
                frame.unwrap().get("type").is_some(),
                "the answer came before `{text}`: {:?}",
                self.frames
            );
        }
    }

    /// Reads to the end: the answer (the last frame) and the close.
    async fn answer(&mut self) -> Value {
        while self.next().await.is_some() {}
        self.frames.last().expect("frames").1.clone()
    }

    fn stdout(&self) -> String {
        self.frames
            .iter()
            .filter(|(_, f)| f["type"] == "stdout" && f["stage"] == "run")
            .map(|(_, f)| f["data"].as_str().unwrap())
            .collect()
    }

    fn types(&self) -> Vec<String> {
        self.frames
            .iter()
            .map(|(_, f)| match f["type"].as_str() {
                Some("stage") => format!(
                    "{}:{}",
                    f["stage"].as_str().unwrap(),
                    f["event"].as_str().unwrap()
                ),
                Some(kind) => kind.to_string(),
                None => "answer".to_string(),
            })
            .collect()
    }
}

fn python(code: &str) -> Value {
    json!({"language": "python", "code": code})
}

const GREET: &str = "name = input('name? ')\nprint('hello', name)\nage = int(input('age? '))\nprint('in ten years', age + 10)\n";

#[tokio::test]
async fn an_input_program_is_answered_line_by_line_and_ends_with_the_run_codes_answer() {
    let app = spawn_app().await;
    let mut client = Client::open(&app, python(GREET)).await;
    client.until_stdout("name? ").await;
    client.send(json!({"type": "stdin", "data": "Ada\n"})).await;
    client.until_stdout("hello Ada\n").await;
    client.until_stdout("age? ").await;
    // Bytes, as base64: "36\n".
    client
        .send(json!({"type": "stdin", "base64": "MzYK"}))
        .await;
    let answer = client.answer().await;
    assert_eq!(client.close, Some((1000, "done".into())));
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "name? hello Ada\nage? in ten years 46\n");
    assert_eq!(
        answer["stdout"],
        client.stdout(),
        "the frames hold what the answer holds"
    );
    assert_eq!(answer["language"], "python");
    assert!(
        answer["cpu_time_ms"].is_u64() && answer["memory_peak_bytes"].is_u64(),
        "{answer}"
    );
    assert_eq!(client.types()[0], "run:started");
    app.assert_no_containers_within(Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn output_arrives_while_the_program_still_runs_in_a_pooled_sandbox() {
    let app = spawn_app_with(|config| pooled(config, 1)).await;
    // The pool has its sandbox ready.
    let ready = Instant::now();
    while app.get("/ready").await.1["pool"]["python"] != 1 {
        assert!(ready.elapsed() < Duration::from_secs(30), "the pool fills");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')\n";
    let mut client = Client::open(&app, python(code)).await;
    client.until_stdout("first\n").await;
    let first = Instant::now();
    assert!(!client.stdout().contains("second"));
    let answer = client.answer().await;
    let ended = client.frames.last().unwrap().0;
    assert_eq!(answer["stdout"], "first\nsecond\n", "{answer}");
    assert!(
        ended - first >= Duration::from_millis(800),
        "the first line came {:?} before the end: not while the program slept",
        ended - first
    );
    // A pooled (pre-started) sandbox answers prompts too.
    let ready = Instant::now();
    while app.get("/ready").await.1["pool"]["python"] != 1 {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "the pool refills"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = Client::open(&app, python(GREET)).await;
    client.until_stdout("name? ").await;
    client.send(json!({"type": "stdin", "data": "Lin\n"})).await;
    client.until_stdout("age? ").await;
    client.send(json!({"type": "stdin", "data": "1\n"})).await;
    let answer = client.answer().await;
    assert_eq!(
        answer["stdout"], "name? hello Lin\nage? in ten years 11\n",
        "{answer}"
    );
    // The pool is refilling: its shutdown takes what it is creating.
    app.stop().await;
}

#[tokio::test]
async fn signals_reach_the_program_and_stdin_can_be_closed() {
    let app = spawn_app().await;
    // Short sleeps: a SIGINT that lands between the `print` and the start
    // of one long `time.sleep` (the program preempted there, as a loaded
    // machine does) is only acted on when that sleep ends (CPython checks
    // its signals between bytecodes; the sleep it has not begun is not
    // interrupted), so one long sleep would outlast the wall-time limit.
    let waits = "import sys, time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n";
    for (signal, status, exit, stderr) in [
        ("SIGINT", "runtime_error", 130, "KeyboardInterrupt"),
        ("SIGTERM", "runtime_error", 143, ""),
        ("SIGKILL", "runtime_error", 137, ""),
    ] {
        let mut client = Client::open(&app, python(waits)).await;
        client.until_stdout("ready").await;
        client
            .send(json!({"type": "signal", "signal": signal}))
            .await;
        let answer = client.answer().await;
        assert_eq!(answer["status"], status, "{signal}: {answer}");
        assert!(
            answer["duration_ms"].as_u64().unwrap() < 10_000,
            "{signal}: {answer}"
        );
        assert!(
            answer["stderr"].as_str().unwrap().contains(stderr),
            "{signal}: {answer}"
        );
        if signal != "SIGINT" {
            assert_eq!(answer["exit_code"], exit, "{signal}: {answer}");
            assert_eq!(answer["signal"], signal, "{signal}: {answer}");
        }
    }
    // A signal after the end of stdin still reaches the program.
    let mut client = Client::open(&app, python(waits)).await;
    client.until_stdout("ready").await;
    client.send(json!({"type": "close_stdin"})).await;
    client
        .send(json!({"type": "stdin", "data": "after the end\n"}))
        .await;
    client
        .send(json!({"type": "signal", "signal": "SIGKILL"}))
        .await;
    let answer = client.answer().await;
    assert_eq!(answer["signal"], "SIGKILL", "{answer}");
    assert!(answer["duration_ms"].as_u64().unwrap() < 10_000, "{answer}");
    let reads_all = "import sys\ndata = sys.stdin.read()\nprint(len(data), repr(data[-3:]))\n";
    let mut client = Client::open(
        &app,
        json!({"language": "python", "code": reads_all, "stdin": "a"}),
    )
    .await;
    client.send(json!({"type": "stdin", "data": "bc"})).await;
    client
        .socket
        .send(Message::binary(b"\x00de".to_vec()))
        .await
        .unwrap();
    client.send(json!({"type": "close_stdin"})).await;
    let answer = client.answer().await;
    assert_eq!(answer["stdout"], "6 '\\x00de'\n", "{answer}");
}

#[tokio::test]
async fn every_limit_holds_across_frames_and_the_wall_clock_counts_the_wait_for_stdin() {
    let app = spawn_app().await;
    let waits = json!({"language": "python", "code": "print('?', flush=True)\ninput()\n", "timeout_ms": 1500});
    let began = Instant::now();
    let mut client = Client::open(&app, waits).await;
    let answer = client.answer().await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["limit"], "wall_time", "{answer}");
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );

    let floods = "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n";
    let mut client = Client::open(&app, python(floods)).await;
    let answer = client.answer().await;
    assert_eq!(answer["status"], "output_limit", "{answer}");
    assert_eq!(answer["truncated"], true);
    let streamed = client.stdout();
    assert_eq!(
        streamed,
        answer["stdout"].as_str().unwrap(),
        "the cap counts across frames"
    );

    let spins = json!({"language": "python", "code": "while True: pass\n", "cpu_time_ms": 500});
    let mut client = Client::open(&app, spins).await;
    let answer = client.answer().await;
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert_eq!(answer["limit"], "cpu_time", "{answer}");
}

#[tokio::test]
async fn a_compiled_program_says_its_stages_and_answers_its_prompts() {
    let app = crate::helpers::spawn_catalogue_app().await;
    let code = "#include <stdio.h>\nint main(void) {\n  char name[64];\n  printf(\"name? \");\n  fflush(stdout);\n  if (scanf(\"%63s\", name) != 1) return 2;\n  printf(\"hello %s\\n\", name);\n  return 0;\n}\n";
    let mut client = Client::open(&app, json!({"language": "c", "code": code})).await;
    client.until_stdout("name? ").await;
    client
        .send(json!({"type": "stdin", "data": "Grace\n"}))
        .await;
    let answer = client.answer().await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "name? hello Grace\n");
    let types = client.types();
    assert_eq!(
        &types[..3],
        ["compile:started", "compile:ended", "run:started"],
        "{types:?}"
    );
    let ended = &client.frames[1].1;
    assert_eq!(ended["result"]["status"], "ok", "{ended}");
    assert_eq!(answer["compile"]["status"], "ok");
}

#[tokio::test]
async fn a_client_that_goes_away_ends_its_run_and_its_sandbox_is_removed_within_a_second() {
    let app = spawn_app().await;
    let mut client = Client::open(
        &app,
        python("import time\nprint('up', flush=True)\ntime.sleep(60)\n"),
    )
    .await;
    client.until_stdout("up").await;
    assert!(!app.containers().await.is_empty());
    drop(client);
    app.assert_no_containers_within(Duration::from_secs(1))
        .await;
    app.assert_no_containers_settled(Duration::from_secs(5))
        .await;
}

/// The close a first frame (or the frames after) gets.
/// With frames after a first that starts a run, they go once the program
/// said `up` (a run ended while its container is being created would get
/// the container a moment later, after the test).
async fn refused(app: &TestApp, frames: Vec<Message>) -> (Option<(u16, String)>, Value) {
    let mut client = Client::connect(app, "/run-code/ws").await;
    let more = frames.len() > 1;
    for (i, frame) in frames.into_iter().enumerate() {
        let _ = client.socket.send(frame).await;
        if i == 0 && more {
            client.until_stdout("up").await;
        }
    }
    let answer = client.answer().await;
    (client.close, answer)
}

/// A program that says it is up, then waits for a line.
const UP_THEN_INPUT: &str = "print('up', flush=True)\ninput()\n";

#[tokio::test]
async fn every_refusal_is_a_close_code_with_the_error_body_before_it() {
    let app = spawn_app_with(|config| {
        config.streams.client_max_open = 1;
        config.streams.first_frame_timeout_ms = 300;
        config.streams.max_frame_bytes = 4096;
        config.requests.max_stdin_bytes = 10;
    })
    .await;
    let text = |v: &str| Message::text(v.to_string());
    let cases: Vec<(Vec<Message>, u16, &str)> = vec![
        (vec![text("not json")], 4400, "malformed_json"),
        (
            vec![text(r#"{"language":"cobol","code":"x"}"#)],
            4400,
            "unknown_language",
        ),
        (
            vec![text(r#"{"language":"python","code":"x","colour":1}"#)],
            4400,
            "unknown_field",
        ),
        (
            vec![text(
                r#"{"language":"python","code":"x","tests":[{"stdin":""}]}"#,
            )],
            4400,
            "invalid_field",
        ),
        (
            vec![Message::binary(b"{}".to_vec())],
            4400,
            "malformed_frame",
        ),
        (vec![], 4408, "first_frame_timeout"),
        (
            vec![
                text(&python(UP_THEN_INPUT).to_string()),
                text(r#"{"type":"dance"}"#),
            ],
            4400,
            "malformed_frame",
        ),
        (
            vec![
                text(&python(UP_THEN_INPUT).to_string()),
                text(r#"{"type":"signal","signal":"SIGSEGV"}"#),
            ],
            4400,
            "malformed_frame",
        ),
        (
            vec![
                text(&python(UP_THEN_INPUT).to_string()),
                text(r#"{"type":"stdin","data":"12345678901"}"#),
            ],
            4413,
            "field_too_large",
        ),
        // The request's own stdin counts too.
        (
            vec![
                text(
                    r#"{"language":"python","code":"print('up', flush=True)\ninput()","stdin":"12345678"}"#,
                ),
                text(r#"{"type":"stdin","data":"123"}"#),
            ],
            4413,
            "field_too_large",
        ),
    ];
    for (frames, code, reason) in cases {
        let (close, body) = refused(&app, frames).await;
        assert_eq!(close, Some((code, reason.to_string())), "{body}");
        assert_eq!(body["code"], reason, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // A frame past the cap: the WebSocket layer's own refusal.
    let mut client = Client::connect(&app, "/run-code/ws").await;
    let _ = client.socket.send(Message::text("x".repeat(8192))).await;
    while client.next().await.is_some() {}
    assert_eq!(client.close.map(|c| c.0), Some(u16::from(CloseCode::Size)));

    // One open per client: the second is refused, counted, and freed after.
    let mut first = Client::open(&app, python("print('up', flush=True)\ninput()\n")).await;
    first.until_stdout("up").await;
    let (close, body) = refused(&app, vec![text(&python("print(1)").to_string())]).await;
    assert_eq!(close, Some((4429, "too_many_streams".into())), "{body}");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("code_runner_streams_refused_total{reason=\"client\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("code_runner_streams_open 1"), "{metrics}");
    first.send(json!({"type": "close_stdin"})).await;
    first.answer().await;
    let mut again = Client::open(&app, python("print(1)")).await;
    assert_eq!(again.answer().await["stdout"], "1\n");
    // Refused sockets ended runs while they started.
    app.assert_no_containers_settled(Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn keys_rates_and_fair_shares_hold_for_streamed_runs() {
    let app = spawn_app_with(|config| {
        config.front_door.api_keys = vec![code_runner::config::Secret("the-key".into())];
        config.front_door.rate_limit_per_minute = 60;
        config.front_door.rate_limit_burst = 1;
    })
    .await;
    let (close, body) = refused(&app, vec![Message::text(python("print(1)").to_string())]).await;
    assert_eq!(close, Some((4401, "unauthorized".into())), "{body}");
    let mut with_key = python("print(1)");
    with_key["api_key"] = json!("the-key");
    let mut client = Client::open(&app, with_key.clone()).await;
    assert_eq!(client.answer().await["stdout"], "1\n");
    let (close, body) = refused(&app, vec![Message::text(with_key.to_string())]).await;
    assert_eq!(close, Some((4429, "rate_limited".into())), "{body}");
}

#[tokio::test]
async fn server_sent_events_stream_the_same_events_and_end_with_the_answer() {
    let app = spawn_app().await;
    let code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')\n";
    let response = app
        .client
        .post(app.url("/run-code"))
        .header("accept", "text/event-stream")
        .json(&python(code))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut first_at = None;
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if first_at.is_none() && text.contains("first") {
            first_at = Some(Instant::now());
        }
    }
    let ended = Instant::now();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))?
                .trim()
                .to_string();
            let data = block.lines().find_map(|l| l.strip_prefix("data:"))?.trim();
            Some((name, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"stage"), "{text}");
    assert_eq!(names.last(), Some(&"result"), "{text}");
    assert!(names.contains(&"stdout"), "{text}");
    assert_eq!(events.last().unwrap().1["stdout"], "first\nsecond\n");
    assert!(
        ended - first_at.unwrap() >= Duration::from_millis(800),
        "streamed before the end"
    );
    // The request's stdin, then its end: a program reading to the end is
    // not held to the wall-time limit.
    let began = Instant::now();
    let body = json!({"language": "python", "code": "import sys\nprint(len(sys.stdin.read()))", "stdin": "abc"});
    let text = app
        .client
        .post(app.url("/run-code"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#""stdout":"3\n""#), "{text}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    // A refusal before the run is the plain JSON error.
    let (status, body) = {
        let r = app
            .client
            .post(app.url("/run-code"))
            .header("accept", "text/event-stream")
            .json(&json!({"language": "cobol", "code": "x"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unknown_language"))
    );
}

#[tokio::test]
async fn pistons_connect_speaks_pistons_protocol_to_a_client_written_from_its_docs() {
    let app = spawn_app().await;
    let out = python_client("piston_connect.py", &[&app.url("")]).await;
    assert!(out.contains("all checks passed"), "{out}");
    // Refused sockets ended runs while they started.
    app.assert_no_containers_settled(Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn shutdown_lets_an_open_streamed_run_finish_within_the_grace_period() {
    let mut app = spawn_app().await;
    let code = "print('up', flush=True)\nprint('got', input())\n";
    let mut client = Client::open(&app, python(code)).await;
    client.until_stdout("up").await;
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client
        .send(json!({"type": "stdin", "data": "late\n"}))
        .await;
    let answer = client.answer().await;
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["stdout"], "up\ngot late\n");
    app.wait_stopped(Duration::from_secs(15)).await;
    assert!(app.containers().await.is_empty(), "containers left");
}

#[tokio::test]
async fn a_browsers_socket_from_another_origin_is_refused_before_the_upgrade() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let url = app.url("/run-code/ws").replacen("http", "ws", 1);
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://elsewhere.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = response.body().as_deref().expect("a body");
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(body["code"], "forbidden", "{body}");
        }
        other => panic!("not refused: {other:?}"),
    }
    // The service's own page's origin is let in.
    let mut request = url.as_str().into_client_request().unwrap();
    let own = format!("http://{}", app.addr);
    request.headers_mut().insert("origin", own.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = Message::text(python("print(1)").to_string());
    socket.send(first).await.unwrap();
    let mut client = Client {
        socket,
        frames: vec![],
        close: None,
    };
    assert_eq!(client.answer().await["stdout"], "1\n");
}
