//! The answers of `POST /run-code`: a run's ([`RunResponse`]) and a
//! batch's ([`BatchResponse`]), each stage as a [`StageReport`].

use serde::Serialize;
use utoipa::openapi::schema::OneOfBuilder;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::super::answer::{collect, reference};
use crate::job::Stage;
use crate::judging::{Judged, Judgement};
use crate::limits::Limits;
use crate::outcome::{FilesBack, LimitHit, Outcome, StageResult, Status, StreamKind};
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
    /// The files brought back (`outputs`), in the order of their paths;
    /// absent when the request asked for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) files: Option<Vec<FileReport>>,
    /// The files that matched `outputs` but were left out, and why; absent
    /// when the request asked for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) omitted_files: Option<Vec<OmittedReport>>,
    /// How many more were left out than `omitted_files` lists (it lists
    /// 256 at most); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) more_omitted_files: Option<u64>,
}

/// A file brought back from the run's working directory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct FileReport {
    /// Its path under the working directory.
    #[schema(example = "plot.png")]
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its media type, from its name's extension
    /// (`application/octet-stream` when unknown).
    #[schema(example = "image/png")]
    pub(crate) media_type: String,
    /// Its bytes, in base64 (RFC 4648, with padding).
    pub(crate) content: String,
}

/// A file that matched `outputs` and was left out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct OmittedReport {
    /// Its path under the working directory.
    pub(crate) name: String,
    /// Its size in bytes (0 for what is not a regular file).
    pub(crate) size: u64,
    /// `max_files` or `max_bytes` (over the server's caps), `symlink` (a
    /// link is never followed), `not_a_file` (a FIFO, socket or device),
    /// `unreadable`, `bad_name` (a name with a control character or not
    /// UTF-8), `too_deep` (below 16 folders), or `max_entries` (the walk
    /// looks at 10000 entries at most; on the folder where it stopped).
    #[schema(example = "max_bytes")]
    pub(crate) reason: String,
}

impl From<&FilesBack> for StageReport {
    /// The `files` fields alone.
    fn from(back: &FilesBack) -> Self {
        use base64::Engine;
        let files = back
            .files
            .iter()
            .map(|f| FileReport {
                name: f.name.clone(),
                size: f.content.len() as u64,
                media_type: mime_guess::from_path(&f.name)
                    .first_or_octet_stream()
                    .essence_str()
                    .to_string(),
                content: base64::engine::general_purpose::STANDARD.encode(&f.content),
            })
            .collect();
        let omitted = back
            .omitted
            .iter()
            .map(|o| OmittedReport {
                name: o.name.clone(),
                size: o.size,
                reason: o.reason.clone(),
            })
            .collect();
        StageReport {
            files: Some(files),
            omitted_files: Some(omitted),
            more_omitted_files: (back.more_omitted > 0).then_some(back.more_omitted),
            ..StageReport::default()
        }
    }
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
        let back = stage
            .files
            .as_deref()
            .map(StageReport::from)
            .unwrap_or_default();
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
            ..back
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
    /// `ok` when the tests ran and were judged; else the compile's failure
    /// (`compile_error`, or the limit the compiler hit), or
    /// `checker_error` when the checker or interactor did not compile or
    /// failed on a test (never the program's fault).
    pub(crate) status: &'static str,
    /// The compile stage, once, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compile: Option<StageReport>,
    /// The checker's or interactor's compile stage, once, when it compiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checker_compile: Option<StageReport>,
    /// Each test's result, in the order sent (none when a compile failed).
    pub(crate) tests: Vec<TestReport>,
    pub(crate) summary: Summary,
    /// The compiler's output, or the limit it hit, when a compile failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// One test's result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct TestReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// `accepted`, `wrong_answer`, `presentation_error`, `partial` or
    /// `checker_error` when judged; the run's own status (`timeout`,
    /// `runtime_error`...) when it did not end `ok` (docs/judging.md).
    /// Absent for a test with no `expected_output`, checker or
    /// interactor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verdict: Option<&'static str>,
    /// A `partial` verdict's score, as the checker gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) score: Option<f64>,
    /// What the checker or interactor said (its stderr, trimmed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checker_message: Option<String>,
    /// The checker's or interactor's run for this test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checker: Option<StageReport>,
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
    pub(crate) fn new(judged: &Judged, names: &[Option<String>]) -> Self {
        let (compile, tests, mut status, mut error) = match &judged.solution {
            None => (None, Vec::new(), "ok", None),
            Some(report) => solution_part(report, judged, names),
        };
        let checker_compile = match judged.judge.as_ref().map(|r| (&r.outcome, r)) {
            Some((Outcome::Ran { compile, .. }, _)) => compile.as_ref(),
            Some((Outcome::CompileFailed { compile }, report)) => {
                let limits = report.limits.compile.as_ref().unwrap_or(&report.limits.run);
                error = Some(format!(
                    "The {} did not compile: {}",
                    judged.judged_by,
                    compile_error(compile, limits)
                ));
                Some(compile)
            }
            None => None,
        };
        if status == "ok" && judged.judge_failed() {
            status = "checker_error";
        }
        let passed = tests
            .iter()
            .filter(|t| t.verdict == Some("accepted"))
            .count();
        BatchResponse {
            language: judged.language.name.clone(),
            version: judged.language.version.clone(),
            status,
            compile,
            checker_compile: checker_compile.map(StageReport::from),
            summary: Summary {
                passed,
                total: names.len(),
            },
            tests,
            error,
        }
    }
}

type SolutionPart = (
    Option<StageReport>,
    Vec<TestReport>,
    &'static str,
    Option<String>,
);

/// The program's part of a batch's answer: its compile, its tests with
/// their judgements, its status and error.
fn solution_part(report: &Report, judged: &Judged, names: &[Option<String>]) -> SolutionPart {
    let limits = &report.limits;
    let compile_limits = limits.compile.as_ref().unwrap_or(&limits.run);
    match &report.outcome {
        Outcome::Ran { compile, runs } => {
            let tests = (runs.iter().enumerate())
                .map(|(i, result)| {
                    let judgement = judged.tests.get(i).cloned().unwrap_or_default();
                    test_report(result, names[i].clone(), judgement)
                })
                .collect();
            (compile.as_ref().map(StageReport::from), tests, "ok", None)
        }
        Outcome::CompileFailed { compile } => (
            Some(StageReport::from(compile)),
            Vec::new(),
            compile_failure(compile),
            Some(compile_error(compile, compile_limits)),
        ),
    }
}

fn test_report(result: &StageResult, name: Option<String>, judgement: Judgement) -> TestReport {
    TestReport {
        name,
        verdict: judgement.verdict.map(|v| v.as_str()),
        score: judgement.score,
        checker_message: judgement.message,
        checker: judgement.judge.as_ref().map(StageReport::from),
        run: StageReport::from(result),
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
