//! The fast tier: the HTTP contract (every refusal and its JSON, headers,
//! wire shapes, what reaches the runner) through warp's test client, over a
//! runner double. No Docker: what running code does is tested against the
//! real engine in `tests/`.

use crate::judging::catalogue::Catalogue;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::gate::Gate;
use super::{Api, routes};
use crate::config::{Config, FrontDoor, Judge0Config};
use crate::metrics::Metrics;
use crate::nonempty::NonEmpty;
use crate::outcome::{
    Exit, LimitHit, Outcome, Phase, PoolUse, Signal, StageResult, StreamKind, Timing, Usage,
};

use crate::config::RequestBounds;
use crate::job::{Job, Stage, Streams};
use crate::judge0::Judge0;
use crate::judge0::store::{Store, Worker};
use crate::language::{Language, Origin, Registry};
use crate::limits::DefaultLimits;
use crate::live::Live;
use crate::runner::{Interaction, Readiness, Report, RunError, Runner};

mod docs;
mod judge0;
mod judging;
mod piston;
mod streaming;

type Answer = Box<dyn Fn(&Job) -> Result<Outcome, RunError> + Send + Sync>;

/// A runner that answers what it is told and remembers the jobs it got.
struct Double {
    registry: Arc<Registry>,
    answer: Answer,
    jobs: Mutex<Vec<Job>>,
    readiness: Readiness,
}

impl Runner for Double {
    fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A job with several inputs (a batch) whose answer has one run gets
    /// that run once per input, with the input's stdin as its output (so
    /// that verdicts can be told apart).
    async fn run(&self, job: Job) -> Result<Report, RunError> {
        self.jobs.lock().unwrap().push(job.clone());
        let outcome = match (self.answer)(&job)? {
            Outcome::Ran { compile, runs } if job.inputs.len() > 1 && runs.len() == 1 => {
                let each = job.inputs.iter().map(|input| StageResult {
                    stdout: String::from_utf8_lossy(&input.stdin).into_owned(),
                    ..runs.first().clone()
                });
                Outcome::Ran {
                    compile,
                    runs: NonEmpty::from_vec(each.collect()).expect("inputs"),
                }
            }
            outcome => outcome,
        };
        Ok(Report {
            language: job.language,
            limits: job.limits,
            outcome,
            timing: Timing {
                pool: PoolUse::Hit,
                phases: vec![(Phase::Run, Duration::from_millis(30))],
                docker: Duration::from_millis(31),
            },
        })
    }

    /// The run's answer, its output said as one event per stream first.
    async fn stream(&self, job: Job, live: Live) -> Result<Report, RunError> {
        let report = self.run(job).await?;
        if let Outcome::Ran { compile, runs } = &report.outcome {
            if let Some(compile) = compile {
                live.started(Stage::Compile);
                live.compiled(compile);
            }
            live.started(Stage::Run);
            let run = live.stage(Stage::Run);
            run.sink
                .output(StreamKind::Stdout, runs.first().stdout.as_bytes());
            run.sink
                .output(StreamKind::Stderr, runs.first().stderr.as_bytes());
        }
        Ok(report)
    }

    /// Each as [`Double::run`] runs it, one after the other.
    async fn interact(&self, solution: Job, interactor: Job) -> Result<Interaction, RunError> {
        let solution = self.run(solution).await?;
        let interactor = self.run(interactor).await?;
        Ok(match (&solution.outcome, &interactor.outcome) {
            (_, Outcome::CompileFailed { .. }) => Interaction::InteractorFailed(interactor),
            (Outcome::CompileFailed { .. }, _) => Interaction::SolutionFailed(solution),
            _ => Interaction::Ran {
                solution: Box::new(solution),
                interactor: Box::new(interactor),
            },
        })
    }

    async fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }
}

/// The shipped python (3.13), Python 3.11 and C.
fn registry() -> Arc<Registry> {
    let file = |name: &str, text: &str| {
        Arc::new(
            Language::parse(Origin::File(name.into()), text, &DefaultLimits::default()).unwrap(),
        )
    };
    let mut languages = Registry::builtin(&DefaultLimits::default())
        .unwrap()
        .languages()
        .to_vec();
    languages.push(file(
        "c.toml",
        include_str!("../../../languages/available/c.toml"),
    ));
    languages.push(file(
        "python-3.11.toml",
        include_str!("../../../languages/available/python-3.11.toml"),
    ));

    Arc::new(Registry::from_languages(languages).unwrap())
}

