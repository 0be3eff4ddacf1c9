//! Wire types: the JSON the API reads and writes, kept apart from the
//! domain types they are turned into.

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use crate::executor::{Outcome, OutputStream, StageOutcome, Status};
use crate::language::Language;
use crate::limits::Limits;
use crate::validation::error;

/// The body of `POST /run-code`.
#[derive(Debug, Clone, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
#[validate(context = RequestBounds)]
pub struct RunRequest {
    /// A language's name or alias.
    #[validate(length(min = 1, max = 64))]
    pub language: String,
    /// The program, written to the language's source file.
    #[validate(custom(function = "check_code", use_context))]
    pub code: String,
    /// Given to the program on its standard input.
    #[serde(default)]
    #[validate(custom(function = "check_stdin", use_context))]
    pub stdin: Option<String>,
    /// Appended to the language's run command. (Named apart from `args`
    /// because validator's derive calls its context `args`.)
    #[serde(default, rename = "args")]
    #[validate(custom(function = "check_args", use_context))]
    pub arguments: Option<Vec<String>>,
    /// Files written beside the main source file, before any compile.
    #[serde(default)]
    #[validate(custom(function = "check_files", use_context))]
    pub files: Option<Vec<FileEntry>>,
    /// A wall-clock limit lower than the language's, in ms.
    #[serde(default)]
    #[validate(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

impl RunRequest {
    /// The bytes of `code` and of every file together.
    pub fn source_bytes(&self) -> usize {
        self.code.len()
            + self
                .files
                .iter()
                .flatten()
                .map(|f| f.content.len())
                .sum::<usize>()
    }
}

/// One extra file of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// A relative path in the working directory, such as `util.py` or
    /// `pkg/util.py`.
    pub name: String,
    pub content: String,
}

/// The name a client knows a field by, from the name validator reports.
pub fn wire_field(path: &str) -> &str {
    match path {
        "arguments" => "args",
        other => other,
    }
}

/// The size bounds a request is checked against (from the configuration).
#[derive(Debug, Clone)]
pub struct RequestBounds {
    pub max_code_bytes: usize,
    pub max_files: usize,
    pub max_stdin_bytes: usize,
    pub max_args: usize,
    pub max_arg_bytes: usize,
}

/// The validation code of a field over a size bound (answered with 413).
pub const TOO_LARGE: &str = "too_large";

/// A size error: "`{what}` {got}{unit}, more than the limit of {limit}{unit}".
fn too_large(what: &str, got: usize, limit: usize, unit: &str) -> ValidationError {
    error(
        TOO_LARGE,
        format!("{what} {got}{unit}, more than the limit of {limit}{unit}"),
    )
}

fn check_code(code: &str, bounds: &RequestBounds) -> Result<(), ValidationError> {
    if code.is_empty() {
        return Err(error("empty", "must not be empty"));
    }
    if code.len() > bounds.max_code_bytes {
        return Err(too_large("is", code.len(), bounds.max_code_bytes, " bytes"));
    }
    Ok(())
}

fn check_stdin(stdin: &str, bounds: &RequestBounds) -> Result<(), ValidationError> {
    if stdin.len() > bounds.max_stdin_bytes {
        return Err(too_large(
            "is",
            stdin.len(),
            bounds.max_stdin_bytes,
            " bytes",
        ));
    }
    Ok(())
}

fn check_args(args: &[String], bounds: &RequestBounds) -> Result<(), ValidationError> {
    if args.len() > bounds.max_args {
        return Err(too_large("has", args.len(), bounds.max_args, " arguments"));
    }
    if let Some((i, a)) = args
        .iter()
        .enumerate()
        .find(|(_, a)| a.len() > bounds.max_arg_bytes)
    {
        let what = format!("argument {i} is");
        return Err(too_large(&what, a.len(), bounds.max_arg_bytes, " bytes"));
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(error(
            "nul",
            format!("argument {i} contains a NUL byte, which a command line cannot carry"),
        ));
    }
    Ok(())
}

fn check_files(files: &[FileEntry], bounds: &RequestBounds) -> Result<(), ValidationError> {
    if files.len() > bounds.max_files {
        return Err(too_large("has", files.len(), bounds.max_files, " files"));
    }
    let mut seen = std::collections::HashSet::new();
    for file in files {
        check_file_name(&file.name).map_err(|why| {
            error(
                "file_name",
                format!("has a file named {:?}, which {why}", file.name),
            )
        })?;
        if !seen.insert(file.name.as_str()) {
            return Err(error(
                "file_name",
                format!("has two files named {:?}", file.name),
            ));
        }
    }
    for file in files {
        if let Some(folder) = folders_of(&file.name).find(|f| seen.contains(f)) {
            return Err(error(
                "file_name",
                format!(
                    "has a file named {:?} and a file named {folder:?}, which would have to be a folder",
                    file.name
                ),
            ));
        }
    }
    Ok(())
}

