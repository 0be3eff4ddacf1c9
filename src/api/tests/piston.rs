//! Piston's v2 API over the runner double: its README's examples, every
//! refusal in Piston's order with Piston's words, what a request becomes,
//! and every status a stage can have.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Double, Reply, double, hello, ran, send, stage};
use crate::nonempty::NonEmpty;
use crate::outcome::{Exit, Signal};
use crate::outcome::{LimitHit, Outcome, StreamKind};
use crate::runner::RunError;

async fn execute(runner: &Arc<Double>, body: &Value) -> Reply {
    let request = warp::test::request()
        .method("POST")
        .path("/api/v2/execute")
        .header("content-type", "application/json")
        .body(body.to_string());
    send(runner, request).await
}

/// The README's request (readme.md, "Execute Endpoint"), verbatim.
fn readme_request() -> Value {
    json!({
        "language": "js",
        "version": "15.10.0",
        "files": [{"name": "my_cool_code.js", "content": "console.log(process.argv)"}],
        "stdin": "",
        "args": ["1", "2", "3"],
        "compile_timeout": 10000,
        "run_timeout": 3000,
        "compile_cpu_time": 10000,
        "run_cpu_time": 3000,
        "compile_memory_limit": -1,
        "run_memory_limit": -1
    })
}

fn python(code: &str) -> Value {
    json!({"language": "python", "version": "*", "files": [{"content": code}]})
}

#[tokio::test]
async fn the_readme_error_example_and_its_request_where_that_version_is_not_served() {
    let runner = hello();
    let reply = execute(
        &runner,
        &json!({"language": "html", "version": "5.0.0", "files": [{"content": "x"}]}),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body),
        (400, json!({"message": "html-5.0.0 runtime is unknown"}))
    );
    // Node 15.10.0 is not served here (javascript is not either, in this
    // registry), so the README's request gets what Piston answers then.
    let reply = execute(&runner, &readme_request()).await;
    assert_eq!(
        (reply.status, reply.body),
        (400, json!({"message": "js-15.10.0 runtime is unknown"}))
    );
    assert!(runner.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn runtimes_lists_every_version_newest_first_with_full_semver_and_aliases() {
    let runner = hello();
    for path in [
        "/api/v2/runtimes",
        "/api/v2/runtimes/",
        "/api/v2/piston/runtimes",
    ] {
        let reply = send(&runner, warp::test::request().method("GET").path(path)).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.body,
            json!([
                {"language": "c", "version": "14.0.0", "aliases": ["gcc"]},
                {"language": "python", "version": "3.13.0", "aliases": ["py", "python3"]},
                {"language": "python", "version": "3.11.0", "aliases": ["py", "python3"]},
            ]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_refusal_of_the_request_shape_in_pistons_order_with_pistons_message() {
    let file = json!([{"content": "print(1)"}]);
    let cases = [
        (json!({}), "language is required as a string"),
        (
            json!({"language": 3, "version": "*"}),
            "language is required as a string",
        ),
        (json!({"language": ""}), "language is required as a string"),
        (
            json!({"language": "python"}),
            "version is required as a string",
        ),
        (
            json!({"language": "python", "version": ""}),
            "version is required as a string",
        ),
        (
            json!({"language": "python", "version": "*", "files": {}}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"name": "a"}]}),
            "files[1].content is required as a string",
        ),
        (
            json!({"language": "cobol", "version": "*", "files": file}),
            "cobol-* runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "latest", "files": file}),
            "python-latest runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "4", "files": file}),
            "python-4 runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "*", "files": []}),
            "files must include at least one utf8 encoded file",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "eA==", "encoding": "base64"}]}),
            "files must include at least one utf8 encoded file",
        ),
    ];
    assert_refusals(&cases).await;
}

