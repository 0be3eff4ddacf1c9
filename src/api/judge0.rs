//! Judge0 CE 1.13.1's API under `/judge0` (its own paths after the
//! prefix: `POST /judge0/submissions`, `GET /judge0/languages`, …), so that
//! Judge0's clients, its official Python SDK among them, work with the
//! base URL `http://HOST:PORT/judge0`. (Judge0 serves from `/`, where this
//! service's own `/languages` already is.)
//!
//! The shapes, status codes and messages are Judge0's
//! (`app/controllers/*.rb` at v1.13.1); errors are `{"error": …}`, and a
//! refused submission is 422 with Judge0's `{"field": ["message"]}`. The
//! work is the [`Judge0`] service's.

use std::sync::Arc;

use bytes::Buf;
use futures_util::Stream;
use serde_json::{Value, json};
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::gate::Caller;
use super::{Api, new_request_id};
use crate::judge0::Judge0Error;
use crate::judge0::render::{Fields, Record, SubmissionView};
use crate::judge0::request::{Errors, MAX_CPU_EXTRA_TIME, MAX_NUMBER_OF_RUNS, MAX_STACK_LIMIT};
use crate::judge0::status::Judge0Status;
use crate::judge0::store::{Deleted, now_ms};
use crate::runner::Runner;

/// The Judge0 version this API answers as (`GET /about`): the Python
/// SDK maps its language names to ids by it.
pub const JUDGE0_VERSION: &str = "1.13.1";

const CONVERSION_ONE: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
const CONVERSION_MANY: &str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// The query parameters of a request.
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Judge0's booleans: true only for the exact text `true`.
    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }
}

