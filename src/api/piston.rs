//! The Piston v2 API (engineer-man/piston at 0a844d0, v3.1.1), so that
//! Piston's clients work against this service unchanged but for the base
//! URL: `GET /api/v2/runtimes` and `POST /api/v2/execute` (also under
//! `/api/v2/piston/`, the public instance's paths, which some clients
//! hard-code; a trailing `/` is fine).
//!
//! A thin translation over the same pipeline as `/run-code`: a request is
//! checked in Piston's order with Piston's messages, becomes a [`Job`](crate::job::Job),
//! runs through the [`Runner`], and the [`Report`] is written in Piston's
//! shape. Where this service differs from Piston, docs/piston.md ("Piston
//! clients") says so and why.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Buf;
use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::answer::new_request_id;
use super::answer::{self, add_timing_headers};
use super::error::ApiError;
use super::gate::Caller;
use super::state::Api;
use crate::job::{Field, JobError, JobRequest, Stage, Streams};
use crate::language::Registry;
use crate::limits::{Limits, LimitsOverride};
use crate::outcome::{Exit, LimitHit, Outcome, StageResult, StreamKind};
use crate::runner::{Report, Runner};
use crate::text::clip;

/// Piston's part of the API's document: the routes [`handle`] serves,
/// relative to `/api/v2` (`/api/v2/piston/…` are their aliases).
#[derive(utoipa::OpenApi)]
#[openapi(paths(runtimes, execute, connect))]
pub(super) struct PistonApi;

/// `/api/v2/<tail>`: Piston's routes, each to its handler.
pub(crate) async fn handle<R: Runner>(
    caller: Caller,
    api: Arc<Api<R>>,
    method: Method,
    tail: warp::path::Tail,
    content_type: Option<String>,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let path = tail.as_str().trim_end_matches('/');
    let path = path.strip_prefix("piston/").unwrap_or(path);
    let json_body = content_type.is_some_and(|t| t.starts_with("application/json"));
    match (path, method) {
        ("runtimes", Method::GET | Method::HEAD) => runtimes(&api.runner.registry()),
        // Piston refuses a write that is not JSON before it looks at the
        // path.
        (_, m) if !matches!(m, Method::GET | Method::HEAD | Method::OPTIONS) && !json_body => {
            message(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "requests must be of type application/json",
            )
        }
        ("connect", Method::GET) => connect(),
        ("execute", Method::POST) => {
            let response = execute(api, &caller, declared, body).await;
            caller.decorate(response)
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Piston's interactive runs, `GET /api/v2/connect`: a WebSocket speaking
/// Piston's protocol (`init`, `data`, `signal` in; `runtime`, `stage`,
/// `data`, `exit`, `error` out; closes 4000–4005 and 4999 "Job
/// Completed"), served by `api::live::connect`. Without an upgrade it is
/// not found, as on Piston.
#[utoipa::path(get, path = "/connect", tag = "piston", operation_id = "piston_connect",
    responses(
        (status = 101, description = "The WebSocket of one run, in Piston's protocol"),
        (status = 404, description = "Not a WebSocket upgrade", body = PistonErrorBody),
    ))]
fn connect() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// Piston's error: `{"message": text}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct PistonErrorBody {
    message: String,
}

/// `{"message": text}` with `status`, as Piston answers.
fn message(status: StatusCode, text: &str) -> Response {
    let body = PistonErrorBody {
        message: text.to_string(),
    };
    answer::json(status, &body)
}

/// One runtime as `GET /api/v2/runtimes` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Runtime<'a> {
    language: &'a str,
    /// The full semantic version (`3.13.0`), as Piston's packages have.
    version: String,
    aliases: &'a [String],
}

/// Every language version, newest first within a language (Piston's
/// clients that take the first match get the newest).
#[utoipa::path(get, path = "/runtimes", tag = "piston", operation_id = "piston_runtimes",
    responses((status = 200, description = "Every language version", body = Vec<Runtime>)))]