/// `{"language": "python", "version": "3"}`, one file, and `extra`'s keys.
fn with(extra: Value) -> Value {
    let mut body =
        json!({"language": "python", "version": "3", "files": [{"content": "print(1)"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn every_refusal_of_a_limit_or_value_in_pistons_order_with_pistons_message() {
    let cases = [
        (
            with(json!({"run_timeout": "3000"})),
            "If specified, run_timeout must be a number",
        ),
        (
            with(json!({"run_timeout": 10001})),
            "run_timeout cannot exceed the configured limit of 10000",
        ),
        (
            with(json!({"run_timeout": -5})),
            "run_timeout must be non-negative",
        ),
        (
            with(json!({"run_cpu_time": 10001})),
            "run_cpu_time cannot exceed the configured limit of 10000",
        ),
        (
            with(json!({"run_memory_limit": 134_217_729})),
            "run_memory_limit cannot exceed the configured limit of 134217728",
        ),
        (
            with(json!({"run_memory_limit": 1000})),
            "run_memory_limit must be at least 16777216 (16 MiB)",
        ),
        // Piston checks memory before time whatever the order sent.
        (
            with(json!({"run_timeout": -1, "run_memory_limit": 134_217_729})),
            "run_memory_limit cannot exceed the configured limit of 134217728",
        ),
        (
            with(json!({"args": [1]})),
            "args must be an array of strings",
        ),
        (
            with(json!({"args": "a b"})),
            "args must be an array of strings",
        ),
        (with(json!({"stdin": 5})), "stdin must be a string"),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"content": "%%", "encoding": "base64"}]}),
            "files[1].content is not valid base64: Invalid symbol 37, offset 0.",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"content": "abc", "encoding": "hex"}]}),
            "files[1].content is not valid hex: Odd number of digits",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"name": "../etc/passwd", "content": "x"}]}),
            "files has a file named \"../etc/passwd\", which has a `.` or `..` component",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"name": "-o.py", "content": "x"}]}),
            "files has a file named \"-o.py\", which has a component starting with `-`, which a compiler reads as an option (`-`) or an argument file (`@`)",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}, {"name": "a\u{202e}b", "content": "x"}]}),
            "files has a file named \"a\\u{202e}b\", which holds U+202E, which changes how the text around it is shown (a bidirectional control, or a line or paragraph separator)",
        ),
        (
            with(json!({"stdin": "x".repeat(100)})),
            // Piston's newline counts.
            "stdin is 101 bytes, more than the limit of 100 bytes",
        ),
    ];
    assert_refusals(&cases).await;
}