/// `/judge0/<tail>`: the whole of Judge0's API.
pub async fn handle<R: Runner>(
    caller: Caller,
    api: Arc<Api<R>>,
    method: Method,
    tail: warp::path::Tail,
    query: String,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let request = Request {
        caller: &caller,
        declared,
    };
    let path = tail.as_str().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let query = Query(serde_urlencoded::from_str(&query).unwrap_or_default());
    match (&method, segments.as_slice()) {
        (&Method::GET, ["about"]) => about(),
        (&Method::GET, ["version"]) => JUDGE0_VERSION.into_response(),
        (&Method::GET, ["config_info"]) => config_info(&api),
        (&Method::GET, ["statuses"]) => statuses(),
        (&Method::GET, ["languages"]) => languages(&api, false),
        (&Method::GET, ["languages", "all"]) => languages(&api, true),
        (&Method::GET, ["languages", id]) => language(&api, id),
        (&Method::POST, ["submissions"]) => {
            caller.decorate(create(&api, &request, &query, body).await)
        }
        (&Method::POST, ["submissions", "batch"]) => {
            caller.decorate(create_batch(&api, &request, &query, body).await)
        }
        (&Method::GET, ["submissions", "batch"]) => show_batch(&api, &query).await,
        (&Method::GET, ["submissions", token]) => show(&api, &query, token).await,
        (&Method::DELETE, ["submissions", token]) => delete(&api, &query, token).await,
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn json(status: StatusCode, value: &Value) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// `{"error": text}` with `status`, as Judge0 answers.
fn error(status: StatusCode, text: &str) -> Response {
    json(status, &json!({ "error": text }))
}

fn unprocessable(errors: &Errors) -> Response {
    json(StatusCode::UNPROCESSABLE_ENTITY, &json!(errors))
}

/// The service's trouble, or a refused body: the status and headers
/// [`ApiError`] gives it, in Judge0's `{"error"}`.
fn refused(e: ApiError) -> Response {
    e.respond(&json!({ "error": e.to_string() }))
}

/// A call Judge0's service could not serve (a full queue, the database,
/// no storage, a run refused, an internal fault: logged with a request
/// id).
fn trouble(e: Judge0Error) -> Response {
    refused(ApiError::from_judge0(e, &new_request_id()))
}

fn about() -> Response {
    json(
        StatusCode::OK,
        &json!({
            "version": JUDGE0_VERSION,
            "homepage": null,
            "source_code": null,
            "maintainer": concat!("code-runner ", env!("CARGO_PKG_VERSION"), ", speaking Judge0 CE 1.13.1's API"),
        }),
    )
}

fn statuses() -> Response {
    let list: Vec<Value> = Judge0Status::ALL
        .iter()
        .map(|s| json!({"id": s.id(), "description": s.description()}))
        .collect();
    json(StatusCode::OK, &json!(list))
}

/// Judge0's `/config_info`: its 39 keys, from this server's settings (the
/// default limits stand for the languages' own, which each submission is
/// held to).
fn config_info<R: Runner>(api: &Api<R>) -> Response {
    let judge0 = &api.judge0;
    let settings = judge0.settings();
    let limits = &api.defaults;
    let registry = api.runner.registry();
    let with_options: Vec<String> = registry
        .languages()
        .iter()
        .filter(|l| l.judge0_id.is_some() && !l.compiler_options.is_empty())
        .map(|l| l.judge0_name.clone())
        .collect();
    let cpu = limits.cpu_time_ms as f64 / 1000.0;
    let wall = limits.wall_time_ms as f64 / 1000.0;
    let memory = limits.memory_mb * 1024;
    let file = (limits.scratch_mb * 1024).min(limits.output_bytes.div_ceil(1024));
    json(
        StatusCode::OK,
        &json!({
            "maintenance_mode": false,
            "enable_wait_result": true,
            "enable_compiler_options": !with_options.is_empty(),
            "allowed_languages_for_compile_options": with_options,
            "enable_command_line_arguments": true,
            "enable_submission_delete": judge0.stores(),
            "enable_callbacks": !settings.callback_hosts.is_empty(),
            "callbacks_max_tries": settings.callback_tries,
            "callbacks_timeout": settings.callback_timeout.as_secs_f64(),
            "enable_additional_files": true,
            "max_queue_size": settings.max_queue,
            "cpu_time_limit": cpu,
            "max_cpu_time_limit": cpu,
            "cpu_extra_time": 1.0,
            "max_cpu_extra_time": MAX_CPU_EXTRA_TIME,
            "wall_time_limit": wall,
            "max_wall_time_limit": wall,
            "memory_limit": memory,
            "max_memory_limit": memory,
            "stack_limit": 64_000,
            "max_stack_limit": MAX_STACK_LIMIT,
            "max_processes_and_or_threads": limits.pids,
            "max_max_processes_and_or_threads": limits.pids,
            "enable_per_process_and_thread_time_limit": false,
            "allow_enable_per_process_and_thread_time_limit": false,
            "enable_per_process_and_thread_memory_limit": false,
            "allow_enable_per_process_and_thread_memory_limit": false,
            "max_file_size": file,
            "max_max_file_size": file,
            "number_of_runs": 1,
            "max_number_of_runs": MAX_NUMBER_OF_RUNS,
            "redirect_stderr_to_stdout": false,
            "max_extract_size": api.bounds.max_code_bytes.div_ceil(1024),
            "enable_batched_submissions": judge0.stores(),
            "max_submission_batch_size": settings.max_batch,
            "submission_cache_duration": 0.0,
            "use_docs_as_homepage": false,
            "allow_enable_network": false,
            "enable_network": false,
        }),
    )
}

/// The languages Judge0's API serves (those with a `judge0_id`), sorted by
/// name.
fn languages<R: Runner>(api: &Api<R>, all: bool) -> Response {
    let registry = api.runner.registry();
    let mut list: Vec<(&str, i64)> = registry
        .languages()
        .iter()
        .filter_map(|l| l.judge0_id.map(|id| (l.judge0_name.as_str(), id)))
        .collect();
    list.sort();
    let list: Vec<Value> = list
        .into_iter()
        .map(|(name, id)| match all {
            false => json!({"id": id, "name": name}),
            true => json!({"id": id, "name": name, "is_archived": false}),
        })
        .collect();
    json(StatusCode::OK, &json!(list))
}

fn language<R: Runner>(api: &Api<R>, id: &str) -> Response {
    let registry = api.runner.registry();
    let Some(language) = id.parse().ok().and_then(|id| registry.by_judge0_id(id)) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let compile_cmd = language.compile.as_ref().map(|c| c.command.join(" "));
    json(
        StatusCode::OK,
        &json!({
            "id": language.judge0_id,
            "name": language.judge0_name,
            "is_archived": false,
            "source_file": language.source_file,
            "compile_cmd": compile_cmd,
            "run_cmd": language.run.join(" "),
        }),
    )
}

/// Who sent a request, and the length its body declared.
struct Request<'a> {
    caller: &'a Caller,
    declared: Option<u64>,
}

/// The request's body as JSON, or the response refusing it.
async fn read_json<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<Value, Response> {
    let bytes = api
        .body
        .read(&request.caller.client, request.declared, body)
        .await
        .map_err(refused)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| refused(ApiError::MalformedJson(e.to_string())))
}

