//! A Judge0 submission request, read as Judge0 1.13.1 reads it (Rails:
//! numbers may come as numbers or numeric strings, an integer field takes
//! a float, unknown keys are ignored), checked with Judge0's rules and
//! messages (`app/models/submission.rb`), then turned into a [`Job`] of
//! the one pipeline. A client may only tighten the language's own limits,
//! never loosen them (the lesson of Judge0's CVE-2024-29021).

use std::io::Read;

use base64::Engine as _;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::RequestBounds;
use crate::job::{Client, Field, Job, JobError, JobRequest, RunInput, Stage, Stderr, Streams};
use crate::language::{Language, Registry};
use crate::limits::{Limit, LimitsOverride};
use crate::text::clip;

/// Validation errors in Judge0's shape: each field with its messages, in
/// the order the checks ran (answered with HTTP 422).
pub(crate) type Errors = IndexMap<String, Vec<String>>;

/// Largest `compiler_options` and `command_line_arguments`, in characters
/// (Judge0's `length: { maximum: 512 }`).
const MAX_OPTIONS_CHARS: usize = 512;
/// Judge0's bounds that do not come from the language: `cpu_extra_time`
/// (s), `stack_limit` (KiB), `number_of_runs`.
pub(crate) const MAX_CPU_EXTRA_TIME: f64 = 5.0;
pub(crate) const MAX_STACK_LIMIT: i64 = 128_000;
pub(crate) const MAX_NUMBER_OF_RUNS: i64 = 20;
/// Judge0's id of its multi-file program: a submission of it has no
/// `source_code`, and its `additional_files` hold the scripts it runs:
/// `run`, and `compile` when it compiles (see [`Submission::job`]).
pub(crate) const MULTI_FILE: i64 = 89;
/// The script a multi-file program runs, written as its main source.
const RUN_SCRIPT: &str = "run";
/// Judge0's defaults for `cpu_extra_time` (s) and `stack_limit` (KiB).
pub(crate) const CPU_EXTRA_TIME: f64 = 1.0;
pub(crate) const STACK_LIMIT: i64 = 64_000;

/// A submission: what a client sends (`POST /judge0/submissions`), and,
/// checked, with every limit decided (the language's own where the
/// request left one out; a request may only lower them), what is stored
/// as JSON (byte fields in base64) until a worker runs it. Numbers may be
/// sent as numeric strings, and text fields are base64 with
/// `base64_encoded=true` (`additional_files` always is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Submission {
    #[schema(example = 71)]
    pub(crate) language_id: i64,
    #[serde(with = "bytes")]
    #[schema(value_type = String, example = "print(1)")]
    pub(crate) source_code: Vec<u8>,
    #[serde(with = "opt_bytes")]
    #[schema(value_type = Option<String>)]
    pub(crate) stdin: Option<Vec<u8>>,
    #[serde(with = "opt_bytes")]
    #[schema(value_type = Option<String>)]
    pub(crate) expected_output: Option<Vec<u8>>,
    pub(crate) compiler_options: Option<String>,
    pub(crate) command_line_arguments: Option<String>,
    /// CPU time, s: past it the verdict is Time Limit Exceeded.
    #[schema(required = false)]
    pub(crate) cpu_time_limit: f64,
    /// CPU time past `cpu_time_limit` the program may run before it is
    /// stopped (still Time Limit Exceeded), s.
    #[schema(required = false)]
    pub(crate) cpu_extra_time: f64,
    /// Wall-clock time, s.
    #[schema(required = false)]
    pub(crate) wall_time_limit: f64,
    /// Memory, KiB.
    #[schema(required = false)]
    pub(crate) memory_limit: i64,
    /// Stack, KiB: accepted and bounded, counted within `memory_limit`.
    #[schema(required = false)]
    pub(crate) stack_limit: i64,
    #[schema(required = false)]
    pub(crate) max_processes_and_or_threads: i64,
    /// Largest file the program may write, and largest output, KiB.
    #[schema(required = false)]
    pub(crate) max_file_size: i64,
    #[schema(required = false)]
    pub(crate) number_of_runs: i64,
    #[schema(required = false)]
    pub(crate) redirect_stderr_to_stdout: bool,
    pub(crate) callback_url: Option<String>,
    /// A zip of files written beside the source, in base64.
    #[serde(with = "opt_bytes")]
    #[schema(value_type = Option<String>)]
    pub(crate) additional_files: Option<Vec<u8>>,
}