/// Each body of `cases` is a 400 with its message in Piston's shape, and
/// none runs anything.
async fn assert_refusals(cases: &[(Value, &str)]) {
    let runner = hello();
    for (body, message) in cases {
        let reply = execute(&runner, body).await;
        assert_eq!(
            (reply.status, reply.body),
            (400, json!({ "message": message })),
            "{body}"
        );
    }
    assert!(runner.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn pistons_refusals_of_the_transport_are_415_404_and_400() {
    let runner = hello();
    let reply = send(
        &runner,
        warp::test::request()
            .method("POST")
            .path("/api/v2/execute")
            .body(python("print(1)").to_string()),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body),
        (
            415,
            json!({"message": "requests must be of type application/json"})
        )
    );
    for (method, path) in [
        ("GET", "/api/v2/execute"),
        ("GET", "/api/v2/packages"),
        ("POST", "/api/v2/runtimes"),
    ] {
        let request = warp::test::request()
            .method(method)
            .path(path)
            .header("content-type", "application/json")
            .body("{}");
        let reply = send(&runner, request).await;
        assert_eq!(
            (reply.status, reply.body),
            (404, json!({"message": "Not Found"})),
            "{method} {path}"
        );
    }
    let request = warp::test::request()
        .method("POST")
        .path("/api/v2/execute")
        .header("content-type", "application/json; charset=utf-8")
        .body("{\"language\":");
    let reply = send(&runner, request).await;
    assert_eq!(reply.status, 400);
    let message = reply.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("the body is not valid JSON"),
        "{message}"
    );
    // Past the body limit (4096 bytes here): 413, as on /run-code.
    let reply = execute(&runner, &python(&"#".repeat(5000))).await;
    assert_eq!(reply.status, 413);
    let message = reply.body["message"].as_str().unwrap();
    assert!(message.contains("4096"), "{message}");
    assert_eq!(reply.body.as_object().unwrap().len(), 1);
    assert!(runner.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_request_becomes_the_job_piston_would_run() {
    let runner = hello();
    let body = json!({
        "language": "py",
        "version": "3.11",
        "files": [
            {"name": "data.bin", "content": "AAEC", "encoding": "base64"},
            {"name": "prog.py", "content": "print(input())"},
            {"content": "6869", "encoding": "hex"},
        ],
        "stdin": "abc",
        "args": ["x", "y"],
        "run_timeout": 3000,
        "run_cpu_time": 2500.5,
        "run_memory_limit": 67_108_865,
        "compile_timeout": 999_999,
        "compile_memory_limit": -1,
        "unknown_key": true,
    });
    let reply = execute(&runner, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let job = runner.jobs.lock().unwrap()[0].clone();
    assert_eq!(job.language.label(), "python-3.11");
    // The first utf8 file runs; the others keep their names, or get
    // Piston's `file<i>.code`.
    assert_eq!(job.files.main.content, b"print(input())");
    let extra: Vec<(&str, &[u8])> = job
        .files
        .extra
        .iter()
        .map(|f| (f.name.as_str(), f.content.as_slice()))
        .collect();
    assert_eq!(
        extra,
        [("data.bin", &[0u8, 1, 2][..]), ("file2.code", b"hi")]
    );
    // Piston ends stdin with a newline.
    assert_eq!(job.inputs.first().stdin, b"abc\n");
    assert_eq!(job.inputs.first().args, ["x", "y"]);
    assert_eq!(job.limits.run.wall_time_ms, 3000);
    assert_eq!(job.limits.run.cpu_time_ms, 2501);
    // Bytes become whole MiB, rounded up.
    assert_eq!(job.limits.run.memory_mb, 65);
    // python does not compile: compile limits are not its business.
    assert_eq!(job.limits.compile, None);

    let reply = execute(&runner, &python("print(1)")).await;
    assert_eq!(reply.status, 200);
    let jobs = runner.jobs.lock().unwrap();
    let job = &jobs[1];
    assert_eq!(job.language.label(), "python-3.13");
    assert_eq!(job.inputs.first().stdin, b"\n");
    assert_eq!(job.limits.run.wall_time_ms, 10_000);
}

fn stage_of(answer: &Value) -> Value {
    let run = &answer["run"];
    json!([run["status"], run["message"], run["code"], run["signal"]])
}

#[tokio::test]
async fn each_outcome_has_pistons_status_message_code_and_signal() {
    let cases = [
        (Some(Exit::Code(0)), None, json!([null, null, 0, null])),
        (
            Some(Exit::Code(3)),
            None,
            json!(["RE", "Exited with error status 3", 3, null]),
        ),
        (
            Some(Exit::Signal(Signal(11))),
            None,
            json!(["SG", "Caught fatal signal 11", null, "SIGSEGV"]),
        ),
        (
            None,
            Some(LimitHit::WallTime),
            json!(["TO", "Time limit exceeded (wall clock)", null, "SIGKILL"]),
        ),
        (
            None,
            Some(LimitHit::CpuTime),
            json!(["TO", "Time limit exceeded", null, "SIGKILL"]),
        ),
        (
            Some(Exit::Signal(Signal(9))),
            Some(LimitHit::Memory),
            json!(["SG", "Memory limit exceeded", null, "SIGKILL"]),
        ),
        (
            None,
            Some(LimitHit::Output(StreamKind::Stdout)),
            json!(["OL", "stdout length exceeded", null, "SIGKILL"]),
        ),
        (
            None,
            Some(LimitHit::Output(StreamKind::Stderr)),
            json!(["EL", "stderr length exceeded", null, "SIGKILL"]),
        ),
        (
            None,
            None,
            json!(["XX", "the sandbox ended without an exit status", null, null]),
        ),
    ];
    for (exit, limit, expected) in cases {
        let runner = double(move |_| Ok(ran(stage(exit, limit, "out", "err"))));
        let reply = execute(&runner, &python("x")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(stage_of(&reply.body), expected, "{exit:?} {limit:?}");
    }
}

#[tokio::test]
async fn a_stage_has_pistons_ten_keys_in_its_order_and_an_interpreted_language_no_compile() {
    let runner = double(|_| Ok(ran(stage(Some(Exit::Code(0)), None, "hi\n", "warn\n"))));
    let request = warp::test::request()
        .method("POST")
        .path("/api/v2/execute")
        .header("content-type", "application/json")
        .body(python("print('hi')").to_string());
    let reply = request
        .reply(&super::routes(super::api(
            &runner,
            super::judge0(&runner, None),
        )))
        .await;
    let text = std::str::from_utf8(reply.body()).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"{"run":{"signal":null,"stdout":"hi\n","stderr":"warn\n","code":0,"#,
            r#""output":"hi\nwarn\n","memory":9437184,"message":null,"status":null,"#,
            r#""cpu_time":21.4,"wall_time":93.0},"language":"python","version":"3.13.0"}"#
        )
    );
}

#[tokio::test]
async fn a_failed_compile_is_both_compile_and_run_as_piston_gives_it() {
    let runner = double(|_| {
        Ok(Outcome::CompileFailed {
            compile: stage(Some(Exit::Code(1)), None, "", "main.c:1: error\n"),
        })
    });
    let body = json!({"language": "gcc", "version": "*", "files": [{"content": "int"}]});
    let reply = execute(&runner, &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["compile"], reply.body["run"]);
    assert_eq!(reply.body["compile"]["status"], "RE");
    assert_eq!(reply.body["compile"]["stderr"], "main.c:1: error\n");
    assert_eq!(reply.body["language"], "c");

    let runner = double(|_| {
        Ok(Outcome::Ran {
            compile: Some(stage(Some(Exit::Code(0)), None, "", "")),
            runs: NonEmpty::one(stage(Some(Exit::Code(0)), None, "ok\n", "")),
        })
    });
    let body = json!({"language": "c", "version": "*", "files": [{"content": "int"}],
        "compile_timeout": 5000, "compile_memory_limit": 33_554_432});
    let reply = execute(&runner, &body).await;
    assert_eq!(reply.body["compile"]["code"], 0);
    assert_eq!(reply.body["run"]["stdout"], "ok\n");
    let jobs = runner.jobs.lock().unwrap();
    let compile = jobs[0].limits.compile.as_ref().unwrap();
    assert_eq!((compile.wall_time_ms, compile.memory_mb), (5000, 32));
}

#[tokio::test]
async fn the_services_trouble_is_429_503_or_500_with_a_message() {
    type Fault = fn() -> RunError;
    let cases: [(Fault, u16, Option<&str>); 3] = [
        (|| RunError::Busy, 429, Some("1")),
        (
            || RunError::DockerUnavailable("connection refused".into()),
            503,
            None,
        ),
        (|| RunError::Internal("boom".into()), 500, None),
    ];
    for (error, status, retry_after) in cases {
        let runner = double(move |_| Err(error()));
        let reply = execute(&runner, &python("x")).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(!reply.body["message"].as_str().unwrap().is_empty());
        assert_eq!(
            reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after
        );
    }
}

#[tokio::test]
async fn file_names_with_spaces_quotes_and_accents_are_written_as_named() {
    let runner = hello();
    let names = ["input data/l'été 2024.txt", " $x; *"];
    let mut files = vec![json!({"name": "main.py", "content": "print(1)"})];
    files.extend(names.iter().map(|n| json!({"name": n, "content": "x"})));
    let body = json!({"language": "python", "version": "*", "files": files});
    let reply = execute(&runner, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let job = runner.jobs.lock().unwrap()[0].clone();
    let written: Vec<&str> = job.files.extra.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(written, names);
    assert_eq!(job.streams, crate::job::Streams::default(), "stderr apart");
}