fn runtimes(registry: &Registry) -> Response {
    let list: Vec<Runtime> = registry
        .languages()
        .iter()
        .map(|l| Runtime {
            language: &l.name,
            version: l.semver.to_string(),
            aliases: &l.aliases,
        })
        .collect();
    answer::json(StatusCode::OK, &list)
}

/// Runs a program (Piston v2's `execute`): checked in Piston's order with
/// Piston's messages, then run as `/run-code` runs it.
#[utoipa::path(post, path = "/execute", tag = "piston", operation_id = "piston_execute",
    request_body = ExecuteRequest,
    responses(
        (status = 200, description = "The program ran", body = Answer),
        (status = 400, description = "Refused", body = PistonErrorBody),
        (status = 404, description = "Not a route", body = PistonErrorBody),
        (status = 408, description = "The body was too slow", body = PistonErrorBody),
        (status = 413, description = "Body too large", body = PistonErrorBody),
        (status = 415, description = "Not JSON", body = PistonErrorBody),
        (status = 429, description = "Busy", body = PistonErrorBody),
        (status = 500, description = "The service's fault", body = PistonErrorBody),
        (status = 503, description = "Cannot run now", body = PistonErrorBody),
    ))]
async fn execute<R: Runner>(
    api: Arc<Api<R>>,
    caller: &Caller,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let request_id = new_request_id();
    let received = std::time::Instant::now();
    let body = match api.body.read(&caller.client, declared, body).await {
        Ok(body) => body,
        Err(e) => return refused(e),
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return refused(ApiError::MalformedJson(e.to_string())),
    };
    drop(body);
    let job = match job_of(&request, &api.runner.registry(), &api.bounds, caller) {
        Ok(job) => job,
        Err(text) => {
            tracing::info!(%request_id, dialect = "piston", error = %text, "request refused");
            return message(StatusCode::BAD_REQUEST, &text);
        }
    };
    match api.runner.run(job).await {
        Ok(report) => {
            tracing::info!(
                %request_id,
                dialect = "piston",
                language = %report.language.label(),
                status = ?report.outcome.run().map(StageResult::status),
                "run finished"
            );
            let mut response = answer::json(StatusCode::OK, &Answer::new(&report));
            add_timing_headers(&mut response, &report.timing, received.elapsed());
            response
        }
        Err(e) => refused(ApiError::from_run(e, &request_id)),
    }
}

/// A Piston request (`execute`'s body, or `connect`'s `init`) as a job
/// for `caller`, or Piston's sentence for why not.
pub(crate) fn job_of(
    request: &Value,
    registry: &Registry,
    bounds: &crate::config::RequestBounds,
    caller: &Caller,
) -> Result<crate::job::Job, String> {
    let request = job(&ExecuteRequest::of(request), registry)?;
    (request.into_job(registry, bounds, caller.client.clone())).map_err(refusal)
}

/// Trouble Piston does not have (a body too large or too slow, the
/// service busy or unable to run code, a fault of its own) with the
/// status and headers `/run-code` gives it (413, 408, 429 or 503 with
/// `Retry-After`, 500 with the request's id), in Piston's `{"message"}`.
fn refused(e: ApiError) -> Response {
    e.respond(&PistonErrorBody {
        message: e.to_string(),
    })
}

/// A job refused by the domain's rules, as one Piston-style sentence.
fn refusal(e: JobError) -> String {
    let name = |field: Field| match field {
        Field::Main | Field::Files => "files".to_string(),
        Field::Args => "args".to_string(),
        Field::CompileArgs => "compile_args".to_string(),
        Field::Stdin => "stdin".to_string(),
        Field::Outputs => "outputs".to_string(),
        Field::Tests => "tests".to_string(),
        Field::Limit(stage, limit) => format!("{stage}_{limit}"),
    };
    match e {
        JobError::TooLarge { field, message } | JobError::Invalid { field, message } => {
            format!("{} {message}", name(field))
        }
        other => other.to_string(),
    }
}

