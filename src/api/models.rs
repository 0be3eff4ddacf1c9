//! Wire types: the JSON the API reads and writes, kept apart from the
//! domain types they are turned into.

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use crate::executor::{Outcome, Status, Stream};
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
    /// A wall-clock limit lower than the language's, in ms.
    #[serde(default)]
    #[validate(range(min = 1))]
    pub timeout_ms: Option<u64>,
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
    pub max_stdin_bytes: usize,
    pub max_args: usize,
    pub max_arg_bytes: usize,
}

/// The validation code of a field over a size bound (answered with 413).
pub const TOO_LARGE: &str = "too_large";

fn check_code(code: &str, bounds: &RequestBounds) -> Result<(), ValidationError> {
    if code.is_empty() {
        return Err(error("empty", "must not be empty"));
    }
    if code.len() > bounds.max_code_bytes {
        return Err(error(
            TOO_LARGE,
            format!(
                "is {} bytes, more than the limit of {} bytes",
                code.len(),
                bounds.max_code_bytes
            ),
        ));
    }
    Ok(())
}

fn check_stdin(stdin: &str, bounds: &RequestBounds) -> Result<(), ValidationError> {
    if stdin.len() > bounds.max_stdin_bytes {
        return Err(error(
            TOO_LARGE,
            format!(
                "is {} bytes, more than the limit of {} bytes",
                stdin.len(),
                bounds.max_stdin_bytes
            ),
        ));
    }
    Ok(())
}

fn check_args(args: &[String], bounds: &RequestBounds) -> Result<(), ValidationError> {
    if args.len() > bounds.max_args {
        return Err(error(
            TOO_LARGE,
            format!(
                "has {} arguments, more than the limit of {}",
                args.len(),
                bounds.max_args
            ),
        ));
    }
    if let Some((i, a)) = args
        .iter()
        .enumerate()
        .find(|(_, a)| a.len() > bounds.max_arg_bytes)
    {
        return Err(error(
            TOO_LARGE,
            format!(
                "argument {i} is {} bytes, more than the limit of {} bytes",
                a.len(),
                bounds.max_arg_bytes
            ),
        ));
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(error(
            "nul",
            format!("argument {i} contains a NUL byte, which a command line cannot carry"),
        ));
    }
    Ok(())
}

/// The answer to a run, whatever the program did.
#[derive(Debug, Clone, Serialize)]
pub struct RunResponse {
    pub language: String,
    pub version: String,
    pub status: Status,
    pub exit_code: Option<i64>,
    pub signal: Option<&'static str>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub duration_ms: u64,
    /// For clients of the earlier service: the stdout, when the status is `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For clients of the earlier service: the stderr, or a sentence naming
    /// the limit that was hit, when the status is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunResponse {
    pub fn new(language: &Language, wall_time_ms: u64, outcome: Outcome) -> Self {
        let limits = &language.limits;
        let (output, error) = match outcome.status {
            Status::Ok => (Some(outcome.stdout.clone()), None),
            status => (
                None,
                Some(error_text(status, &outcome, limits, wall_time_ms)),
            ),
        };
        RunResponse {
            language: language.name.clone(),
            version: language.version.clone(),
            status: outcome.status,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            truncated: outcome.truncated,
            duration_ms: outcome.duration.as_millis() as u64,
            output,
            error,
        }
    }
}

/// The `error` text of a run that did not end with status `ok`.
fn error_text(status: Status, outcome: &Outcome, limits: &Limits, wall_time_ms: u64) -> String {
    match status {
        Status::Ok => String::new(),
        Status::Timeout => format!(
            "Time limit exceeded: the program was still running after {wall_time_ms} ms and was stopped."
        ),
        Status::MemoryLimit => format!(
            "Memory limit exceeded: the program needed more than {} MiB and was killed.",
            limits.memory_mb
        ),
        Status::OutputLimit => format!(
            "Output limit exceeded: the program wrote more than {} bytes to {} and was stopped.",
            limits.output_bytes,
            match outcome.overflowed {
                Some(Stream::Stderr) => "stderr",
                _ => "stdout",
            }
        ),
        Status::RuntimeError if !outcome.stderr.is_empty() => outcome.stderr.clone(),
        Status::RuntimeError => match (outcome.signal, outcome.exit_code) {
            (Some(signal), _) => format!("The program was killed by {signal}."),
            (None, Some(code)) => format!("The program exited with code {code}."),
            (None, None) => "The program failed.".to_string(),
        },
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