/// What the request may use beyond the language's limits.
#[derive(Debug, Clone)]
pub(crate) struct Allowances<'a> {
    /// The size bounds of every request.
    pub(crate) bounds: &'a RequestBounds,
    /// The `host:port`s a `callback_url` may name.
    pub(crate) callback_hosts: &'a [crate::config::CallbackHost],
    /// Who stored submissions run as (the check builds their job).
    pub(crate) client: &'a Client,
}

/// A value of the request, read the way Rails casts it.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "1" => Some(true),
        Value::String(s) if s == "false" || s == "0" || s.is_empty() => Some(false),
        Value::Number(n) if n.as_i64() == Some(1) => Some(true),
        Value::Number(n) if n.as_i64() == Some(0) => Some(false),
        _ => None,
    }
}

/// A text field: a string, or absent (`null`). Numbers are taken as their
/// text, as Rails does.
fn text(value: &Value) -> Result<Option<String>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(()),
    }
}

/// Decodes base64 as Ruby's `Base64.decode64` does: characters outside the
/// alphabet (newlines) are skipped, and it never fails.
pub(crate) fn decode_lenient(text: &str) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
        .collect();
    let usable = clean.len() - clean.len() % 4;
    let mut out = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean[..usable])
        .unwrap_or_default();
    let rest = &clean[usable..];
    if rest.len() >= 2 {
        let padded = format!("{rest}{}", "=".repeat(4 - rest.len()));
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(padded)
                .unwrap_or_default(),
        );
    }
    out
}

struct Checker {
    errors: Errors,
}

impl Checker {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    /// A number field: absent is `None`; out of `[min, max]` (or not a
    /// number) is an error in Judge0's words.
    fn number(
        &mut self,
        body: &Value,
        field: &str,
        min: (f64, bool),
        max: f64,
        show: impl Fn(f64) -> String,
    ) -> Option<f64> {
        let value = &body[field];
        if value.is_null() {
            return None;
        }
        let Some(n) = number(value) else {
            self.add(field, "is not a number");
            return None;
        };
        let (low, inclusive) = min;
        if inclusive && n < low {
            self.add(
                field,
                format!("must be greater than or equal to {}", show(low)),
            );
            None
        } else if !inclusive && n <= low {
            self.add(field, format!("must be greater than {}", show(low)));
            None
        } else if n > max {
            self.add(
                field,
                format!("must be less than or equal to {}", show(max)),
            );
            None
        } else {
            Some(n)
        }
    }

    /// A text field's bytes: its text, or what its base64 stands for.
    fn bytes(&mut self, body: &Value, field: &str, base64: bool) -> Option<Vec<u8>> {
        let value = self.text(body, field)?;
        Some(match base64 {
            true => decode_lenient(&value),
            false => value.into_bytes(),
        })
    }

    /// `source_code`: present, but for Judge0's multi-file program (when a
    /// language file gives it), which takes its scripts from
    /// `additional_files` and must have none; whether it is one, and the
    /// source.
    fn source_code(
        &mut self,
        body: &Value,
        base64: bool,
        registry: &Registry,
    ) -> (bool, Option<Vec<u8>>) {
        let project = number(&body["language_id"]) == Some(MULTI_FILE as f64)
            && registry.by_judge0_id(MULTI_FILE).is_some();
        let source = self
            .bytes(body, "source_code", base64)
            .filter(|s| !s.is_empty());
        match (project, &source) {
            (false, None) => self.add("source_code", "can't be blank"),
            (true, Some(_)) => self.add("source_code", "must be blank"),
            _ => {}
        }
        (project, source)
    }

    /// `language_id`: present and a number.
    fn language_id(&mut self, body: &Value) -> Option<i64> {
        match &body["language_id"] {
            Value::Null => {
                self.add("language_id", "can't be blank");
                None
            }
            value => number(value).map(|n| n as i64).or_else(|| {
                self.add("language_id", "is not a number");
                None
            }),
        }
    }