fn stage(exit: Option<Exit>, limit: Option<LimitHit>, stdout: &str, stderr: &str) -> StageResult {
    StageResult {
        exit,
        limit,
        stdout: stdout.into(),
        stderr: stderr.into(),
        output: format!("{stdout}{stderr}"),
        duration: Duration::from_millis(93),
        usage: Usage {
            cpu_time: Some(Duration::from_micros(21_400)),
            memory_peak: Some(9_437_184),
        },
        files: None,
    }
}

fn ran(run: StageResult) -> Outcome {
    Outcome::Ran {
        compile: None,
        runs: NonEmpty::one(run),
    }
}

fn double(
    answer: impl Fn(&Job) -> Result<Outcome, RunError> + Send + Sync + 'static,
) -> Arc<Double> {
    Arc::new(Double {
        registry: registry(),
        answer: Box::new(answer),
        jobs: Mutex::new(Vec::new()),
        readiness: Readiness {
            languages: vec!["c".into(), "python".into()],
            ..Readiness::default()
        },
    })
}

fn settings() -> Config {
    let mut config = Config::default();
    config.server.max_body_bytes = 4096;
    config.server.body_timeout_ms = 1000;
    config.requests = RequestBounds {
        max_code_bytes: 1000,
        max_files: 2,
        max_stdin_bytes: 100,
        max_args: 3,
        max_arg_bytes: 10,
        max_tests: 3,
        max_output_files: 4,
        max_output_bytes: 1024,
    };
    config
}

fn judge0_settings() -> Judge0Config {
    Judge0Config {
        max_queue: 5,
        // The fast tier is one client: it may fill the queue.
        client_max_queue: Some(5),
        max_batch: 3,
        callback_hosts: vec!["127.0.0.1:9".parse().unwrap()],
        callback_tries: 1,
        callback_timeout_ms: 100,
        wait_timeout_ms: 2000,
        keep_results_s: 3600,
        workers: 1,
        ..Judge0Config::default()
    }
}

/// Judge0's service over `runner`, storing in `store` (or nothing).
fn judge0(runner: &Arc<Double>, store: Option<Store>) -> Arc<Judge0<Double>> {
    Arc::new(Judge0::new(
        runner.clone(),
        store,
        judge0_settings(),
        settings().requests,
        Worker {
            instance: "test".into(),
            boot: "1".into(),
        },
    ))
}

/// The API over `runner` and `judge0`, with no keys and no rate limit.
fn api(runner: &Arc<Double>, judge0: Arc<Judge0<Double>>) -> Arc<Api<Double>> {
    api_with(runner, judge0, &FrontDoor::default())
}

/// The API over `runner` and `judge0`, behind the door of `front_door`.
fn api_with(
    runner: &Arc<Double>,
    judge0: Arc<Judge0<Double>>,
    front_door: &FrontDoor,
) -> Arc<Api<Double>> {
    Arc::new(Api::new(
        runner.clone(),
        judge0,
        Gate::new(front_door).unwrap(),
        Arc::new(Metrics::new()),
        Catalogue::default(),
        &settings(),
    ))
}

/// A reply: status, headers and JSON body.
struct Reply {
    status: u16,
    headers: warp::http::HeaderMap,
    body: Value,
}

async fn send(runner: &Arc<Double>, request: warp::test::RequestBuilder) -> Reply {
    let reply = request
        .reply(&routes(api(runner, judge0(runner, None))))
        .await;
    Reply {
        status: reply.status().as_u16(),
        headers: reply.headers().clone(),
        body: serde_json::from_slice(reply.body()).expect("a JSON body"),
    }
}

async fn post(runner: &Arc<Double>, body: &str) -> Reply {
    let request = warp::test::request()
        .method("POST")
        .path("/run-code")
        .header("content-type", "application/json")
        .body(body);
    send(runner, request).await
}

fn hello() -> Arc<Double> {
    double(|_| Ok(ran(stage(Some(Exit::Code(0)), None, "hi\n", ""))))
}