/// The folders a relative path lies in: `a/b/c` gives `a` and `a/b`.
pub fn folders_of(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

/// Why `name` is not a plain relative path of safe characters, if it is not.
pub fn check_file_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 bytes long");
    }
    if name.starts_with('/') {
        return Err("is an absolute path; names are relative to the working directory");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 8 {
        return Err("is more than 8 folders deep");
    }
    for part in parts {
        match part {
            "" => return Err("has an empty path component"),
            "." | ".." => return Err("has a `.` or `..` component"),
            p if p.starts_with('-') => return Err("has a component starting with `-`"),
            p if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b)) =>
            {
                return Err("may only hold A-Z, a-z, 0-9, `.`, `_`, `+`, `-` and `/`");
            }
            _ => {}
        }
    }
    Ok(())
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

/// What a stage (the run, or the compile) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageReport {
    pub status: Status,
    pub exit_code: Option<i64>,
    pub signal: Option<&'static str>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub duration_ms: u64,
}

impl From<&StageOutcome> for StageReport {
    fn from(o: &StageOutcome) -> Self {
        StageReport {
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal,
            stdout: o.stdout.clone(),
            stderr: o.stderr.clone(),
            truncated: o.truncated,
            duration_ms: o.duration.as_millis() as u64,
        }
    }
}

impl RunResponse {
    pub fn new(language: &Language, wall_time_ms: u64, outcome: Outcome) -> Self {
        let compile = outcome.compile.as_ref().map(StageReport::from);
        let (run, output, error) = match (outcome.compile, outcome.run) {
            (_, Some(run)) => {
                let (output, error) = match run.status {
                    Status::Ok => (Some(run.stdout.clone()), None),
                    _ => (None, Some(run_error(&run, &language.limits, wall_time_ms))),
                };
                (StageReport::from(&run), output, error)
            }
            (Some(compile), None) => {
                let status = match compile.status {
                    Status::RuntimeError | Status::Ok => Status::CompileError,
                    limit => limit,
                };
                let error = compile_error(&compile, &language.compile_limits);
                (StageReport::not_run(status), None, Some(error))
            }
            (None, None) => {
                let error = "The program did not run.".to_string();
                (
                    StageReport::not_run(Status::RuntimeError),
                    None,
                    Some(error),
                )
            }
        };
        RunResponse {
            language: language.name.clone(),
            version: language.version.clone(),
            run,
            compile,
            output,
            error,
        }
    }
}

impl StageReport {
    /// A stage that did not run, with the status that says why.
    fn not_run(status: Status) -> StageReport {
        StageReport {
            status,
            ..StageReport::default()
        }
    }
}

/// The `error` text of a run that did not end with status `ok`.
fn run_error(run: &StageOutcome, limits: &Limits, wall_time_ms: u64) -> String {
    if let Some(sentence) = limit_sentence("", "program", run, limits, wall_time_ms) {
        return sentence;
    }
    match (run.status, run.signal, run.exit_code) {
        (Status::Ok | Status::CompileError, _, _) => String::new(),
        _ if !run.stderr.is_empty() => run.stderr.clone(),
        (_, Some(signal), _) => format!("The program was killed by {signal}."),
        (_, None, Some(code)) => format!("The program exited with code {code}."),
        (_, None, None) => "The program failed.".to_string(),
    }
}

/// The `error` text of a failed compile stage: the compiler's output, or a
/// sentence naming the limit it hit.
fn compile_error(compile: &StageOutcome, limits: &Limits) -> String {
    if let Some(sentence) =
        limit_sentence("compile ", "compiler", compile, limits, limits.wall_time_ms)
    {
        return sentence;
    }
    match compile.exit_code {
        _ if !compile.stderr.is_empty() => compile.stderr.clone(),
        _ if !compile.stdout.is_empty() => compile.stdout.clone(),
        Some(code) => format!("The compiler exited with code {code}."),
        None => "The compiler failed.".to_string(),
    }
}

/// The sentence naming the limit a stage was stopped at, if it was:
/// "Time limit exceeded: the program was still running after 1500 ms and
/// was stopped.", "Compile memory limit exceeded: the compiler …".
fn limit_sentence(
    stage: &str,
    who: &str,
    outcome: &StageOutcome,
    limits: &Limits,
    wall_time_ms: u64,
) -> Option<String> {
    let (limit, what) = match outcome.status {
        Status::Timeout => (
            "time",
            format!("was still running after {wall_time_ms} ms and was stopped"),
        ),
        Status::MemoryLimit => (
            "memory",
            format!("needed more than {} MiB and was killed", limits.memory_mb),
        ),
        Status::OutputLimit => (
            "output",
            format!(
                "wrote more than {} bytes to {} and was stopped",
                limits.output_bytes,
                stream_name(outcome.overflowed)
            ),
        ),
        _ => return None,
    };
    let name = format!("{stage}{limit}");
    let mut chars = name.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>())
        .unwrap_or_default();
    Some(format!(
        "{first}{} limit exceeded: the {who} {what}.",
        chars.as_str()
    ))
}