    /// The limits asked, each within Judge0's bounds and the language's
    /// `ceilings`; the per-process options, refused when enabled.
    fn limits(&mut self, body: &Value, ceilings: &Ceilings) -> Asked {
        let max_runs = MAX_NUMBER_OF_RUNS as f64;
        let max_stack = MAX_STACK_LIMIT as f64;
        let asked = Asked {
            runs: self.number(body, "number_of_runs", (0.0, false), max_runs, integer),
            cpu: self.number(body, "cpu_time_limit", (0.0, true), ceilings.cpu, decimal),
            extra: self.number(
                body,
                "cpu_extra_time",
                (0.0, true),
                MAX_CPU_EXTRA_TIME,
                decimal,
            ),
            wall: self.number(body, "wall_time_limit", (1.0, true), ceilings.wall, decimal),
            memory: self.number(
                body,
                "memory_limit",
                (16.0 * 1024.0, true),
                ceilings.memory,
                integer,
            ),
            stack: self.number(body, "stack_limit", (0.0, true), max_stack, integer),
            pids: self.number(
                body,
                "max_processes_and_or_threads",
                (8.0, true),
                ceilings.pids,
                integer,
            ),
            file_size: None,
        };
        for field in [
            "enable_per_process_and_thread_time_limit",
            "enable_per_process_and_thread_memory_limit",
        ] {
            if self.flag(body, field) {
                self.add(field, "this option cannot be enabled");
            }
        }
        let file_size = self.number(body, "max_file_size", (1.0, true), ceilings.file, integer);
        Asked { file_size, ..asked }
    }

    /// The options and extras: their lengths, the language they need, the
    /// callback's host.
    fn options(
        &mut self,
        body: &Value,
        language_id: Option<i64>,
        language: Option<&Language>,
        allow: &Allowances,
    ) -> Options {
        let compiler_options = self
            .text(body, "compiler_options")
            .filter(|s| !s.trim().is_empty());
        let command_line_arguments = self
            .text(body, "command_line_arguments")
            .filter(|s| !s.is_empty());
        for (field, value) in [
            ("compiler_options", &compiler_options),
            ("command_line_arguments", &command_line_arguments),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_OPTIONS_CHARS)
            {
                self.add(field, "is too long (maximum is 512 characters)");
            }
        }
        // Judge0's multi-file program has no compile command of its own.
        let compiles = |l: &Language| l.compile.is_some() && l.judge0_id != Some(MULTI_FILE);
        match (language_id, language) {
            (Some(id), None) => self.add(
                "language_id",
                format!("language with id {id} doesn't exist"),
            ),
            (_, Some(l)) if compiler_options.is_some() && !compiles(l) => self.add(
                "compiler_options",
                "setting compiler options is only allowed for compiled languages",
            ),
            _ => {}
        }
        let callback_url = self
            .text(body, "callback_url")
            .filter(|s| !s.trim().is_empty());
        if let Some(url) = &callback_url
            && let Err(why) = crate::judge0::callback::allowed(url, allow.callback_hosts)
        {
            self.add("callback_url", why);
        }
        let additional_files = self
            .text(body, "additional_files")
            .filter(|s| !s.is_empty())
            .map(|s| decode_lenient(&s));
        let most = allow.bounds.max_code_bytes;
        let files = additional_files.as_deref();
        self.at_most("additional_files", files, most, "requests.max_code_bytes");
        Options {
            compiler_options,
            command_line_arguments,
            callback_url,
            additional_files,
        }
    }

    /// A stored field's bytes within `limit`: what is kept as sent is
    /// bounded as what it stands for is (security review 3, M4).
    fn at_most(&mut self, field: &str, value: Option<&[u8]>, limit: usize, what: &str) {
        if let Some(value) = value.filter(|v| v.len() > limit) {
            let got = value.len();
            self.add(
                field,
                format!("is {got} bytes, more than the limit of {limit} bytes ({what})"),
            );
        }
    }

    fn flag(&mut self, body: &Value, field: &str) -> bool {
        match &body[field] {
            Value::Null => false,
            value => boolean(value).unwrap_or_else(|| {
                self.add(field, "is not a boolean");
                false
            }),
        }
    }

    fn text(&mut self, body: &Value, field: &str) -> Option<String> {
        text(&body[field]).unwrap_or_else(|()| {
            self.add(field, "is not a string");
            None
        })
    }
}

/// Ruby's decimal form of a limit in an error message (`15.0`, `0.5`).
pub(crate) fn decimal(n: f64) -> String {
    let text = format!("{:.3}", n);
    let text = text.trim_end_matches('0');
    if text.ends_with('.') {
        format!("{text}0")
    } else {
        text.to_string()
    }
}

