//! Submissions written as Judge0 1.13.1's `SubmissionSerializer` writes
//! them: a [`SubmissionView`], of which a request's `?fields=` selects
//! the fields ([`Fields`]: 8 by default, in their own order; `*` for all
//! 35; any others in Judge0's order of the 35); decimals (`time`, the time limits) as strings
//! (`"0.012"`, `"5.0"`); `memory` in KiB; times as
//! `2024-12-09T17:22:55.662Z`; text fields base64-encoded as Ruby's
//! `Base64.encode64` does (a newline every 60 characters and at the end)
//! when `base64_encoded=true`. Without base64, a text that is not UTF-8
//! cannot be written: writing the view fails ([`NOT_UTF8`]), and the
//! handler answers Judge0's error.

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::request::{Submission, decimal};
use super::status::Judge0Status;
use super::store::Found;
use super::verdict::Judged;
use crate::language::Registry;

/// Declares [`SubmissionView`] with each field written once: the struct,
/// the names `?fields=` is checked against, and the writing of the fields
/// selected, in the selection's order.
macro_rules! submission_view {
    ($($(#[$attr:meta])* $field:ident: $ty:ty,)*) => {
        /// A submission as Judge0 answers it: the fields the request
        /// selects (`?fields=`; every field may be left out), in the order
        /// Judge0 writes them.
        #[derive(Debug, Clone, ToSchema)]
        pub(crate) struct SubmissionView<'a> {
            /// The fields written, in order.
            #[schema(ignore)]
            selected: Fields,
            $(
                $(#[$attr])*
                #[schema(required = false)]
                pub $field: $ty,
            )*
        }

        impl SubmissionView<'_> {
            /// Every field's name, in Judge0's order (`fields=*`).
            pub(crate) const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl Serialize for SubmissionView<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.selected.0.len()))?;
                for &name in &self.selected.0 {
                    match name {
                        $(stringify!($field) => map.serialize_entry(name, &self.$field)?,)*
                        // `Fields` holds only names of `FIELDS`.
                        _ => {}
                    }
                }
                map.end()
            }
        }
    };
}

submission_view! {
    source_code: Text<'a>,
    language_id: i64,
    stdin: Option<Text<'a>>,
    expected_output: Option<Text<'a>>,
    stdout: Option<Text<'a>>,
    status_id: i64,
    created_at: String,
    finished_at: Option<String>,
    /// CPU time, seconds, as a decimal string.
    time: Option<String>,
    /// Peak memory, KiB.
    memory: Option<i64>,
    stderr: Option<Text<'a>>,
    token: &'a str,
    number_of_runs: i64,
    /// Seconds, as a decimal string.
    cpu_time_limit: String,
    cpu_extra_time: String,
    wall_time_limit: String,
    /// KiB.
    memory_limit: i64,
    stack_limit: i64,
    max_processes_and_or_threads: i64,
    /// Always false (refused when asked).
    enable_per_process_and_thread_time_limit: bool,
    /// Always false (refused when asked).
    enable_per_process_and_thread_memory_limit: bool,
    /// KiB.
    max_file_size: i64,
    compile_output: Option<Text<'a>>,
    exit_code: Option<i64>,
    exit_signal: Option<i64>,
    message: Option<Text<'a>>,
    /// Wall-clock time, seconds, as a decimal string.
    wall_time: Option<String>,
    compiler_options: Option<&'a str>,
    command_line_arguments: Option<&'a str>,
    redirect_stderr_to_stdout: bool,
    callback_url: Option<&'a str>,
    /// A zip, always in base64.
    additional_files: Option<Text<'a>>,
    /// Always false (refused when asked).
    enable_network: bool,
    status: StatusView,
    language: LanguageView,
}

/// The fields answered when `fields` is not given.
const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// Why a view cannot be written (the error its serialisation fails with).
const NOT_UTF8: &str = "a text field is not UTF-8 and base64 was not asked";

/// The fields of a [`SubmissionView`] a request selects, in the order
/// they are written: Judge0's 8 defaults in their own order, any other
/// selection in the order of [`SubmissionView::FIELDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields(Vec<&'static str>);

impl Default for Fields {
    /// Judge0's 8 default fields.
    fn default() -> Fields {
        Fields(DEFAULT_FIELDS.to_vec())
    }
}

