//! The answers of `POST /run-code`: a run's ([`RunResponse`]) and a
//! batch's ([`BatchResponse`]), each stage as a [`StageReport`].

use serde::Serialize;
use utoipa::openapi::schema::OneOfBuilder;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::super::answer::{collect, reference};
use super::request::Checks;
use crate::checker::Verdict;
use crate::job::Stage;
use crate::limits::Limits;
use crate::outcome::{LimitHit, Outcome, StageResult, Status, StreamKind};
use crate::runner::Report;

/// `POST /run-code`'s answer in the API's document: a [`RunResponse`] or,
/// for a request with `tests`, a [`BatchResponse`]. The handler writes
/// each as itself; this names their union (`oneOf`: a run's answer has no
/// `tests`, a batch's no `exit_code`).
pub(crate) struct RunAnswer;

impl PartialSchema for RunAnswer {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(reference::<RunResponse>())
            .item(reference::<BatchResponse>())
            .into()
    }
}

impl ToSchema for RunAnswer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        collect::<RunResponse>(schemas);
        collect::<BatchResponse>(schemas);
    }
}

/// The answer to a run, whatever the program did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct RunResponse {
    pub(crate) language: String,
    pub(crate) version: String,
    /// The run (empty, with the compile's status, when the compile failed).
    #[serde(flatten)]
    pub(crate) run: StageReport,
    /// The compile stage, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compile: Option<StageReport>,
    /// For clients of the earlier service: the stdout, when the status is `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<String>,
    /// For clients of the earlier service: the stderr, or a sentence naming
    /// the limit that was hit, when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// What a stage (the run, or the compile) did, on the wire.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct StageReport {
    /// `ok`, `runtime_error`, `timeout`, `memory_limit`, `output_limit`, or
    /// (a run whose compile failed) `compile_error`.
    pub(crate) status: &'static str,
    /// The exit status; 128+N when signal N ended the program.
    pub(crate) exit_code: Option<i64>,
    /// The name of the signal that ended it, if one did.
    pub(crate) signal: Option<String>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Whether a stream was cut at its cap.
    pub(crate) truncated: bool,
    /// Wall-clock time from the start of the program to its end, in ms.
    pub(crate) duration_ms: u64,
    /// CPU time (user and system) of all the stage's processes, in ms;
    /// `null` where the sandbox's cgroup gives no figure.
    pub(crate) cpu_time_ms: Option<u64>,
    /// Peak memory of the stage's memory cgroup, in bytes (what the memory
    /// limit counts, its scratch space's page cache included); `null` where
    /// the sandbox's cgroup gives no figure.
    pub(crate) memory_peak_bytes: Option<u64>,
    /// The limit the stage was stopped at: `wall_time`, `cpu_time`,
    /// `memory` or `output`; `null` when none.
    pub(crate) limit: Option<&'static str>,
}

fn limit_name(limit: LimitHit) -> &'static str {
    match limit {
        LimitHit::WallTime => "wall_time",
        LimitHit::CpuTime => "cpu_time",
        LimitHit::Memory => "memory",
        LimitHit::Output(_) => "output",
    }
}

impl From<&StageResult> for StageReport {
    fn from(stage: &StageResult) -> Self {
        StageReport {
            status: stage.status().as_str(),
            exit_code: stage.exit.map(|e| e.status()),
            signal: stage.exit.and_then(|e| e.signal()).map(|s| s.to_string()),
            stdout: stage.stdout.clone(),
            stderr: stage.stderr.clone(),
            truncated: stage.truncated(),
            duration_ms: stage.duration.as_millis() as u64,
            cpu_time_ms: stage.usage.cpu_time.map(|d| d.as_millis() as u64),
            memory_peak_bytes: stage.usage.memory_peak,
            limit: stage.limit.map(limit_name),
        }
    }
}

/// The run's status when its compile failed: `compile_error`, or the
/// limit the compiler hit.
fn compile_failure(compile: &StageResult) -> &'static str {
    match compile.status() {
        Status::RuntimeError | Status::Ok => "compile_error",
        limit => limit.as_str(),
    }
}

impl RunResponse {
    pub(crate) fn new(report: &Report) -> Self {
        let limits = &report.limits;
        let (run, compile, output, error) = match &report.outcome {
            Outcome::Ran { compile, runs } => {
                let run = runs.first();
                let (output, error) = match run.status() {
                    Status::Ok => (Some(run.stdout.clone()), None),
                    _ => (None, Some(run_error(run, &limits.run))),
                };
                (StageReport::from(run), compile.as_ref(), output, error)
            }
            Outcome::CompileFailed { compile } => {
                let compile_limits = limits.compile.as_ref().unwrap_or(&limits.run);
                let error = compile_error(compile, compile_limits);
                let run = StageReport {
                    status: compile_failure(compile),
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

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchResponse {
    pub(crate) language: String,
    pub(crate) version: String,
    /// `ok` when the tests ran; else the compile's failure
    /// (`compile_error`, or the limit the compiler hit).
    pub(crate) status: &'static str,
    /// The compile stage, once, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compile: Option<StageReport>,
    /// Each test's result, in the order sent (none when the compile failed).
    pub(crate) tests: Vec<TestReport>,
    pub(crate) summary: Summary,
    /// The compiler's output, or the limit it hit, when the compile failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// One test's result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct TestReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// With an `expected_output`: `accepted` or `wrong_answer` when the run
    /// ended `ok`, else the run's own status (`timeout`, `runtime_error`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verdict: Option<&'static str>,
    #[serde(flatten)]
    pub(crate) run: StageReport,
}

/// How many tests passed (verdict `accepted`), of how many.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub(crate) struct Summary {
    pub(crate) passed: usize,
    pub(crate) total: usize,
}

impl BatchResponse {
    pub(crate) fn new(report: &Report, checks: &Checks) -> Self {
        let limits = &report.limits;
        let compile_limits = limits.compile.as_ref().unwrap_or(&limits.run);
        let (status, compile, tests, error) = match &report.outcome {
            Outcome::Ran { compile, runs } => {
                let tests: Vec<TestReport> = runs
                    .iter()
                    .enumerate()
                    .map(|(i, result)| test_report(result, i, checks))
                    .collect();
                ("ok", compile.as_ref(), tests, None)
            }
            Outcome::CompileFailed { compile } => {
                let error = compile_error(compile, compile_limits);
                (
                    compile_failure(compile),
                    Some(compile),
                    Vec::new(),
                    Some(error),
                )
            }
        };
        let passed = tests
            .iter()
            .filter(|t| t.verdict == Some("accepted"))
            .count();
        BatchResponse {
            language: report.language.name.clone(),
            version: report.language.version.clone(),
            status,
            compile: compile.map(StageReport::from),
            summary: Summary {
                passed,
                total: checks.names.len(),
            },
            tests,
            error,
        }
    }
}

fn test_report(result: &StageResult, i: usize, checks: &Checks) -> TestReport {
    let run = StageReport::from(result);
    let verdict = checks.expected[i].as_deref().map(|expected| {
        match (
            result.status(),
            checks.compare.judge(expected, &result.stdout),
        ) {
            (Status::Ok, Verdict::Accepted) => "accepted",
            (Status::Ok, Verdict::WrongAnswer) => "wrong_answer",
            _ => run.status,
        }
    });
    TestReport {
        name: checks.names[i].clone(),
        verdict,
        run,
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