fn stream_name(stream: Option<OutputStream>) -> &'static str {
    match stream {
        Some(OutputStream::Stderr) => "stderr",
        _ => "stdout",
    }
}

/// One language as `GET /languages` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub version: String,
    pub image: String,
    pub limits: Limits,
}

impl From<&Language> for LanguageInfo {
    fn from(l: &Language) -> Self {
        LanguageInfo {
            name: l.name.clone(),
            aliases: l.aliases.clone(),
            version: l.version.clone(),
            image: l.image.clone(),
            limits: l.limits.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::ValidateArgs;

    fn bounds() -> RequestBounds {
        RequestBounds {
            max_code_bytes: 10,
            max_files: 2,
            max_stdin_bytes: 5,
            max_args: 2,
            max_arg_bytes: 3,
        }
    }

    fn request(json: &str) -> RunRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_good_request_passes() {
        let r = request(
            r#"{"language":"python","code":"print(1)","stdin":"ab","args":["x"],"timeout_ms":5}"#,
        );
        assert!(r.validate_with_args(&bounds()).is_ok());
    }

    #[test]
    fn oversized_fields_are_too_large() {
        for json in [
            r#"{"language":"python","code":"12345678901"}"#,
            r#"{"language":"python","code":"1","stdin":"123456"}"#,
            r#"{"language":"python","code":"1","args":["a","b","c"]}"#,
            r#"{"language":"python","code":"1","args":["abcd"]}"#,
        ] {
            let errors = request(json).validate_with_args(&bounds()).unwrap_err();
            let fields = crate::validation::field_errors(&errors);
            assert_eq!(fields.len(), 1, "{json}");
            let kind = errors.field_errors().values().next().unwrap()[0]
                .code
                .to_string();
            assert_eq!(kind, TOO_LARGE, "{json}");
        }
    }

    #[test]
    fn file_names_must_be_plain_relative_paths() {
        for good in [
            "util.py",
            "pkg/util.py",
            "a/b/c.txt",
            "Main.java",
            "x+y_z-1.c",
        ] {
            assert_eq!(check_file_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./x",
            "a/.",
            "-rf.c",
            "a b",
            "x\ny",
            "a\\b",
            "é.py",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("a/".repeat(9).trim_end_matches('/')).is_err());
    }

    #[test]
    fn a_file_that_would_be_another_files_folder_is_invalid() {
        let r = request(
            r#"{"language":"c","code":"x","files":[{"name":"a/b","content":""},{"name":"a","content":""}]}"#,
        );
        let errors = r.validate_with_args(&bounds()).unwrap_err();
        let message = errors.field_errors()["files"][0].message.clone().unwrap();
        assert!(message.contains("\"a\""), "{message}");
        assert_eq!(folders_of("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
    }

    #[test]
    fn too_many_files_are_too_large_and_a_duplicate_is_invalid() {
        let r = request(
            r#"{"language":"c","code":"x","files":[{"name":"a","content":""},{"name":"b","content":""},{"name":"c","content":""}]}"#,
        );
        let errors = r.validate_with_args(&bounds()).unwrap_err();
        assert_eq!(errors.field_errors()["files"][0].code, TOO_LARGE);
        let r = request(
            r#"{"language":"c","code":"x","files":[{"name":"a","content":""},{"name":"a","content":""}]}"#,
        );
        let errors = r.validate_with_args(&bounds()).unwrap_err();
        assert_eq!(errors.field_errors()["files"][0].code, "file_name");
        let r = request(r#"{"language":"c","code":"x","files":[{"name":"../a","content":""}]}"#);
        let errors = r.validate_with_args(&bounds()).unwrap_err();
        let message = errors.field_errors()["files"][0].message.clone().unwrap();
        assert!(message.contains("\"../a\""), "{message}");
    }

    #[test]
    fn empty_code_a_nul_argument_and_a_zero_timeout_are_invalid() {
        for (json, field) in [
            (r#"{"language":"python","code":""}"#, "code"),
            (
                r#"{"language":"python","code":"1","args":["a\u0000"]}"#,
                "args",
            ),
            (
                r#"{"language":"python","code":"1","timeout_ms":0}"#,
                "timeout_ms",
            ),
            (r#"{"language":"","code":"1"}"#, "language"),
        ] {
            let errors = request(json).validate_with_args(&bounds()).unwrap_err();
            let fields = crate::validation::field_errors(&errors);
            assert_eq!(wire_field(&fields[0].path), field, "{json}");
        }
    }
}
