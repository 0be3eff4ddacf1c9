//! `POST /run-code`, the service's own dialect (and its predecessor's):
//! the wire types, their translation to a [`Job`] and from a [`Report`],
//! and the handler.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use futures_util::Stream;
use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use warp::http::header::HeaderValue;
use warp::reply::{Reply, Response};

use super::body::{expect_object, json_error};
use super::error::ApiError;
use super::{Api, POOL_HEADER, REQUEST_ID_HEADER, new_request_id};
use crate::job::{Field, Job, JobRequest, RequestBounds, Stage};
use crate::language::Registry;
use crate::limits::{Limit, Limits, LimitsOverride};
use crate::runner::{
    LimitHit, Outcome, PoolUse, Report, Runner, StageResult, Status, StreamKind, Timing,
};

/// `POST /run-code`: read, parse, check, run, render.
pub async fn run_code<R: Runner>(
    api: Arc<Api<R>>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let request_id = new_request_id();
    let received = Instant::now();
    let ran = async {
        let body = api.body.read(body).await?;
        let job = RunRequest::parse(&body)?.into_job(&api.runner.registry(), &api.bounds)?;
        drop(body);
        api.runner
            .run(job)
            .await
            .map_err(|e| ApiError::from_run(e, &request_id))
    }
    .await;
    let mut response = match ran {
        Ok(report) => {
            let answer = RunResponse::new(&report);
            log_run(&request_id, &answer, &report, received);
            let mut response = warp::reply::json(&answer).into_response();
            add_timing_headers(&mut response, &report.timing, received.elapsed());
            response
        }
        Err(e) => {
            tracing::info!(%request_id, code = e.code(), error = %e, "request refused");
            e.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn log_run(request_id: &str, answer: &RunResponse, report: &Report, received: Instant) {
    tracing::info!(
        %request_id,
        language = %answer.language,
        version = %answer.version,
        status = answer.run.status,
        exit_code = ?answer.run.exit_code,
        compile_ms = answer.compile.as_ref().map(|c| c.duration_ms),
        duration_ms = answer.run.duration_ms,
        total_ms = received.elapsed().as_millis() as u64,
        pooled = report.timing.pool == PoolUse::Hit,
        "run finished"
    );
}

/// `x-code-runner-pool` and `Server-Timing`: the phases of the run, the
/// time in Engine API calls and waiting for the program, and in all.
fn add_timing_headers(response: &mut Response, timing: &Timing, total: Duration) {
    let headers = response.headers_mut();
    let pool = match timing.pool {
        PoolUse::Hit => "hit",
        PoolUse::Miss => "miss",
    };
    headers.insert(POOL_HEADER, HeaderValue::from_static(pool));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut value: String = timing
        .phases
        .iter()
        .map(|(phase, d)| format!("{};dur={:.3}, ", phase.as_str(), ms(*d)))
        .collect();
    value.push_str(&format!(
        "docker;dur={:.3}, total;dur={:.3}",
        ms(timing.docker),
        ms(total)
    ));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("server-timing", value);
    }
}

/// The body of `POST /run-code`, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRequest {
    /// A language's name or alias (required).
    pub language: Option<String>,
    /// A version range; the newest version when absent.
    pub version: Option<String>,
    /// The program, written to the language's source file (required).
    pub code: Option<String>,
    /// Given to the program on its standard input.
    pub stdin: Option<String>,
    /// Appended to the language's run command.
    pub args: Option<Vec<String>>,
    /// Files written beside the main source file, before any compile.
    pub files: Option<Vec<FileEntry>>,
    /// A wall-clock limit lower than the language's, in ms.
    pub timeout_ms: Option<u64>,
}

/// One extra file of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileEntry {
    /// A relative path in the working directory (`util.py`, `pkg/util.py`).
    pub name: String,
    pub content: String,
}