fn integer(n: f64) -> String {
    format!("{}", n as i64)
}

/// A language's own limits in Judge0's units (seconds, KB, KB of file),
/// the most a submission may ask (the defaults of a language not found do
/// not matter: it is refused).
struct Ceilings {
    cpu: f64,
    wall: f64,
    memory: f64,
    pids: f64,
    file: f64,
}

impl Ceilings {
    fn of(language: Option<&Language>) -> Ceilings {
        let limits = language.map(|l| l.limits.clone()).unwrap_or_default();
        Ceilings {
            cpu: limits.cpu_time_ms as f64 / 1000.0,
            wall: limits.wall_time_ms as f64 / 1000.0,
            memory: (limits.memory_mb * 1024) as f64,
            pids: limits.pids as f64,
            file: (limits.scratch_mb * 1024).min(limits.output_bytes.div_ceil(1024)) as f64,
        }
    }
}

/// The limits a submission asks for, checked (`None`: not given).
struct Asked {
    runs: Option<f64>,
    cpu: Option<f64>,
    extra: Option<f64>,
    wall: Option<f64>,
    memory: Option<f64>,
    stack: Option<f64>,
    pids: Option<f64>,
    file_size: Option<f64>,
}

/// A submission's options and extras, checked.
struct Options {
    compiler_options: Option<String>,
    command_line_arguments: Option<String>,
    callback_url: Option<String>,
    additional_files: Option<Vec<u8>>,
}

/// The fields of a submission read and checked, before its limits.
struct Fields {
    language_id: i64,
    source_code: Vec<u8>,
    stdin: Option<Vec<u8>>,
    expected_output: Option<Vec<u8>>,
    options: Options,
    redirect: bool,
}

impl Submission {
    /// Reads and checks one submission (a JSON object) against the
    /// languages of `registry`; byte fields are base64 when `base64` says
    /// so (`additional_files` always is).
    pub(crate) fn parse(
        body: &Value,
        base64: bool,
        registry: &Registry,
        allow: &Allowances,
    ) -> Result<Submission, Errors> {
        if !body.is_object() {
            let mut errors = Errors::new();
            errors.insert("submission".into(), vec!["is not a JSON object".into()]);
            return Err(errors);
        }
        let mut c = Checker {
            errors: Errors::new(),
        };
        let (project, source_code) = c.source_code(body, base64, registry);
        let language_id = c.language_id(body);
        let language = language_id.and_then(|id| registry.by_judge0_id(id));
        let ceilings = Ceilings::of(language.as_deref());
        let asked = c.limits(body, &ceilings);
        let options = c.options(body, language_id, language.as_deref(), allow);
        if project && options.additional_files.is_none() {
            c.add("additional_files", "can't be blank");
        }
        if c.flag(body, "enable_network") {
            c.add("enable_network", "enabling network is not allowed");
        }
        let redirect = c.flag(body, "redirect_stderr_to_stdout");
        let stdin = c.bytes(body, "stdin", base64);
        let expected_output = c.bytes(body, "expected_output", base64);
        let most = allow.bounds.max_stdin_bytes;
        let expected = expected_output.as_deref();
        c.at_most(
            "expected_output",
            expected,
            most,
            "requests.max_stdin_bytes",
        );
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        let read = Fields {
            language_id: language_id.expect("checked"),
            // Checked: present, or (a multi-file program) absent.
            source_code: source_code.unwrap_or_default(),
            stdin,
            expected_output,
            options,
            redirect,
        };
        let submission = Submission::assemble(read, &asked, &ceilings);
        // What the pipeline refuses (sizes, file names, options) is
        // refused now, not when a worker takes it.
        submission
            .job(registry, allow.bounds, allow.client.clone())
            .map_err(|(field, message)| {
                let mut errors = Errors::new();
                errors.insert(field, vec![message]);
                errors
            })?;
        Ok(submission)
    }