#[tokio::test]
async fn every_refusal_of_a_bad_request_has_its_status_code_and_field_and_runs_nothing() {
    let runner = hello();
    let big = "x".repeat(1001);
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (r#"{"language": "python", "code": "#.into(), 400, "malformed_json", None),
        ("".into(), 400, "malformed_json", None),
        ("   ".into(), 400, "malformed_json", None),
        ("not json".into(), 400, "malformed_json", None),
        (r#"{"language": 3, "code": "x"}"#.into(), 400, "invalid_type", None),
        (r#"{"language": "python", "code": "x", "args": "a"}"#.into(), 400, "invalid_type", None),
        (r#"{"language": "python", "code": "x", "timeout_ms": -1}"#.into(), 400, "invalid_type", None),
        (r#"{"language": "python", "code": "x", "timeout_ms": 1.5}"#.into(), 400, "invalid_type", None),
        (r#"["python", "print(1)"]"#.into(), 400, "invalid_type", None),
        ("null".into(), 400, "invalid_type", None),
        (r#"{"language": "python", "code": "x", "timeout": 5}"#.into(), 400, "unknown_field", Some("timeout")),
        (r#"{"language": "python"}"#.into(), 400, "invalid_field", Some("code")),
        (r#"{"code": "x"}"#.into(), 400, "invalid_field", Some("language")),
        (r#"{"language": "python", "code": ""}"#.into(), 400, "invalid_field", Some("code")),
        (r#"{"language": "", "code": "x"}"#.into(), 400, "invalid_field", Some("language")),
        (r#"{"language": "python", "code": "x", "timeout_ms": 0}"#.into(), 400, "invalid_field", Some("timeout_ms")),
        (r#"{"language": "python", "code": "x", "timeout_ms": 10001}"#.into(), 400, "invalid_field", Some("timeout_ms")),
        (r#"{"language": "python", "code": "x", "args": ["a\u0000b"]}"#.into(), 400, "invalid_field", Some("args")),
        (r#"{"language": "python", "code": "x", "files": [{"name": "../a", "content": ""}]}"#.into(), 400, "invalid_field", Some("files")),
        (r#"{"language": "python", "code": "x", "files": [{"name": "main.py", "content": ""}]}"#.into(), 400, "invalid_field", Some("files")),
        (r#"{"language": "python", "code": "x", "files": [{"name": "a"}]}"#.into(), 400, "invalid_field", Some("content")),
        (r#"{"language": "python", "code": "x", "version": "not a range"}"#.into(), 400, "invalid_field", Some("version")),
        (r#"{"language": "cobol", "code": "x"}"#.into(), 400, "unknown_language", None),
        (r#"{"language": "python", "code": "x", "version": "2"}"#.into(), 400, "unknown_version", None),
        (json!({"language": "python", "code": big}).to_string(), 413, "field_too_large", Some("code")),
        (json!({"language": "python", "code": "1", "stdin": big}).to_string(), 413, "field_too_large", Some("stdin")),
        (json!({"language": "python", "code": "1", "args": ["a", "b", "c", "d"]}).to_string(), 413, "field_too_large", Some("args")),
        (json!({"language": "python", "code": "1", "files": [{"name": "a", "content": ""}, {"name": "b", "content": ""}, {"name": "c", "content": ""}]}).to_string(), 413, "field_too_large", Some("files")),
        (json!({"language": "", "code": big}).to_string(), 413, "field_too_large", Some("code")),
        (r#"{"language": "python", "code": "x", "tests": []}"#.into(), 400, "invalid_field", Some("tests")),
        (r#"{"language": "python", "code": "x", "tests": [{}], "compare": "fuzzy"}"#.into(), 400, "invalid_field", Some("compare")),
        (r#"{"language": "python", "code": "x", "cpu_time_ms": 0}"#.into(), 400, "invalid_field", Some("cpu_time_ms")),
        (json!({"language": "python", "code": "x".repeat(5000)}).to_string(), 413, "body_too_large", None),
    ];
    for (body, status, code, field) in cases {
        let reply = post(&runner, &body).await;
        let shown = &body[..body.len().min(80)];
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (status, Some(code)),
            "{shown}: {}",
            reply.body
        );
        assert!(
            !reply.body["message"].as_str().unwrap().is_empty(),
            "{shown}"
        );
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field, "{shown}: {}", reply.body);
        }
    }
    assert!(
        runner.jobs.lock().unwrap().is_empty(),
        "a refused request reached the runner"
    );
}

#[tokio::test]
async fn an_unknown_language_lists_the_languages_and_an_unknown_version_the_versions() {
    let runner = hello();
    let reply = post(&runner, r#"{"language": "cobol", "code": "x"}"#).await;
    assert_eq!(reply.body["languages"], json!(["c", "python"]));
    assert!(reply.body["message"].as_str().unwrap().contains("python"));
    let reply = post(
        &runner,
        r#"{"language": "py", "code": "x", "version": ">=4"}"#,
    )
    .await;
    assert_eq!(reply.body["versions"], json!(["3.13", "3.11"]));
    // Without a version, the newest; with one, the newest in its range.
    post(&runner, r#"{"language": "python", "code": "x"}"#).await;
    post(
        &runner,
        r#"{"language": "py", "code": "x", "version": "<3.13"}"#,
    )
    .await;
    let jobs = runner.jobs.lock().unwrap();
    let labels: Vec<String> = jobs.iter().map(|j| j.language.label()).collect();
    assert_eq!(labels, ["python-3.13", "python-3.11"]);
}

#[tokio::test]
async fn the_readme_hello_example_gives_exactly_the_old_output() {
    let runner = double(|_| {
        Ok(ran(stage(
            Some(Exit::Code(0)),
            None,
            "Hello, from the container!\n",
            "",
        )))
    });
    let reply = post(
        &runner,
        r#"{"language": "python", "code": "print(\"Hello, from the container!\")"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"language": "python", "version": "3.13", "status": "ok", "exit_code": 0,
               "signal": null, "stdout": "Hello, from the container!\n", "stderr": "",
               "truncated": false, "duration_ms": 93, "cpu_time_ms": 21, "memory_peak_bytes": 9_437_184,
               "limit": null, "output": "Hello, from the container!\n"})
    );
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(reply.headers["x-code-runner-pool"], "hit");
    let timing = reply.headers["server-timing"].to_str().unwrap();
    assert!(
        timing.starts_with("run;dur=30.000, docker;dur=31.000, total;dur="),
        "{timing}"
    );
}

#[tokio::test]
async fn what_the_request_asks_reaches_the_runner_as_a_checked_job() {
    let runner = hello();
    let reply = post(
        &runner,
        r#"{"language": "gcc", "code": "int", "stdin": "in", "args": ["a b"], "timeout_ms": 1500,
            "files": [{"name": "util.c", "content": "u"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let jobs = runner.jobs.lock().unwrap();
    let job = &jobs[0];
    assert_eq!(job.language.name, "c");
    assert_eq!(job.files.main.name, "main.c");
    assert_eq!(job.files.main.content, b"int");
    assert_eq!(job.files.extra[0].name, "util.c");
    assert_eq!(
        (
            job.inputs.first().args.clone(),
            job.inputs.first().stdin.clone()
        ),
        (vec!["a b".to_string()], b"in".to_vec())
    );
    // The request lowers the wall time; everything else is the language's.
    assert_eq!(job.limits.run.wall_time_ms, 1500);
    assert_eq!(job.limits.run.memory_mb, job.language.limits.memory_mb);
    assert_eq!(job.limits.compile.as_ref().unwrap().wall_time_ms, 20_000);
}

#[tokio::test]
async fn file_names_as_users_have_them_reach_the_job_and_dangerous_ones_are_named() {
    let runner = hello();
    let names = ["helper functions.c", "input data/l'été 2024.txt"];
    let files: Vec<Value> = (names.iter())
        .map(|name| json!({"name": name, "content": "x"}))
        .collect();
    let body = json!({"language": "c", "code": "int", "files": files});
    let reply = post(&runner, &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let job = runner.jobs.lock().unwrap()[0].clone();
    let written: Vec<&str> = job.files.extra.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(written, names);
    assert_eq!(job.streams, Streams::default(), "stderr apart");
    for (name, why) in [
        (
            "@flags.c",
            "has a component starting with `@`, which a compiler reads as an option (`-`) or an argument file (`@`)",
        ),
        ("a\tb", "holds U+0009, a control character"),
        ("a\\b", "holds a `\\`; folders are separated by `/`"),
    ] {
        let body =
            json!({"language": "c", "code": "int", "files": [{"name": name, "content": ""}]});
        let reply = post(&runner, &body.to_string()).await;
        assert_eq!(
            (reply.status, &reply.body["field"], &reply.body["message"]),
            (
                400,
                &json!("files"),
                &json!(format!(
                    "field `files` has a file named {name:?}, which {why}"
                ))
            ),
            "{name:?}"
        );
    }
    assert_eq!(runner.jobs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn each_status_is_rendered_with_its_error_sentence() {
    let kill = Some(Exit::Signal(Signal::KILL));
    let cases = vec![
        (
            stage(Some(Exit::Code(3)), None, "partial\n", ""),
            "runtime_error",
            json!(3),
            json!(null),
            "The program exited with code 3.",
        ),
        (
            stage(kill, None, "", ""),
            "runtime_error",
            json!(137),
            json!("SIGKILL"),
            "The program was killed by SIGKILL.",
        ),
        (
            stage(Some(Exit::Code(1)), None, "", "Traceback\n"),
            "runtime_error",
            json!(1),
            json!(null),
            "Traceback\n",
        ),
        (
            stage(kill, Some(LimitHit::WallTime), "started\n", ""),
            "timeout",
            json!(137),
            json!("SIGKILL"),
            "Time limit exceeded: the program was still running after 1500 ms and was stopped.",
        ),
        (
            stage(kill, Some(LimitHit::Memory), "", ""),
            "memory_limit",
            json!(137),
            json!("SIGKILL"),
            "Memory limit exceeded: the program needed more than 128 MiB and was killed.",
        ),
        (
            stage(kill, Some(LimitHit::Output(StreamKind::Stderr)), "", "eee"),
            "output_limit",
            json!(137),
            json!("SIGKILL"),
            "Output limit exceeded: the program wrote more than 65536 bytes to stderr and was stopped.",
        ),
    ];
    for (result, status, exit_code, signal, error) in cases {
        let runner = double(move |_| Ok(ran(result.clone())));
        let reply = post(
            &runner,
            r#"{"language": "python", "code": "x", "timeout_ms": 1500}"#,
        )
        .await;
        assert_eq!(reply.status, 200);
        let b = &reply.body;
        assert_eq!(
            (&b["status"], &b["exit_code"], &b["signal"]),
            (&json!(status), &exit_code, &signal),
            "{b}"
        );
        assert_eq!(b["error"], error, "{b}");
        assert!(b.get("output").is_none(), "{b}");
        assert_eq!(b["truncated"], status == "output_limit");
    }
}

#[tokio::test]
async fn a_failed_compile_is_a_compile_error_with_the_compilers_words_and_an_empty_run() {
    let runner = double(|_| {
        Ok(Outcome::CompileFailed {
            compile: stage(
                Some(Exit::Code(1)),
                None,
                "",
                "main.c:1: error: x undeclared\n",
            ),
        })
    });
    let reply = post(
        &runner,
        r#"{"language": "c", "code": "int main(void) { return x; }"}"#,
    )
    .await;
    let b = &reply.body;
    assert_eq!(b["status"], "compile_error");
    assert_eq!(b["exit_code"], json!(null));
    assert_eq!((&b["stdout"], &b["stderr"]), (&json!(""), &json!("")));
    assert_eq!(b["compile"]["status"], "runtime_error");
    assert_eq!(b["compile"]["exit_code"], 1);
    assert_eq!(b["error"], "main.c:1: error: x undeclared\n");
    let runner = double(|_| {
        Ok(Outcome::CompileFailed {
            compile: stage(
                Some(Exit::Signal(Signal::KILL)),
                Some(LimitHit::WallTime),
                "compiling\n",
                "",
            ),
        })
    });
    let reply = post(&runner, r#"{"language": "c", "code": "x"}"#).await;
    assert_eq!(reply.body["status"], "timeout");
    assert_eq!(
        reply.body["error"],
        "Compile time limit exceeded: the compiler was still running after 20000 ms and was stopped."
    );
}

#[tokio::test]
async fn the_services_trouble_has_its_own_codes_and_an_internal_fault_is_500_not_503() {
    let cases: Vec<(RunError, u16, &str)> = vec![
        (RunError::Busy, 429, "busy"),
        (RunError::ShuttingDown, 503, "shutting_down"),
        (
            RunError::DockerUnavailable("no socket".into()),
            503,
            "docker_unavailable",
        ),
        (
            RunError::ImageMissing {
                image: "python:3.13-slim".into(),
                language: "python".into(),
            },
            503,
            "image_missing",
        ),
        (
            RunError::RuntimeMissing {
                runtime: "runsc".into(),
                language: "python-gvisor".into(),
            },
            503,
            "runtime_missing",
        ),
        (
            RunError::Internal("container start abc: the engine answered 500: oops".into()),
            500,
            "internal_error",
        ),
    ];
    for (error, status, code) in cases {
        let runner = double(move |_| Err(error.clone()));
        let reply = post(&runner, r#"{"language": "python", "code": "x"}"#).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (status, Some(code)),
            "{}",
            reply.body
        );
        let retry = reply
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap());
        assert_eq!(
            retry,
            (status == 429 || code == "shutting_down").then_some("1"),
            "{code}"
        );
        let id = reply.headers["x-request-id"].to_str().unwrap();
        match code {
            "internal_error" => {
                assert_eq!(reply.body["request_id"], id);
                assert!(
                    !reply.body["message"].as_str().unwrap().contains("oops"),
                    "the cause is logged, not told"
                );
            }
            "image_missing" => assert_eq!(reply.body["image"], "python:3.13-slim"),
            "runtime_missing" => assert_eq!(reply.body["runtime"], "runsc"),

            _ => {}
        }
    }
}

#[tokio::test]
async fn warps_own_refusals_are_json_too() {
    let runner = hello();
    for (method, path, status, code) in [
        ("GET", "/run-code", 405, "method_not_allowed"),
        ("PUT", "/run-code", 405, "method_not_allowed"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("DELETE", "/languages", 405, "method_not_allowed"),
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/run", 404, "not_found"),
        ("GET", "/run-code/extra", 404, "not_found"),
    ] {
        let reply = send(
            &runner,
            warp::test::request().method(method).path(path).body("{}"),
        )
        .await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
    let no_length = warp::test::request().method("POST").path("/run-code");
    let reply = send(&runner, no_length).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (411, Some("length_required"))
    );
    let too_long = warp::test::request()
        .method("POST")
        .path("/run-code")
        .header("content-length", "10485760");
    let reply = send(&runner, too_long).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (413, Some("body_too_large"))
    );
}

#[tokio::test]
async fn the_probes_and_the_language_list() {
    let runner = hello();
    let get = |path: &str| warp::test::request().method("GET").path(path);
    let reply = send(&runner, get("/health")).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let reply = send(&runner, get("/ready")).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (
            200,
            json!({"status": "ready", "languages": ["c", "python"], "pool": {}, "pool_target": {}})
        )
    );
    let reply = send(&runner, get("/languages")).await;
    let languages = reply.body["languages"].as_array().unwrap();
    assert_eq!(languages.len(), 3);
    assert_eq!(languages[2]["version"], "3.11");
    let python = &languages[1];
    assert_eq!(python["name"], "python");
    assert_eq!(python["version"], "3.13");
    assert_eq!(python["aliases"], json!(["py", "python3"]));
    assert_eq!(python["limits"]["memory_mb"], 128);
    assert!(python.get("compile_limits").is_none());
    assert_eq!(languages[0]["compile_limits"]["wall_time_ms"], 20_000);

    let not_ready = Arc::new(Double {
        readiness: Readiness {
            problems: vec!["the image `python:3.13-slim` (for python-3.13) is missing".into()],
            missing_images: vec!["python:3.13-slim".into()],
            ..Readiness::default()
        },
        ..Arc::into_inner(hello()).unwrap()
    });
    let reply = send(&not_ready, get("/ready")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body["status"], "not_ready");
    assert_eq!(reply.body["missing_images"], json!(["python:3.13-slim"]));
}

#[tokio::test]
async fn a_batch_answers_each_test_with_its_verdict_in_order_and_a_summary() {
    // The double's tests print their stdin.
    let runner = hello();
    let reply = post(
        &runner,
        r#"{"language": "python", "code": "x", "compare": "tokens", "tests": [
            {"name": "one", "stdin": "1 2", "expected_output": "1\n2\n"},
            {"name": "two", "stdin": "3", "expected_output": "4"},
            {"stdin": "5"}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let b = &reply.body;
    assert_eq!(b["status"], "ok");
    assert!(b.get("compile").is_none(), "{b}");
    assert_eq!(b["summary"], json!({"passed": 1, "total": 3}));
    let tests = b["tests"].as_array().unwrap();
    assert_eq!(
        (&tests[0]["name"], &tests[0]["verdict"], &tests[0]["stdout"]),
        (&json!("one"), &json!("accepted"), &json!("1 2"))
    );
    assert_eq!(
        (&tests[1]["name"], &tests[1]["verdict"]),
        (&json!("two"), &json!("wrong_answer"))
    );
    assert!(
        tests[2].get("name").is_none() && tests[2].get("verdict").is_none(),
        "{b}"
    );
    assert_eq!(tests[2]["status"], "ok");
    assert_eq!(tests[2]["cpu_time_ms"], 21);
    let job = &runner.jobs.lock().unwrap()[0];
    assert_eq!(job.inputs.len(), 3);
    assert_eq!(job.inputs.iter().nth(1).unwrap().stdin, b"3");
}

#[tokio::test]
async fn a_batch_whose_compile_fails_runs_no_test_and_a_test_that_fails_has_its_own_status() {
    let runner = double(|_| {
        Ok(Outcome::CompileFailed {
            compile: stage(Some(Exit::Code(1)), None, "", "error: x\n"),
        })
    });
    let reply = post(
        &runner,
        r#"{"language": "c", "code": "x", "tests": [{"expected_output": "1"}]}"#,
    )
    .await;
    let b = &reply.body;
    assert_eq!(
        (&b["status"], &b["tests"]),
        (&json!("compile_error"), &json!([])),
        "{b}"
    );
    assert_eq!(b["summary"], json!({"passed": 0, "total": 1}));
    assert_eq!(b["error"], "error: x\n");
    let timeouts = double(|_| {
        Ok(ran(stage(
            Some(Exit::Signal(Signal::KILL)),
            Some(LimitHit::CpuTime),
            "",
            "",
        )))
    });
    let reply = post(
        &timeouts,
        r#"{"language": "python", "code": "x", "tests": [{"stdin": "", "expected_output": ""}]}"#,
    )
    .await;
    let test = &reply.body["tests"][0];
    assert_eq!(
        (&test["verdict"], &test["status"], &test["limit"]),
        (&json!("timeout"), &json!("timeout"), &json!("cpu_time"))
    );
    let reply = post(
        &timeouts,
        r#"{"language": "python", "code": "x", "tests": [{}, {}, {}, {}]}"#,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (413, Some("field_too_large"))
    );
}

#[tokio::test]
async fn client_text_in_an_error_is_cut_to_a_small_bound() {
    let runner = hello();
    let name = "x".repeat(200_000);
    let body = format!(r#"{{"language": "python", "code": "1", "{name}": 1}}"#);
    let request = warp::test::request()
        .method("POST")
        .path("/run-code")
        .header("content-type", "application/json")
        .body(body);
    let reply = request
        .reply(&routes(api(&runner, judge0(&runner, None))))
        .await;
    // Under the 4096-byte body limit of these settings, the request is
    // refused for its size; with a larger limit, for its field.
    assert_eq!(reply.status(), 413);
    let mut big = settings();
    big.server.max_body_bytes = 1 << 20;
    let api = Arc::new(Api::new(
        runner.clone(),
        judge0(&runner, None),
        Gate::new(&FrontDoor::default()).unwrap(),
        Arc::new(Metrics::new()),
        Catalogue::default(),
        &big,
    ));
    let body = format!(r#"{{"language": "python", "code": "1", "{name}": 1}}"#);
    let reply = warp::test::request()
        .method("POST")
        .path("/run-code")
        .header("content-type", "application/json")
        .body(body)
        .reply(&routes(api))
        .await;
    assert_eq!(reply.status(), 400);
    assert!(reply.body().len() < 1500, "{} bytes", reply.body().len());
    let answer: Value = serde_json::from_slice(reply.body()).unwrap();
    assert_eq!(answer["code"], "unknown_field");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("…[cut: 199744 more bytes]"), "{message}");
}
