//! Submissions written as Judge0 1.13.1's `SubmissionSerializer` writes
//! them: the fields asked for (`?fields=`, 8 by default, `*` for all 35),
//! in its order; decimals (`time`, the time limits) as strings (`"0.012"`,
//! `"5.0"`); `memory` in KiB; times as `2024-12-09T17:22:55.662Z`; text
//! fields base64-encoded as Ruby's `Base64.encode64` does (a newline every
//! 60 characters and at the end) when `base64_encoded=true`. Without
//! base64, a text that is not UTF-8 cannot be written (Judge0's error).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::request::{Submission, decimal};
use super::status::Judge0Status;
use super::verdict::Judged;
use crate::language::Registry;

/// Every field, in Judge0's order (`fields=*`).
pub const ALL_FIELDS: [&str; 35] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields answered when `fields` is not given.
pub const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// The fields a `fields` parameter asks for, in Judge0's order, or the
/// names it does not know (Judge0's 400 `invalid fields: [a, b]`).
pub fn fields(asked: Option<&str>) -> Result<Vec<&'static str>, String> {
    let asked = asked.map(str::trim).unwrap_or_default();
    if asked.is_empty() {
        return Ok(DEFAULT_FIELDS.to_vec());
    }
    let names: Vec<&str> = asked.split(',').map(str::trim).collect();
    if names.contains(&"*") {
        return Ok(ALL_FIELDS.to_vec());
    }
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !ALL_FIELDS.contains(n))
        .collect();
    if !unknown.is_empty() {
        let unknown: Vec<_> = unknown.iter().map(|n| crate::text::clip(n)).collect();
        return Err(
            crate::text::clip(&format!("invalid fields: [{}]", unknown.join(", "))).into_owned(),
        );
    }
    Ok(ALL_FIELDS
        .iter()
        .copied()
        .filter(|f| names.contains(f))
        .collect())
}

/// Base64 as Ruby's `Base64.encode64` writes it: a newline after every 60
/// characters and at the end.
pub fn encode64(bytes: &[u8]) -> String {
    let plain = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(plain.len() + plain.len() / 60 + 1);
    for line in plain.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// A time in ms since the epoch as Judge0 writes it
/// (`2024-12-09T17:22:55.662Z`).
pub fn timestamp(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

/// One submission as stored, whatever its state.
pub struct View<'a> {
    pub token: &'a str,
    pub status_id: i64,
    pub submission: &'a Submission,
    /// Its result, once finished.
    pub judged: Option<&'a Judged>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// A text field (base64 when asked); `Err` when it is not UTF-8 and base64
/// was not asked.
fn text_value(bytes: Option<&[u8]>, base64: bool) -> Result<Value, ()> {
    match bytes {
        None => Ok(Value::Null),
        Some(b) if base64 => Ok(Value::String(encode64(b))),
        Some(b) => std::str::from_utf8(b)
            .map(|s| Value::String(s.to_string()))
            .map_err(|_| ()),
    }
}

/// The submission's `fields`, or `Err` when a text field is not UTF-8 and
/// `base64` is false.
pub fn render(
    view: &View,
    fields: &[&str],
    base64: bool,
    registry: &Registry,
) -> Result<Value, ()> {
    let s = view.submission;
    let j = view.judged;
    let judged_text = |get: fn(&Judged) -> &Option<String>| {
        text_value(j.and_then(|j| get(j).as_deref()).map(str::as_bytes), base64)
    };
    let mut out = Map::new();
    for &field in fields {
        let value = match field {
            "source_code" => text_value(Some(&s.source_code), base64)?,
            "language_id" => json!(s.language_id),
            "stdin" => text_value(s.stdin.as_deref(), base64)?,
            "expected_output" => text_value(s.expected_output.as_deref(), base64)?,
            "stdout" => judged_text(|j| &j.stdout)?,
            "stderr" => judged_text(|j| &j.stderr)?,
            "compile_output" => judged_text(|j| &j.compile_output)?,
            "message" => judged_text(|j| &j.message)?,
            "status_id" => json!(view.status_id),
            "created_at" => json!(timestamp(view.created_at)),
            "finished_at" => json!(view.finished_at.map(timestamp)),
            "time" => json!(j.and_then(|j| j.time).map(decimal)),
            "wall_time" => json!(j.and_then(|j| j.wall_time).map(decimal)),
            "memory" => json!(j.and_then(|j| j.memory)),
            "token" => json!(view.token),
            "number_of_runs" => json!(s.number_of_runs),
            "cpu_time_limit" => json!(decimal(s.cpu_time_limit)),
            "cpu_extra_time" => json!(decimal(s.cpu_extra_time)),
            "wall_time_limit" => json!(decimal(s.wall_time_limit)),
            "memory_limit" => json!(s.memory_limit),
            "stack_limit" => json!(s.stack_limit),
            "max_processes_and_or_threads" => json!(s.max_processes_and_or_threads),
            "enable_per_process_and_thread_time_limit"
            | "enable_per_process_and_thread_memory_limit"
            | "enable_network" => json!(false),
            "max_file_size" => json!(s.max_file_size),
            "exit_code" => json!(j.and_then(|j| j.exit_code)),
            "exit_signal" => json!(j.and_then(|j| j.exit_signal)),
            "compiler_options" => json!(s.compiler_options),
            "command_line_arguments" => json!(s.command_line_arguments),
            "redirect_stderr_to_stdout" => json!(s.redirect_stderr_to_stdout),
            "callback_url" => json!(s.callback_url),
            "additional_files" => json!(s.additional_files.as_deref().map(encode64)),
            "status" => {
                let description = Judge0Status::from_id(view.status_id)
                    .map_or("Unknown", Judge0Status::description);
                json!({"id": view.status_id, "description": description})
            }
            "language" => {
                let name = registry
                    .by_judge0_id(s.language_id)
                    .map(|l| l.judge0_name.clone());
                json!({"id": s.language_id, "name": name})
            }
            _ => continue,
        };
        out.insert(field.to_string(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_judge0s_in_its_order_and_unknown_ones_are_named() {
        assert_eq!(fields(None).unwrap(), DEFAULT_FIELDS);
        assert_eq!(fields(Some("")).unwrap(), DEFAULT_FIELDS);
        assert_eq!(fields(Some("*")).unwrap().len(), 35);
        assert_eq!(
            fields(Some("status,stdout,token")).unwrap(),
            ["stdout", "token", "status"]
        );
        assert_eq!(
            fields(Some("stdout,foo,bar")).unwrap_err(),
            "invalid fields: [foo, bar]"
        );
    }

    #[test]
    fn base64_and_times_are_written_as_judge0_writes_them() {
        assert_eq!(encode64(b"hello, Judge0\n"), "aGVsbG8sIEp1ZGdlMAo=\n");
        let long = encode64(&[b'a'; 60]);
        assert_eq!(long.lines().map(str::len).collect::<Vec<_>>(), [60, 20]);
        assert!(long.ends_with('\n'));
        assert_eq!(timestamp(1_733_765_375_662), "2024-12-09T17:29:35.662Z");
        assert_eq!(timestamp(1_733_765_375_000), "2024-12-09T17:29:35.000Z");
        assert_eq!(
            [decimal(5.0), decimal(0.012), decimal(0.1), decimal(1.5)],
            ["5.0", "0.012", "0.1", "1.5"]
        );
    }
}
