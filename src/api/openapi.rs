//! The OpenAPI 3.1 document of every route of every dialect
//! (`GET /openapi.json`), generated with `utoipa` from the wire types: the
//! native request and answers, Piston's answer, the probes; and, for the
//! requests Piston and Judge0 read field by field from JSON (to give their
//! own messages), the schema types below, which follow what those readers
//! accept. CI checks the live service against it with `schemathesis`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use warp::reply::{Reply, Response};

use super::piston::PistonApi;
use super::{native, probes};

/// The document, as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serialises")
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "probes", operation_id = "openapi",
    responses((status = 200, description = "This document", body = Object)))]
pub fn serve() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut response = DOCUMENT.get_or_init(document).clone().into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A Judge0 submission as sent (Judge0 CE 1.13.1).
#[derive(Serialize, ToSchema)]
pub struct Judge0Request {
    #[schema(example = "print(1)")]
    pub source_code: Option<String>,
    #[schema(example = 71)]
    pub language_id: Option<i64>,
    pub stdin: Option<String>,
    pub expected_output: Option<String>,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    /// Seconds.
    pub cpu_time_limit: Option<f64>,
    pub cpu_extra_time: Option<f64>,
    pub wall_time_limit: Option<f64>,
    /// KiB.
    pub memory_limit: Option<f64>,
    pub stack_limit: Option<i64>,
    pub max_processes_and_or_threads: Option<i64>,
    pub max_file_size: Option<i64>,
    pub number_of_runs: Option<i64>,
    pub redirect_stderr_to_stdout: Option<bool>,
    pub callback_url: Option<String>,
    /// A base64 zip.
    pub additional_files: Option<String>,
    pub enable_network: Option<bool>,
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
}

/// A batch of Judge0 submissions.
#[derive(Serialize, ToSchema)]
pub struct Judge0Batch {
    pub submissions: Vec<Judge0Request>,
}

/// A Judge0 status.
#[derive(Serialize, ToSchema)]
pub struct Judge0Status {
    pub id: i64,
    pub description: String,
}

/// A Judge0 language (`id`, `name`; `/languages/{id}` has the rest).
#[derive(Serialize, ToSchema)]
pub struct Judge0Language {
    pub id: i64,
    pub name: Option<String>,
    pub is_archived: Option<bool>,
    pub source_file: Option<String>,
    pub compile_cmd: Option<String>,
    pub run_cmd: Option<String>,
}

/// A Judge0 submission as answered: the fields asked for (`fields`).
#[derive(Serialize, ToSchema)]
pub struct Judge0Submission {
    pub token: Option<String>,
    pub source_code: Option<String>,
    pub language_id: Option<i64>,
    pub stdin: Option<String>,
    pub expected_output: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub compile_output: Option<String>,
    pub message: Option<String>,
    pub status_id: Option<i64>,
    pub status: Option<Judge0Status>,
    pub language: Option<Judge0Language>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    /// Seconds, as a decimal string.
    pub time: Option<String>,
    pub wall_time: Option<String>,
    /// KiB.
    pub memory: Option<i64>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub number_of_runs: Option<i64>,
    pub cpu_time_limit: Option<String>,
    pub cpu_extra_time: Option<String>,
    pub wall_time_limit: Option<String>,
    pub memory_limit: Option<i64>,
    pub stack_limit: Option<i64>,
    pub max_processes_and_or_threads: Option<i64>,
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    pub max_file_size: Option<i64>,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub redirect_stderr_to_stdout: Option<bool>,
    pub callback_url: Option<String>,
    pub additional_files: Option<String>,
    pub enable_network: Option<bool>,
    /// With `wait=true`, when a text is not UTF-8 and base64 was not asked.
    pub error: Option<String>,
}

/// `GET /judge0/submissions/batch`.
#[derive(Serialize, ToSchema)]
pub struct Judge0BatchShow {
    pub submissions: Vec<Option<Judge0Submission>>,
}

/// One entry of a batch's answer: a token, or that submission's errors.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Judge0BatchEntry {
    Token { token: String },
    Errors(BTreeMap<String, Vec<String>>),
}

/// Judge0's refusals of a submission: each field with its messages.
#[derive(Serialize, ToSchema)]
pub struct Judge0Errors(pub BTreeMap<String, Vec<String>>);

/// Judge0's errors.
#[derive(Serialize, ToSchema)]
pub struct Judge0Error {
    pub error: String,
}

/// `GET /judge0/about`.
#[derive(Serialize, ToSchema)]
pub struct Judge0About {
    pub version: String,
    pub homepage: Option<String>,
    pub source_code: Option<String>,
    pub maintainer: Option<String>,
}

/// The query parameters of Judge0's submission routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Judge0Query {
    /// `true`: text fields are base64, in and out.
    pub base64_encoded: Option<bool>,
    /// `true`: answer with the result (creation only).
    pub wait: Option<bool>,
    /// Fields to answer, comma-separated, or `*`.
    pub fields: Option<String>,
}

#[utoipa::path(post, path = "/judge0/submissions", tag = "judge0",
    params(Judge0Query),
    request_body = Judge0Request,
    responses(
        (status = 201, description = "Queued (its token), or with wait=true its result", body = Judge0Submission),
        (status = 400, description = "Bad fields, or storage off", body = Judge0Error),
        (status = 422, description = "Refused: each field with its messages", body = Judge0Errors),
        (status = 429, description = "Busy", body = Judge0Error),
        (status = 503, description = "Queue full", body = Judge0Error),
    ))]