/// `POST /api/v2/execute`'s body (Piston v2), as Piston takes it apart
/// (`const { language, version, files, ... } = req.body`): each field as
/// sent, whatever its type, checked in Piston's order with Piston's
/// messages.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
struct ExecuteRequest<'a> {
    #[schema(value_type = String, example = "python")]
    language: &'a Value,
    /// A semver range (`*`, `3.13`, `>=3.11`).
    #[schema(value_type = String, example = "*")]
    version: &'a Value,
    /// The first utf8 file runs.
    #[schema(value_type = Vec<PistonFile>)]
    files: &'a Value,
    #[schema(value_type = Option<String>)]
    stdin: &'a Value,
    #[schema(value_type = Option<Vec<String>>)]
    args: &'a Value,
    /// Each limit may only lower the language's (ms; memory in bytes, -1:
    /// the language's).
    #[schema(value_type = Option<f64>)]
    compile_timeout: &'a Value,
    #[schema(value_type = Option<f64>)]
    run_timeout: &'a Value,
    #[schema(value_type = Option<f64>)]
    compile_cpu_time: &'a Value,
    #[schema(value_type = Option<f64>)]
    run_cpu_time: &'a Value,
    #[schema(value_type = Option<f64>)]
    compile_memory_limit: &'a Value,
    #[schema(value_type = Option<f64>)]
    run_memory_limit: &'a Value,
}

impl ExecuteRequest<'_> {
    /// The fields of `body` (`null` for those absent, or when `body` is
    /// not an object).
    fn of(body: &Value) -> ExecuteRequest<'_> {
        ExecuteRequest {
            language: &body["language"],
            version: &body["version"],
            files: &body["files"],
            stdin: &body["stdin"],
            args: &body["args"],
            compile_timeout: &body["compile_timeout"],
            run_timeout: &body["run_timeout"],
            compile_cpu_time: &body["compile_cpu_time"],
            run_cpu_time: &body["run_cpu_time"],
            compile_memory_limit: &body["compile_memory_limit"],
            run_memory_limit: &body["run_memory_limit"],
        }
    }

    /// The limit `{stage}_{constraint}` asks for.
    fn limit(&self, stage: Stage, constraint: &str) -> &Value {
        match (stage, constraint) {
            (Stage::Compile, "memory_limit") => self.compile_memory_limit,
            (Stage::Compile, "timeout") => self.compile_timeout,
            (Stage::Compile, _) => self.compile_cpu_time,
            (Stage::Run, "memory_limit") => self.run_memory_limit,
            (Stage::Run, "timeout") => self.run_timeout,
            (Stage::Run, _) => self.run_cpu_time,
        }
    }
}

/// A file of Piston's request, as sent.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
struct PistonFile<'a> {
    /// Default `file<i>.code`.
    #[schema(value_type = Option<String>)]
    name: &'a Value,
    #[schema(value_type = String, example = "print(1)")]
    content: &'a Value,
    /// `utf8` (default), `base64` or `hex`.
    #[schema(value_type = Option<String>)]
    encoding: &'a Value,
}

impl PistonFile<'_> {
    fn of(file: &Value) -> PistonFile<'_> {
        PistonFile {
            name: &file["name"],
            content: &file["content"],
            encoding: &file["encoding"],
        }
    }

    /// Whether it is the text that runs (`utf8`, or no encoding).
    fn utf8(&self) -> bool {
        matches!(self.encoding.as_str(), None | Some("utf8"))
    }
}