/// A submission written with `fields`, or `None` when a text of it
/// cannot be written (Judge0's conversion error).
fn write(
    registry: &crate::language::Registry,
    record: &Record,
    fields: &Fields,
    base64: bool,
) -> Option<Value> {
    serde_json::to_value(SubmissionView::new(record, base64, registry).select(fields)).ok()
}

async fn create<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    query: &Query,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let fields = match Fields::parse(query.get("fields")) {
        Ok(fields) => fields,
        Err(text) => return error(StatusCode::BAD_REQUEST, &text),
    };
    let (base64, wait) = (query.flag("base64_encoded"), query.flag("wait"));
    let body = match read_json(api, request, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let judge0 = &api.judge0;
    let submission = match judge0.accept(&body, base64) {
        Ok(submission) => submission,
        Err(errors) => return unprocessable(&errors),
    };
    if !wait {
        return match judge0.enqueue(std::slice::from_ref(&submission)).await {
            Ok(tokens) => json(StatusCode::CREATED, &json!({"token": tokens[0]})),
            Err(e) => trouble(e),
        };
    }
    let registry = api.runner.registry();
    if judge0.stores() {
        let token = match judge0.enqueue(std::slice::from_ref(&submission)).await {
            Ok(tokens) => tokens.into_iter().next().expect("one token"),
            Err(e) => return trouble(e),
        };
        return match judge0.wait(&token).await {
            Ok(Some(found)) => match write(&registry, &Record::from(&found), &fields, base64) {
                Some(value) => json(StatusCode::CREATED, &value),
                None => json(
                    StatusCode::CREATED,
                    &json!({"error": CONVERSION_ONE, "token": token}),
                ),
            },
            // Removed meanwhile (DELETE): gone.
            Ok(None) => error(StatusCode::NOT_FOUND, "Not Found"),
            Err(e) => trouble(e),
        };
    }
    // Nothing is stored: run it now and answer.
    let created_at = now_ms();
    let judged = match judge0.run_now(&submission, &request.caller.client).await {
        Ok(judged) => judged,
        Err(e) => return trouble(e),
    };
    let token = uuid::Uuid::new_v4().to_string();
    let record = Record {
        token: &token,
        status: judged.status_id,
        submission: &submission,
        judged: Some(&judged),
        created_at,
        finished_at: Some(now_ms()),
    };
    match write(&registry, &record, &fields, base64) {
        Some(value) => json(StatusCode::CREATED, &value),
        None => json(
            StatusCode::CREATED,
            &json!({"error": CONVERSION_ONE, "token": token}),
        ),
    }
}

/// The count rule of a batch (Judge0's messages).
fn batch_size(count: usize, max: usize) -> Result<(), String> {
    if count == 0 {
        Err("there should be at least one submission in a batch".into())
    } else if count > max {
        Err(format!(
            "number of submissions in a batch should be less than or equal to {max}"
        ))
    } else {
        Ok(())
    }
}