fn judge0_create() {}

#[utoipa::path(post, path = "/judge0/submissions/batch", tag = "judge0",
    params(Judge0Query),
    request_body = Judge0Batch,
    responses(
        (status = 201, description = "A token or the errors of each, in order", body = Vec<Judge0BatchEntry>),
        (status = 400, description = "Batch size, or storage off", body = Judge0Error),
        (status = 422, description = "None was valid", body = Vec<Judge0BatchEntry>),
        (status = 503, description = "Queue full", body = Judge0Error),
    ))]
fn judge0_create_batch() {}

#[utoipa::path(get, path = "/judge0/submissions/batch", tag = "judge0",
    params(("tokens" = String, Query, description = "Tokens, comma-separated"), Judge0Query),
    responses(
        (status = 200, description = "Each submission, null when unknown", body = Judge0BatchShow),
        (status = 400, description = "Batch size or fields", body = Judge0Error),
    ))]
fn judge0_show_batch() {}

#[utoipa::path(get, path = "/judge0/submissions/{token}", tag = "judge0",
    params(("token" = String, Path, description = "The submission's token"), Judge0Query),
    responses(
        (status = 200, description = "The submission", body = Judge0Submission),
        (status = 400, description = "Fields, or not UTF-8 without base64", body = Judge0Error),
        (status = 404, description = "No such submission", body = Judge0Error),
    ))]
fn judge0_show() {}

#[utoipa::path(delete, path = "/judge0/submissions/{token}", tag = "judge0",
    params(("token" = String, Path, description = "The submission's token"), Judge0Query),
    responses(
        (status = 200, description = "Deleted (answered in base64)", body = Judge0Submission),
        (status = 400, description = "Still queued or running", body = Judge0Error),
        (status = 404, description = "No such submission", body = Judge0Error),
    ))]
fn judge0_delete() {}

#[utoipa::path(get, path = "/judge0/languages", tag = "judge0",
    responses((status = 200, description = "The languages with a Judge0 id", body = Vec<Judge0Language>)))]
fn judge0_languages() {}

#[utoipa::path(get, path = "/judge0/languages/all", tag = "judge0",
    responses((status = 200, description = "The same, with is_archived", body = Vec<Judge0Language>)))]
fn judge0_languages_all() {}

#[utoipa::path(get, path = "/judge0/languages/{id}", tag = "judge0",
    params(("id" = String, Path, description = "A Judge0 language id")),
    responses(
        (status = 200, description = "The language", body = Judge0Language),
        (status = 404, description = "No such language", body = Judge0Error),
    ))]
fn judge0_language() {}

#[utoipa::path(get, path = "/judge0/statuses", tag = "judge0",
    responses((status = 200, description = "Judge0's statuses", body = Vec<Judge0Status>)))]
fn judge0_statuses() {}

#[utoipa::path(get, path = "/judge0/about", tag = "judge0",
    responses((status = 200, description = "The Judge0 version spoken", body = Judge0About)))]
fn judge0_about() {}

#[utoipa::path(get, path = "/judge0/config_info", tag = "judge0",
    responses((status = 200, description = "Judge0's 39 settings", body = Object)))]
fn judge0_config_info() {}

#[utoipa::path(get, path = "/judge0/version", tag = "judge0",
    responses((status = 200, description = "1.13.1", body = String, content_type = "text/plain")))]
fn judge0_version() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "code-runner",
        description = "Runs untrusted code in locked-down Docker sandboxes. Three dialects: its own (`/run-code`), Piston v2 (`/api/v2`) and Judge0 CE 1.13.1 (`/judge0`). With API keys on, send `Authorization: Bearer KEY` or `X-API-Key: KEY` (every route but `/health`)."
    ),
    paths(
        native::run_code,
        probes::health,
        probes::ready,
        probes::languages,
        probes::metrics,
        serve,
        judge0_create,
        judge0_create_batch,
        judge0_show_batch,
        judge0_show,
        judge0_delete,
        judge0_languages,
        judge0_languages_all,
        judge0_language,
        judge0_statuses,
        judge0_about,
        judge0_config_info,
        judge0_version,
    ),
    components(schemas(
        Judge0Request,
        Judge0Batch,
        Judge0Status,
        Judge0Language,
        Judge0Submission,
        Judge0BatchShow,
        Judge0BatchEntry,
        Judge0Errors,
        Judge0Error,
        Judge0About,
    )),
    nest((path = "/api/v2", api = PistonApi))
)]
struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_covers_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/run-code",
            "/health",
            "/ready",
            "/languages",
            "/metrics",
            "/openapi.json",
            "/api/v2/runtimes",
            "/api/v2/execute",
            "/judge0/submissions",
            "/judge0/submissions/batch",
            "/judge0/submissions/{token}",
            "/judge0/languages",
            "/judge0/languages/{id}",
            "/judge0/statuses",
            "/judge0/about",
            "/judge0/config_info",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        let run = &doc["components"]["schemas"]["RunRequest"]["properties"];
        assert!(
            run["language"].is_object() && run["tests"].is_object(),
            "{run}"
        );
    }
}