/// A Piston request, checked in Piston's order with Piston's messages
/// (`api/src/api/v2.js`, `get_job`), into the domain's request.
fn job(body: &ExecuteRequest, registry: &Registry) -> Result<JobRequest, String> {
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let language = text(body.language).ok_or("language is required as a string")?;
    let version = text(body.version).ok_or("version is required as a string")?;
    let files: Vec<PistonFile> = body
        .files
        .as_array()
        .ok_or("files is required as an array")?
        .iter()
        .map(PistonFile::of)
        .collect();
    for (i, file) in files.iter().enumerate() {
        if !file.content.is_string() {
            return Err(format!("files[{i}].content is required as a string"));
        }
    }
    let unknown = || format!("{}-{} runtime is unknown", clip(&language), clip(&version));
    let runtime = registry
        .resolve(&language, Some(&version))
        .map_err(|_| unknown())?;
    let main = files
        .iter()
        .position(PistonFile::utf8)
        .ok_or("files must include at least one utf8 encoded file")?;
    let (run_limits, compile_limits) = requested_limits(
        body,
        &runtime.limits,
        runtime.compile.as_ref().map(|c| &c.limits),
    )?;
    let mut extra = Vec::new();
    for (i, file) in files.iter().enumerate().filter(|(i, _)| *i != main) {
        let name = match file.name.as_str().filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => format!("file{i}.code"),
        };
        extra.push((name, decoded(file, i)?));
    }
    let args = match body.args {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("args must be an array of strings")?,
        _ => return Err("args must be an array of strings".into()),
    };
    let mut stdin = match body.stdin {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        _ => return Err("stdin must be a string".into()),
    };
    // Piston ends stdin with a newline.
    if !stdin.ends_with('\n') {
        stdin.push('\n');
    }
    Ok(JobRequest {
        language,
        version: Some(version),
        main: decoded(&files[main], main)?,
        extra,
        args,
        stdin: stdin.into_bytes(),
        run_limits,
        compile_limits,
        compile_args: Vec::new(),
        tests: Vec::new(),
        streams: Streams::default(),
        outputs: Vec::new(),
    })
}

/// A file's content, decoded as its `encoding` says (`utf8`, `base64` or
/// `hex`; any other is taken as utf8, as Piston does).
fn decoded(file: &PistonFile, i: usize) -> Result<Vec<u8>, String> {
    let content = file.content.as_str().unwrap_or_default();
    let encoding = file.encoding.as_str().unwrap_or("utf8");
    let bad =
        |e: &dyn std::fmt::Display| format!("files[{i}].content is not valid {encoding}: {e}");
    match encoding {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| bad(&e)),
        "hex" => hex::decode(content).map_err(|e| bad(&e)),
        _ => Ok(content.as_bytes().to_vec()),
    }
}

/// The limits a request asks for, checked as Piston checks them: in the
/// order compile and run memory, timeout, CPU time; a value that is absent
/// or 0 asks nothing; a number above the language's limit is refused. A
/// memory limit of -1 or less (Piston's "no limit", which its clients send
/// by default) asks nothing either; a compile limit of a language without
/// a compile stage is ignored.
fn requested_limits(
    body: &ExecuteRequest,
    run: &Limits,
    compile: Option<&Limits>,
) -> Result<(LimitsOverride, LimitsOverride), String> {
    let mut asked = [LimitsOverride::default(), LimitsOverride::default()];
    for constraint in ["memory_limit", "timeout", "cpu_time"] {
        for (i, (stage, limits)) in [(Stage::Compile, compile), (Stage::Run, Some(run))]
            .into_iter()
            .enumerate()
        {
            let name = format!("{stage}_{constraint}");
            let value = body.limit(stage, constraint);
            let falsy = matches!(value, Value::Null | Value::Bool(false))
                || value.as_f64() == Some(0.0)
                || value.as_str() == Some("");
            if falsy {
                continue;
            }
            let number = value
                .as_f64()
                .ok_or_else(|| format!("If specified, {name} must be a number"))?;
            let Some(limits) = limits else { continue };
            if constraint == "memory_limit" && number < 0.0 {
                continue;
            }
            let (configured, field) = match constraint {
                "memory_limit" => (limits.memory_bytes() as f64, &mut asked[i].memory_mb),
                "timeout" => (limits.wall_time_ms as f64, &mut asked[i].wall_time_ms),
                _ => (limits.cpu_time_ms as f64, &mut asked[i].cpu_time_ms),
            };
            if number > configured {
                return Err(format!(
                    "{name} cannot exceed the configured limit of {configured}"
                ));
            }
            if number < 0.0 {
                return Err(format!("{name} must be non-negative"));
            }
            *field = Some(match constraint {
                "memory_limit" => {
                    let mib = (number / (1024.0 * 1024.0)).ceil() as u64;
                    if mib < MIN_MEMORY_MIB {
                        return Err(format!(
                            "{name} must be at least {} (16 MiB)",
                            MIN_MEMORY_MIB << 20
                        ));
                    }
                    mib
                }
                _ => number.ceil() as u64,
            });
        }
    }
    let [compile, run] = asked;
    Ok((run, compile))
}