impl RunRequest {
    /// Parses a body: a JSON object with known fields only (an unknown one
    /// is named), of the right types.
    pub fn parse(body: &[u8]) -> Result<RunRequest, ApiError> {
        expect_object(body)?;
        let refusal = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = Strict::<RunRequest>::new(&refusal)
            .deserialize(&mut de)
            .and_then(|request| de.end().map(|()| request));
        if let Some(refusal) = refusal.into_inner() {
            return Err(refusal);
        }
        parsed.map_err(json_error)
    }

    /// Checks the request into a job: sizes first (413), then the values
    /// this dialect adds (`language`, `code`, `timeout_ms`), then the rest.
    pub fn into_job(self, registry: &Registry, bounds: &RequestBounds) -> Result<Job, ApiError> {
        let refuse = |e| ApiError::from_job(e, registry.names(), field_name);
        let required = |field: &str| ApiError::InvalidField {
            field: field.to_string(),
            message: "is required".to_string(),
        };
        let language = self.language.ok_or_else(|| required("language"))?;
        let code = self.code.ok_or_else(|| required("code"))?;
        let request = JobRequest {
            language,
            version: self.version,
            main: code.into_bytes(),
            extra: self
                .files
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.name, f.content.into_bytes()))
                .collect(),
            args: self.args.unwrap_or_default(),
            stdin: self.stdin.unwrap_or_default().into_bytes(),
            run_limits: LimitsOverride {
                wall_time_ms: self.timeout_ms,
                ..LimitsOverride::default()
            },
            compile_limits: LimitsOverride::default(),
        };
        request.check_sizes(bounds).map_err(refuse)?;
        let invalid = |field: &str, message: String| ApiError::InvalidField {
            field: field.to_string(),
            message,
        };
        if request.language.is_empty() || request.language.len() > 64 {
            return Err(invalid(
                "language",
                "length must be between 1 and 64".into(),
            ));
        }
        if request.main.is_empty() {
            return Err(invalid("code", "must not be empty".into()));
        }
        if self.timeout_ms == Some(0) {
            return Err(invalid("timeout_ms", "must be at least 1 (got 0)".into()));
        }
        request.into_job(registry, bounds).map_err(refuse)
    }
}

/// This dialect's name of a field of the domain.
fn field_name(field: Field) -> String {
    match field {
        Field::Main => "code".into(),
        Field::Files => "files".into(),
        Field::Args => "args".into(),
        Field::Stdin => "stdin".into(),
        Field::Limit(Stage::Run, Limit::wall_time_ms) => "timeout_ms".into(),
        Field::Limit(stage, limit) => format!("{stage}.{limit}"),
    }
}

/// Deserializes a `T` of known fields only. What serde cannot say with a
/// type (an unknown field, named before its value is read however deep it
/// is; a missing one) is put in `refusal` as the error to answer, and
/// parsing stops there.
struct Strict<'a, T> {
    refusal: &'a RefCell<Option<ApiError>>,
    _type: std::marker::PhantomData<T>,
}

impl<'a, T> Strict<'a, T> {
    fn new(refusal: &'a RefCell<Option<ApiError>>) -> Self {
        Strict {
            refusal,
            _type: std::marker::PhantomData,
        }
    }