    /// A submission of the fields `read`, with the limits `asked` (each
    /// within the language's `ceilings`, or the ceiling when not asked).
    fn assemble(read: Fields, asked: &Asked, ceilings: &Ceilings) -> Submission {
        let cpu_time_limit = asked.cpu.unwrap_or(ceilings.cpu);
        Submission {
            language_id: read.language_id,
            source_code: read.source_code,
            stdin: read.stdin,
            expected_output: read.expected_output,
            compiler_options: read.options.compiler_options,
            command_line_arguments: read.options.command_line_arguments,
            cpu_time_limit,
            // Within the language's CPU limit, whatever is asked.
            cpu_extra_time: asked
                .extra
                .unwrap_or(CPU_EXTRA_TIME)
                .min((ceilings.cpu - cpu_time_limit).max(0.0)),
            wall_time_limit: asked.wall.unwrap_or(ceilings.wall),
            memory_limit: asked.memory.map_or(ceilings.memory as i64, |m| m as i64),
            stack_limit: asked.stack.map_or(STACK_LIMIT, |s| s as i64),
            max_processes_and_or_threads: asked.pids.map_or(ceilings.pids as i64, |p| p as i64),
            max_file_size: asked.file_size.map_or(ceilings.file as i64, |f| f as i64),
            number_of_runs: asked.runs.map_or(1, |r| r as i64),
            redirect_stderr_to_stdout: read.redirect,
            callback_url: read.options.callback_url,
            additional_files: read.options.additional_files,
        }
    }

    /// The job that runs this submission (`number_of_runs` tests when more
    /// than one), or the field at fault and why. A multi-file program's
    /// `run` script is its main source (its language's `source_file`),
    /// and the other files of its zip, `compile` among them, go beside.
    pub(crate) fn job(
        &self,
        registry: &Registry,
        bounds: &RequestBounds,
        client: Client,
    ) -> Result<Job, (String, String)> {
        let language = registry.by_judge0_id(self.language_id).ok_or_else(|| {
            (
                "language_id".to_string(),
                format!("language with id {} doesn't exist", self.language_id),
            )
        })?;
        let args = words("command_line_arguments", &self.command_line_arguments)?;
        let compile_args = words("compiler_options", &self.compiler_options)?;
        let mut extra = match &self.additional_files {
            Some(zip) => unzip(zip, bounds).map_err(|e| ("additional_files".to_string(), e))?,
            None => Vec::new(),
        };
        let main = if self.language_id == MULTI_FILE {
            let run = extra.iter().position(|(name, _)| name == RUN_SCRIPT);
            let run = run.ok_or_else(|| {
                let why = format!("has no `{RUN_SCRIPT}` script, which a multi-file program runs");
                ("additional_files".to_string(), why)
            })?;
            extra.remove(run).1
        } else {
            self.source_code.clone()
        };
        let stdin = self.stdin.clone().unwrap_or_default();
        let tests = if self.number_of_runs > 1 {
            vec![
                RunInput {
                    stdin: stdin.clone(),
                    args: args.clone(),
                    files: Vec::new(),
                };
                self.number_of_runs as usize
            ]
        } else {
            Vec::new()
        };
        let run_limits = self.run_limits(&language);
        let request = JobRequest {
            language: language.name.clone(),
            version: Some(format!("={}", language.semver)),
            main,
            extra,
            args,
            compile_args,
            stdin,
            run_limits,
            compile_limits: LimitsOverride::default(),
            tests,
            streams: self.streams(),
            outputs: Vec::new(),
        };
        request
            .into_job(registry, bounds, client)
            .map_err(|e| refusal(e, &language))
    }

    /// Where each stage's stderr goes, as Judge0's worker sends it
    /// (`isolate_job.rb`): a compile's always into its one output
    /// (`compile_output`, isolate's `--stderr-to-stdout`), a run's into
    /// stdout when `redirect_stderr_to_stdout` asks.
    fn streams(&self) -> Streams {
        Streams {
            compile: Stderr::Merged,
            run: if self.redirect_stderr_to_stdout {
                Stderr::Merged
            } else {
                Stderr::Apart
            },
        }
    }