/// The least memory a sandbox may have, in MiB (as a language file).
const MIN_MEMORY_MIB: u64 = 16;

/// `POST /api/v2/execute`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Answer {
    /// Compiled languages only.
    #[serde(skip_serializing_if = "Option::is_none")]
    compile: Option<StageAnswer>,
    /// The run; when the compile failed, the compile again (as Piston does).
    run: StageAnswer,
    language: String,
    version: String,
}

/// A stage, as Piston writes it (its key order).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct StageAnswer {
    /// The signal that killed it (`SIGKILL` for any stop at a limit).
    pub(crate) signal: Option<String>,
    stdout: String,
    stderr: String,
    /// The exit status when it exited; `null` when a signal or a limit
    /// stopped it.
    pub(crate) code: Option<i64>,
    /// stdout and stderr in the order written.
    output: String,
    /// Peak memory, bytes.
    memory: Option<u64>,
    message: Option<String>,
    /// `RE`, `SG`, `TO`, `OL`, `EL`, `XX`, or `null` for success.
    status: Option<&'static str>,
    /// CPU time, ms.
    cpu_time: Option<f64>,
    /// Wall time, ms.
    wall_time: f64,
}

impl Answer {
    pub(crate) fn new(report: &Report) -> Answer {
        let (compile, run) = match &report.outcome {
            Outcome::Ran { compile, runs } => (compile.as_ref().map(stage), stage(runs.first())),
            Outcome::CompileFailed { compile } => {
                let compile = stage(compile);
                (Some(compile.clone()), compile)
            }
        };
        Answer {
            compile,
            run,
            language: report.language.name.clone(),
            version: report.language.semver.to_string(),
        }
    }
}

/// A stage's result in Piston's words (isolate's statuses and messages).
/// Memory exhaustion, which Piston reports as isolate does (`SG`, "Caught
/// fatal signal 9"), is `SG` with `SIGKILL` and the message "Memory limit
/// exceeded".
pub(crate) fn stage(result: &StageResult) -> StageAnswer {
    let killed = Some("SIGKILL".to_string());
    let (code, signal, status, message) = match (result.limit, result.exit) {
        (Some(LimitHit::Output(StreamKind::Stdout)), _) => (
            None,
            killed,
            Some("OL"),
            Some("stdout length exceeded".into()),
        ),
        (Some(LimitHit::Output(StreamKind::Stderr)), _) => (
            None,
            killed,
            Some("EL"),
            Some("stderr length exceeded".into()),
        ),
        (Some(LimitHit::WallTime), _) => (
            None,
            killed,
            Some("TO"),
            Some("Time limit exceeded (wall clock)".into()),
        ),
        (Some(LimitHit::CpuTime), _) => {
            (None, killed, Some("TO"), Some("Time limit exceeded".into()))
        }
        (Some(LimitHit::Memory), _) => (
            None,
            killed,
            Some("SG"),
            Some("Memory limit exceeded".into()),
        ),
        (None, Some(Exit::Code(0))) => (Some(0), None, None, None),
        (None, Some(Exit::Code(n))) => (
            Some(i64::from(n)),
            None,
            Some("RE"),
            Some(format!("Exited with error status {n}")),
        ),
        (None, Some(Exit::Signal(s))) => (
            None,
            Some(s.to_string()),
            Some("SG"),
            Some(format!("Caught fatal signal {}", s.0)),
        ),
        (None, None) => (
            None,
            None,
            Some("XX"),
            Some("the sandbox ended without an exit status".into()),
        ),
    };
    StageAnswer {
        signal,
        stdout: result.stdout.clone(),
        stderr: result.stderr.clone(),
        code,
        output: result.output.clone(),
        memory: result.usage.memory_peak,
        message,
        status,
        cpu_time: result.usage.cpu_time.map(|d| d.as_secs_f64() * 1000.0),
        wall_time: result.duration.as_secs_f64() * 1000.0,
    }
}