    fn refuse<E: de::Error>(&self, refusal: ApiError) -> E {
        let message = refusal.to_string();
        *self.refusal.borrow_mut() = Some(refusal);
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_, RunRequest> {
    type Value = RunRequest;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RunRequest, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, RunRequest> {
    type Value = RunRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a run request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RunRequest, A::Error> {
        let mut r = RunRequest::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "language" => r.language = Some(map.next_value()?),
                "version" => r.version = map.next_value()?,
                "code" => r.code = Some(map.next_value()?),
                "stdin" => r.stdin = map.next_value()?,
                "args" => r.args = map.next_value()?,
                "timeout_ms" => r.timeout_ms = map.next_value()?,
                "files" => {
                    r.files =
                        map.next_value_seed(Strict::<Option<Vec<FileEntry>>>::new(self.refusal))?
                }
                other => return Err(self.refuse(ApiError::UnknownField(other.to_string()))),
            }
        }
        Ok(r)
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_, Option<Vec<FileEntry>>> {
    type Value = Option<Vec<FileEntry>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, Option<Vec<FileEntry>>> {
    type Value = Option<Vec<FileEntry>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of files")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut files = Vec::new();
        while let Some(file) = seq.next_element_seed(Strict::<FileEntry>::new(self.refusal))? {
            files.push(file);
        }
        Ok(Some(files))
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_, FileEntry> {
    type Value = FileEntry;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileEntry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, FileEntry> {
    type Value = FileEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a file object with `name` and `content`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileEntry, A::Error> {
        let (mut name, mut content) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => name = Some(map.next_value::<String>()?),
                "content" => content = Some(map.next_value::<String>()?),
                other => return Err(self.refuse(ApiError::UnknownField(other.to_string()))),
            }
        }
        let missing = |field: &str| {
            self.refuse(ApiError::InvalidField {
                field: field.to_string(),
                message: "is required in every file".to_string(),
            })
        };
        match (name, content) {
            (Some(name), Some(content)) => Ok(FileEntry { name, content }),
            (None, _) => Err(missing("name")),
            (_, None) => Err(missing("content")),
        }
    }
}

/// The answer to a run, whatever the program did.
#[derive(Debug, Clone, Serialize)]
pub struct RunResponse {
    pub language: String,
    pub version: String,
    /// The run: `status`, `exit_code`, `signal`, `stdout`, `stderr`,
    /// `truncated`, `duration_ms` (empty, with the compile's status, when
    /// the compile failed).
    #[serde(flatten)]
    pub run: StageReport,
    /// The compile stage, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile: Option<StageReport>,
    /// For clients of the earlier service: the stdout, when the status is `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For clients of the earlier service: the stderr, or a sentence naming
    /// the limit that was hit, when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a stage (the run, or the compile) did, on the wire.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageReport {
    /// `ok`, `runtime_error`, `timeout`, `memory_limit`, `output_limit`, or
    /// (a run whose compile failed) `compile_error`.
    pub status: &'static str,
    /// The exit status; 128+N when signal N ended the program.
    pub exit_code: Option<i64>,
    /// The name of the signal that ended it, if one did.
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// Whether a stream was cut at its cap.
    pub truncated: bool,
    /// Wall-clock time from the start of the program to its end, in ms.
    pub duration_ms: u64,
}

/// A status as this dialect writes it.
fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::RuntimeError => "runtime_error",
        Status::Timeout => "timeout",
        Status::MemoryLimit => "memory_limit",
        Status::OutputLimit => "output_limit",
    }
}

impl From<&StageResult> for StageReport {
    fn from(stage: &StageResult) -> Self {
        StageReport {
            status: status_name(stage.status()),
            exit_code: stage.exit.map(|e| e.status()),
            signal: stage.exit.and_then(|e| e.signal()).map(|s| s.to_string()),
            stdout: stage.stdout.clone(),
            stderr: stage.stderr.clone(),
            truncated: stage.truncated(),
            duration_ms: stage.duration.as_millis() as u64,
        }
    }
}

impl RunResponse {
    pub fn new(report: &Report) -> Self {
        let limits = &report.limits;
        let (run, compile, output, error) = match &report.outcome {
            Outcome::Ran { compile, run } => {
                let (output, error) = match run.status() {
                    Status::Ok => (Some(run.stdout.clone()), None),
                    _ => (None, Some(run_error(run, &limits.run))),
                };
                (StageReport::from(run), compile.as_ref(), output, error)
            }
            Outcome::CompileFailed { compile } => {
                let status = match compile.status() {
                    Status::RuntimeError | Status::Ok => "compile_error",
                    limit => status_name(limit),
                };
                let compile_limits = limits.compile.as_ref().unwrap_or(&limits.run);
                let error = compile_error(compile, compile_limits);
                let run = StageReport {
                    status,
                    ..StageReport::default()
                };
                (run, Some(compile), None, Some(error))
            }
        };
        RunResponse {
            language: report.language.name.clone(),
            version: report.language.version.clone(),
            run,
            compile: compile.map(StageReport::from),
            output,
            error,
        }
    }
}

/// The `error` text of a run that did not end with status `ok`.
fn run_error(run: &StageResult, limits: &Limits) -> String {
    if let Some(sentence) = limit_sentence(Stage::Run, run, limits) {
        return sentence;
    }
    match run.exit {
        _ if !run.stderr.is_empty() => run.stderr.clone(),
        Some(exit) => match exit.signal() {
            Some(signal) => format!("The program was killed by {signal}."),
            None => format!("The program exited with code {}.", exit.status()),
        },
        None => "The program failed.".to_string(),
    }
}

/// The `error` text of a failed compile stage: the compiler's output, or a
/// sentence naming the limit it hit.
fn compile_error(compile: &StageResult, limits: &Limits) -> String {
    if let Some(sentence) = limit_sentence(Stage::Compile, compile, limits) {
        return sentence;
    }
    match compile.exit {
        _ if !compile.stderr.is_empty() => compile.stderr.clone(),
        _ if !compile.stdout.is_empty() => compile.stdout.clone(),
        Some(exit) => format!("The compiler exited with code {}.", exit.status()),
        None => "The compiler failed.".to_string(),
    }
}

/// The sentence naming the limit a stage was stopped at, if it was:
/// "Time limit exceeded: the program was still running after 1500 ms and
/// was stopped.", "Compile memory limit exceeded: the compiler …".
fn limit_sentence(stage: Stage, result: &StageResult, limits: &Limits) -> Option<String> {
    let (limit, what) = match result.limit? {
        LimitHit::WallTime => (
            "time",
            format!(
                "was still running after {} ms and was stopped",
                limits.wall_time_ms
            ),
        ),
        LimitHit::CpuTime => (
            "CPU time",
            format!(
                "used more than {} ms of CPU time and was stopped",
                limits.cpu_time_ms
            ),
        ),
        LimitHit::Memory => (
            "memory",
            format!("needed more than {} MiB and was killed", limits.memory_mb),
        ),
        LimitHit::Output(stream) => (
            "output",
            format!(
                "wrote more than {} bytes to {} and was stopped",
                limits.output_bytes,
                match stream {
                    StreamKind::Stdout => "stdout",
                    StreamKind::Stderr => "stderr",
                }
            ),
        ),
    };
    Some(match stage {
        Stage::Run => format!(
            "{}{} limit exceeded: the program {what}.",
            limit[..1].to_uppercase(),
            &limit[1..]
        ),
        Stage::Compile => format!("Compile {limit} limit exceeded: the compiler {what}."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::check_file_name;
    use crate::limits::DefaultLimits;
    use proptest::prelude::*;

    fn parse(body: &str) -> Result<RunRequest, ApiError> {
        RunRequest::parse(body.as_bytes())
    }

    fn bounds() -> RequestBounds {
        RequestBounds {
            max_code_bytes: 1000,
            max_files: 4,
            max_stdin_bytes: 1000,
            max_args: 4,
            max_arg_bytes: 100,
        }
    }

    /// JSON values of any shape, nested a few levels.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("python")),
            Just(serde_json::json!([{"name": "a.py", "content": "x"}])),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,10}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Request-shaped objects: the real keys (and a stray one) with values
    /// of any shape.
    fn request_like() -> impl Strategy<Value = serde_json::Value> {
        let key = prop_oneof![
            Just("language".to_string()),
            Just("code".to_string()),
            Just("stdin".to_string()),
            Just("args".to_string()),
            Just("files".to_string()),
            Just("timeout_ms".to_string()),
            Just("version".to_string()),
            "[a-z_]{1,12}",
        ];
        prop::collection::btree_map(key, json_value(), 0..8)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_parse_to_a_request_or_a_400(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = RunRequest::parse(&body) {
                prop_assert_eq!(e.status().as_u16(), 400);
            }
        }

        #[test]
        fn a_request_shaped_body_becomes_a_job_within_every_bound_or_a_4xx(value in request_like()) {
            let registry = Registry::builtin(&DefaultLimits::default()).unwrap();
            let body = serde_json::to_vec(&value).unwrap();
            let job = RunRequest::parse(&body).and_then(|r| r.into_job(&registry, &bounds()));
            match job {
                Ok(job) => {
                    let b = bounds();
                    prop_assert_eq!(&job.files.main.name, &job.language.source_file);
                    prop_assert!(!job.files.main.content.is_empty());
                    let total: usize = job.files.all().map(|f| f.content.len()).sum();
                    prop_assert!(total <= b.max_code_bytes && job.files.extra.len() <= b.max_files);
                    for f in &job.files.extra {
                        prop_assert!(check_file_name(&f.name).is_ok(), "{}", f.name);
                        prop_assert!(f.name != job.files.main.name);
                    }
                    prop_assert!(job.args.len() <= b.max_args);
                    prop_assert!(job.args.iter().all(|a| a.len() <= b.max_arg_bytes && !a.contains('\0')));
                    prop_assert!(job.stdin.len() <= b.max_stdin_bytes);
                    prop_assert!(job.limits.run.wall_time_ms >= 1);
                    prop_assert!(job.limits.run.wall_time_ms <= job.language.limits.wall_time_ms);
                }
                Err(e) => prop_assert!(matches!(e.status().as_u16(), 400 | 413), "{e:?}"),
            }
        }
    }

    #[test]
    fn a_request_parses_with_every_field() {
        let r = parse(r#"{"language":"python","version":"3","code":"print(1)","stdin":"ab","args":["x"],"files":[{"name":"a.py","content":"1"}],"timeout_ms":5}"#).unwrap();
        assert_eq!(r.language.as_deref(), Some("python"));
        assert_eq!(r.version.as_deref(), Some("3"));
        assert_eq!(r.args, Some(vec!["x".to_string()]));
        assert_eq!(
            r.files,
            Some(vec![FileEntry {
                name: "a.py".into(),
                content: "1".into()
            }])
        );
        assert_eq!(r.timeout_ms, Some(5));
        let r = parse(r#"{"language":"py","code":"x","stdin":null,"files":null}"#).unwrap();
        assert_eq!((r.stdin, r.files), (None, None));
    }

    #[test]
    fn json_errors_get_precise_codes() {
        let code = |body: &str| parse(body).unwrap_err().code();
        assert_eq!(code(r#"{"language": "py"#), "malformed_json");
        assert_eq!(code(r#"{"language": 1, "code": "x"}"#), "invalid_type");
        assert_eq!(code(r#"{"language": null, "code": "x"}"#), "invalid_type");
        assert_eq!(code(r#"["python", "print(1)"]"#), "invalid_type");
        assert_eq!(code(""), "malformed_json");
        assert_eq!(code("[1,"), "malformed_json");
        assert_eq!(
            code(r#"{"language": "python", "code": "x"} trailing"#),
            "malformed_json"
        );
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "cod": 1}"#).unwrap_err(),
            ApiError::UnknownField("cod".into())
        );
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "files": [{"name": "a", "content": "", "mode": 1}]}"#)
                .unwrap_err(),
            ApiError::UnknownField("mode".into())
        );
        // An unknown field is named before its value is read, however deep.
        let deep = format!(r#"{{"language": "python", "zzz": {}"#, "[".repeat(100_000));
        assert_eq!(
            parse(&deep).unwrap_err(),
            ApiError::UnknownField("zzz".into())
        );
        let deep = format!(
            r#"{{"language": "python", "code": "x", "stdin": {}"#,
            "[".repeat(100_000)
        );
        assert_eq!(parse(&deep).unwrap_err().code(), "invalid_type");
        assert_eq!(
            parse(r#"{"language": "python", "code": "x", "files": [{"name": "a"}]}"#).unwrap_err(),
            ApiError::InvalidField {
                field: "content".into(),
                message: "is required in every file".into()
            }
        );
    }
}