    /// The submission's limits as the run's, each within `language`'s:
    /// CPU time with Judge0's extra time, wall time, memory and processes,
    /// and `max_file_size` as both the scratch space and the output cap.
    fn run_limits(&self, language: &Language) -> LimitsOverride {
        let kib = |k: i64| (k as u64).div_ceil(1024);
        LimitsOverride {
            cpu_time_ms: Some(((self.cpu_time_limit + self.cpu_extra_time) * 1000.0).ceil() as u64)
                .map(|ms| ms.clamp(10, language.limits.cpu_time_ms)),
            wall_time_ms: Some((self.wall_time_limit * 1000.0).ceil() as u64),
            memory_mb: Some(kib(self.memory_limit)),
            pids: Some(self.max_processes_and_or_threads as u64),
            scratch_mb: Some(
                kib(self.max_file_size)
                    .max(1)
                    .min(language.limits.scratch_mb),
            ),
            output_bytes: Some(
                (self.max_file_size as u64 * 1024).min(language.limits.output_bytes),
            ),
            ..LimitsOverride::default()
        }
    }
}

/// `text` split into words as a shell would (never run by one), or the
/// field at fault and why.
fn words(field: &str, text: &Option<String>) -> Result<Vec<String>, (String, String)> {
    let split = text.as_deref().map(shell_words::split).transpose();
    split.map(Option::unwrap_or_default).map_err(|e| {
        (
            field.to_string(),
            format!("cannot be split into words: {e}"),
        )
    })
}

/// A refusal of the pipeline, on the Judge0 field at fault.
fn refusal(e: JobError, language: &Language) -> (String, String) {
    let field = |field: Field| match field {
        Field::Main => "source_code",
        Field::Files => "additional_files",
        Field::Args => "command_line_arguments",
        Field::CompileArgs => "compiler_options",
        Field::Stdin => "stdin",
        Field::Outputs => "outputs",
        Field::Tests => "number_of_runs",
        Field::Limit(Stage::Run, Limit::cpu_time_ms) => "cpu_time_limit",
        Field::Limit(Stage::Run, Limit::wall_time_ms) => "wall_time_limit",
        Field::Limit(Stage::Run, Limit::memory_mb) => "memory_limit",
        Field::Limit(Stage::Run, Limit::pids) => "max_processes_and_or_threads",
        Field::Limit(..) => "max_file_size",
    };
    match e {
        JobError::TooLarge { field: f, message } | JobError::Invalid { field: f, message } => {
            (field(f).to_string(), message)
        }
        JobError::Language(lookup) => ("language_id".to_string(), lookup.to_string()),
        JobError::LimitRaised { raised, .. } => (
            "limits".to_string(),
            format!("{raised} for {}", language.judge0_name),
        ),
    }
}

/// The files of a zip archive (Judge0's `additional_files`), bounded by the
/// request's bounds: at most `max_files` files, `max_code_bytes` unpacked
/// in all, each name UTF-8 ([`utf8_name`]) and held by the pipeline to the
/// rule of every file name (`job::check_file_name`). Folders are skipped
/// (a file's path makes its folders).
pub(crate) fn unzip(data: &[u8], bounds: &RequestBounds) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("is not a zip archive: {e}"))?;
    if archive.len() > bounds.max_files * 2 + 16 {
        return Err(format!(
            "has {} entries, more than the limit of {} files",
            archive.len(),
            bounds.max_files
        ));
    }
    let mut files = Vec::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("has an entry that cannot be read: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = utf8_name(entry.name_raw())?;
        if files.len() == bounds.max_files {
            return Err(format!(
                "has more than the limit of {} files",
                bounds.max_files
            ));
        }
        // Read at most what is left of the bound, plus one byte to tell.
        let room = bounds.max_code_bytes.saturating_sub(total);
        let mut content = Vec::new();
        (&mut entry)
            .take(room as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| {
                format!(
                    "has an entry ({:?}) that cannot be unpacked: {e}",
                    clip(&name)
                )
            })?;
        if content.len() > room {
            return Err(format!(
                "unpacks to more than the limit of {} bytes",
                bounds.max_code_bytes
            ));
        }
        total += content.len();
        files.push((name, content));
    }
    Ok(files)
}

/// An entry's name as the archive holds it (or as its Info-ZIP Unicode
/// path field gives it), which must be UTF-8: a name in another encoding
/// (an old archiver's code page) is refused, never guessed.
fn utf8_name(raw: &[u8]) -> Result<String, String> {
    match std::str::from_utf8(raw) {
        Ok(name) => Ok(name.to_string()),
        Err(_) => Err(format!(
            "has an entry whose name is not UTF-8 ({:?} read as UTF-8); zip the files with UTF-8 names",
            clip(&String::from_utf8_lossy(raw))
        )),
    }
}

mod bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::bytes::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::bytes")] Vec<u8>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