async fn create_batch<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    query: &Query,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let judge0 = &api.judge0;
    if !judge0.stores() {
        return error(
            StatusCode::BAD_REQUEST,
            "batched submissions are not allowed",
        );
    }
    let base64 = query.flag("base64_encoded");
    let body = match read_json(api, request, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let items = body["submissions"].as_array().cloned().unwrap_or_default();
    if let Err(text) = batch_size(items.len(), judge0.settings().max_batch) {
        return error(StatusCode::BAD_REQUEST, &text);
    }
    let checked: Vec<_> = items
        .iter()
        .map(|item| judge0.accept(item, base64))
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    if valid.is_empty() {
        let errors: Vec<Value> = checked
            .iter()
            .filter_map(|c| c.as_ref().err())
            .map(|e| json!(e))
            .collect();
        return json(StatusCode::UNPROCESSABLE_ENTITY, &json!(errors));
    }
    let mut tokens = match judge0.enqueue(&valid).await {
        Ok(tokens) => tokens.into_iter(),
        Err(e) => return trouble(e),
    };
    let answer: Vec<Value> = checked
        .iter()
        .map(|c| match c {
            Ok(_) => json!({"token": tokens.next().expect("a token per valid submission")}),
            Err(errors) => json!(errors),
        })
        .collect();
    json(StatusCode::CREATED, &json!(answer))
}

async fn show<R: Runner>(api: &Api<R>, query: &Query, token: &str) -> Response {
    let fields = match Fields::parse(query.get("fields")) {
        Ok(fields) => fields,
        Err(text) => return error(StatusCode::BAD_REQUEST, &text),
    };
    match api.judge0.find(token).await {
        Ok(Some(found)) => {
            match write(
                &api.runner.registry(),
                &Record::from(&found),
                &fields,
                query.flag("base64_encoded"),
            ) {
                Some(value) => json(StatusCode::OK, &value),
                None => error(StatusCode::BAD_REQUEST, CONVERSION_ONE),
            }
        }
        Ok(None) | Err(Judge0Error::NotStored) => error(StatusCode::NOT_FOUND, "Not Found"),
        Err(e) => trouble(e),
    }
}

async fn show_batch<R: Runner>(api: &Api<R>, query: &Query) -> Response {
    let fields = match Fields::parse(query.get("fields")) {
        Ok(fields) => fields,
        Err(text) => return error(StatusCode::BAD_REQUEST, &text),
    };
    let tokens: Vec<String> = query
        .get("tokens")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Err(text) = batch_size(tokens.len(), api.judge0.settings().max_batch) {
        return error(StatusCode::BAD_REQUEST, &text);
    }
    let found = match api.judge0.find_many(&tokens).await {
        Ok(found) => found,
        Err(e) => return trouble(e),
    };
    let registry = api.runner.registry();
    let base64 = query.flag("base64_encoded");
    let mut submissions = Vec::with_capacity(found.len());
    for found in &found {
        match found {
            Some(found) => match write(&registry, &Record::from(found), &fields, base64) {
                Some(value) => submissions.push(value),
                None => return error(StatusCode::BAD_REQUEST, CONVERSION_MANY),
            },
            None => submissions.push(Value::Null),
        }
    }
    json(StatusCode::OK, &json!({ "submissions": submissions }))
}

async fn delete<R: Runner>(api: &Api<R>, query: &Query, token: &str) -> Response {
    let fields = match Fields::parse(query.get("fields")) {
        Ok(fields) => fields,
        Err(text) => return error(StatusCode::BAD_REQUEST, &text),
    };
    match api.judge0.delete(token).await {
        // Judge0 answers a deleted submission in base64 whatever was asked.
        Ok(Ok(found)) => {
            match write(&api.runner.registry(), &Record::from(&found), &fields, true) {
                Some(value) => json(StatusCode::OK, &value),
                None => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the submission cannot be written",
                ),
            }
        }
        Ok(Err(Deleted::Busy(status))) => error(
            StatusCode::BAD_REQUEST,
            &format!(
                "submission cannot be deleted because its status is {status} ({})",
                Judge0Status::from_id(status).map_or("Unknown", Judge0Status::description)
            ),
        ),
        Ok(Err(_)) | Err(Judge0Error::NotStored) => error(StatusCode::NOT_FOUND, "Not Found"),
        Err(e) => trouble(e),
    }
}