impl Fields {
    /// The fields a `fields` parameter asks for, or the names it does not
    /// know (Judge0's 400 `invalid fields: [a, b]`).
    pub(crate) fn parse(asked: Option<&str>) -> Result<Fields, String> {
        let asked = asked.map(str::trim).unwrap_or_default();
        if asked.is_empty() {
            return Ok(Fields::default());
        }
        let names: Vec<&str> = asked.split(',').map(str::trim).collect();
        if names.contains(&"*") {
            return Ok(Fields(SubmissionView::FIELDS.to_vec()));
        }
        let unknown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !SubmissionView::FIELDS.contains(n))
            .collect();
        if !unknown.is_empty() {
            let unknown: Vec<_> = unknown.iter().map(|n| crate::text::clip(n)).collect();
            return Err(
                crate::text::clip(&format!("invalid fields: [{}]", unknown.join(", ")))
                    .into_owned(),
            );
        }
        Ok(Fields(
            SubmissionView::FIELDS
                .iter()
                .copied()
                .filter(|f| names.contains(f))
                .collect(),
        ))
    }
}

/// A text field: base64 (as Ruby writes it) when asked, else the text
/// itself; writing it fails when it is not UTF-8 and base64 was not asked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'a> {
    bytes: &'a [u8],
    base64: bool,
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.base64 {
            return s.serialize_str(&encode64(self.bytes));
        }
        match std::str::from_utf8(self.bytes) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom(NOT_UTF8)),
        }
    }
}

impl PartialSchema for Text<'_> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "UTF-8 text or, with `base64_encoded=true`, base64 (a newline after every 60 characters and at the end)",
            ))
            .into()
    }
}

impl ToSchema for Text<'_> {}

/// A status as Judge0 writes it, in a submission and in `/statuses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct StatusView {
    id: i64,
    description: &'static str,
}

impl From<Judge0Status> for StatusView {
    fn from(status: Judge0Status) -> StatusView {
        StatusView {
            id: status.id(),
            description: status.description(),
        }
    }
}

/// A submission's language: its Judge0 id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct LanguageView {
    id: i64,
    /// `null` when no language served has the id now.
    name: Option<String>,
}

/// Base64 as Ruby's `Base64.encode64` writes it: a newline after every 60
/// characters and at the end.
fn encode64(bytes: &[u8]) -> String {
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
pub(crate) fn timestamp(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

/// One submission, whatever its state: what its view is written from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) token: &'a str,
    pub(crate) status: Judge0Status,
    pub(crate) submission: &'a Submission,
    /// Its result, once finished.
    pub(crate) judged: Option<&'a Judged>,
    pub(crate) created_at: i64,
    pub(crate) finished_at: Option<i64>,
}

impl<'a> From<&'a Found> for Record<'a> {
    fn from(found: &'a Found) -> Record<'a> {
        Record {
            token: &found.stored.token,
            status: found.status,
            submission: &found.submission,
            judged: found.judged.as_ref(),
            created_at: found.stored.created_at,
            finished_at: found.stored.finished_at,
        }
    }
}

impl<'a> SubmissionView<'a> {
    /// Every field of `record` (until [`select`](Self::select)ed), its
    /// texts in base64 when `base64` says, its language named as
    /// `registry` names it.
    pub(crate) fn new(
        record: &Record<'a>,
        base64: bool,
        registry: &Registry,
    ) -> SubmissionView<'a> {
        let s = record.submission;
        let j = record.judged;
        let text = |bytes: &'a [u8]| Text { bytes, base64 };
        let judged_text = |get: fn(&Judged) -> &Option<String>| {
            j.and_then(|j| get(j).as_deref())
                .map(|t| text(t.as_bytes()))
        };
        SubmissionView {
            selected: Fields(SubmissionView::FIELDS.to_vec()),
            source_code: text(&s.source_code),
            language_id: s.language_id,
            stdin: s.stdin.as_deref().map(text),
            expected_output: s.expected_output.as_deref().map(text),
            stdout: judged_text(|j| &j.stdout),
            status_id: record.status.id(),
            created_at: timestamp(record.created_at),
            finished_at: record.finished_at.map(timestamp),
            time: j.and_then(|j| j.time).map(decimal),
            memory: j.and_then(|j| j.memory),
            stderr: judged_text(|j| &j.stderr),
            token: record.token,
            number_of_runs: s.number_of_runs,
            cpu_time_limit: decimal(s.cpu_time_limit),
            cpu_extra_time: decimal(s.cpu_extra_time),
            wall_time_limit: decimal(s.wall_time_limit),
            memory_limit: s.memory_limit,
            stack_limit: s.stack_limit,
            max_processes_and_or_threads: s.max_processes_and_or_threads,
            enable_per_process_and_thread_time_limit: false,
            enable_per_process_and_thread_memory_limit: false,
            max_file_size: s.max_file_size,
            compile_output: judged_text(|j| &j.compile_output),
            exit_code: j.and_then(|j| j.exit_code),
            exit_signal: j.and_then(|j| j.exit_signal),
            message: judged_text(|j| &j.message),
            wall_time: j.and_then(|j| j.wall_time).map(decimal),
            compiler_options: s.compiler_options.as_deref(),
            command_line_arguments: s.command_line_arguments.as_deref(),
            redirect_stderr_to_stdout: s.redirect_stderr_to_stdout,
            callback_url: s.callback_url.as_deref(),
            additional_files: s.additional_files.as_deref().map(|bytes| Text {
                bytes,
                base64: true,
            }),
            enable_network: false,
            status: record.status.into(),
            language: LanguageView {
                id: s.language_id,
                name: registry
                    .by_judge0_id(s.language_id)
                    .map(|l| l.judge0_name.clone()),
            },
        }
    }

    /// The view with only the fields `fields` selects, in its order.
    pub(crate) fn select(self, fields: &Fields) -> Self {
        SubmissionView {
            selected: fields.clone(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_judge0s_in_its_order_and_unknown_ones_are_named() {
        let names = |f: Fields| f.0;
        assert_eq!(names(Fields::parse(None).unwrap()), DEFAULT_FIELDS);
        assert_eq!(names(Fields::parse(Some("")).unwrap()), DEFAULT_FIELDS);
        assert_eq!(names(Fields::parse(Some("*")).unwrap()).len(), 35);
        assert_eq!(
            names(Fields::parse(Some("status,stdout,token")).unwrap()),
            ["stdout", "token", "status"]
        );
        assert_eq!(
            Fields::parse(Some("stdout,foo,bar")).unwrap_err(),
            "invalid fields: [foo, bar]"
        );
        assert!(
            DEFAULT_FIELDS
                .iter()
                .all(|f| SubmissionView::FIELDS.contains(f))
        );
    }

    fn submission(stdin: &[u8]) -> Submission {
        Submission {
            language_id: 71,
            source_code: b"print(1)".to_vec(),
            stdin: Some(stdin.to_vec()),
            expected_output: None,
            compiler_options: None,
            command_line_arguments: None,
            cpu_time_limit: 2.0,
            cpu_extra_time: 1.0,
            wall_time_limit: 5.0,
            memory_limit: 131_072,
            stack_limit: 64_000,
            max_processes_and_or_threads: 64,
            max_file_size: 64,
            number_of_runs: 1,
            redirect_stderr_to_stdout: false,
            callback_url: None,
            additional_files: None,
        }
    }

    #[test]
    fn a_view_writes_the_selected_fields_in_judge0s_order_and_fails_only_on_a_selected_non_utf8_text()
     {
        let registry = Registry::from_languages(Vec::new()).unwrap();
        let submission = submission(&[0xff]);
        let record = Record {
            token: "t",
            status: Judge0Status::InQueue,
            submission: &submission,
            judged: None,
            created_at: 1_733_765_375_662,
            finished_at: None,
        };
        let view = |asked: &str, base64: bool| {
            let fields = Fields::parse(Some(asked)).unwrap();
            serde_json::to_string(&SubmissionView::new(&record, base64, &registry).select(&fields))
        };
        assert_eq!(
            view("language,status,token,created_at,stdout", false).unwrap(),
            r#"{"stdout":null,"created_at":"2024-12-09T17:29:35.662Z","token":"t","status":{"id":1,"description":"In Queue"},"language":{"id":71,"name":null}}"#
        );
        let refused = view("source_code,stdin", false).unwrap_err();
        assert!(refused.to_string().contains(NOT_UTF8), "{refused}");
        assert_eq!(
            view("stdin,source_code", true).unwrap(),
            r#"{"source_code":"cHJpbnQoMSk=\n","stdin":"/w==\n"}"#
        );
        let keys = |written: String| -> Vec<String> {
            let value: serde_json::Value = serde_json::from_str(&written).unwrap();
            value.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(view("*", true).unwrap()), SubmissionView::FIELDS);
        let default = SubmissionView::new(&record, false, &registry).select(&Fields::default());
        assert_eq!(
            keys(serde_json::to_string(&default).unwrap()),
            DEFAULT_FIELDS
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
