//! `POST /run-code`, the service's own dialect (and its predecessor's): the
//! wire request ([`request`]), its translation to a job, the answers
//! ([`response`]), and the handler.

pub(crate) mod judging;
pub(crate) mod request;
pub(crate) mod response;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::Stream;
use warp::http::header::HeaderValue;
use warp::reply::{Reply, Response};

use super::answer::add_timing_headers;
use super::answer::{REQUEST_ID_HEADER, new_request_id};
use super::error::{ApiError, ErrorBody};
use super::gate::Caller;
use super::live;
use super::state::Api;

use crate::outcome::PoolUse;
use crate::runner::{Report, Runner};
use request::RunRequest;
use response::{BatchResponse, RunAnswer, RunResponse};

const REFUSED: &str = "a refused request, or the service's trouble";

/// Runs a program (once, or with `tests` against each test) in a fresh
/// sandbox and answers what it did: read, parse, check, run, render.
#[utoipa::path(post, path = "/run-code", tag = "native", operation_id = "run_code",
    request_body = RunRequest,
    responses(
        (status = 200, description = "The program ran (whatever it did), or the batch did; with `Accept: text/event-stream` (one run), its events as Server-Sent Events (docs/streaming.md)", content(
            (RunAnswer = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = REFUSED, body = ErrorBody),
        (status = 401, description = REFUSED, body = ErrorBody),
        (status = 403, description = REFUSED, body = ErrorBody),
        (status = 408, description = REFUSED, body = ErrorBody),
        (status = 411, description = REFUSED, body = ErrorBody),
        (status = 413, description = REFUSED, body = ErrorBody),
        (status = 429, description = REFUSED, body = ErrorBody),
        (status = 500, description = REFUSED, body = ErrorBody),
        (status = 503, description = REFUSED, body = ErrorBody),
    ))]
pub(crate) async fn run_code<R: Runner>(
    caller: Caller,
    api: Arc<Api<R>>,
    accept: Option<String>,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Response {
    let request_id = new_request_id();
    let received = Instant::now();
    let answered = async {
        if declared.is_none() {
            return Err(ApiError::LengthRequired);
        }
        let body = api.body.read(&caller.client, declared, body).await?;
        let registry = api.runner.registry();
        let request = RunRequest::parse(&body)?;
        let (job, checks) = request.into_judged_job(
            &registry,
            &api.bounds,
            &api.catalogue,
            caller.client.clone(),
        )?;
        let judges = checks.as_ref().map_or(1, |c| c.plan.programs());
        api.gate.charge(&caller, job.inputs.len() * judges)?;
        drop(body);
        if live::sse::wanted(accept.as_deref()) && checks.is_none() {
            let ticket = live::open(&api, &caller)?;
            return Ok(live::sse::reply(
                api.clone(),
                job,
                ticket,
                request_id.clone(),
            ));
        }
        let refused = |e| ApiError::from_run(e, &request_id);
        match checks {
            None => {
                let report = api.runner.run(job).await.map_err(refused)?;
                let answer = RunResponse::new(&report);
                log_run(&request_id, &answer, &report, received);
                let mut response = warp::reply::json(&answer).into_response();
                add_timing_headers(&mut response, &report.timing, received.elapsed());
                Ok(response)
            }
            Some(checks) => {
                let runner = api.runner.as_ref();
                let judged = crate::judging::judge(runner, job, checks.plan).await;
                let judged = judged.map_err(refused)?;
                let answer = BatchResponse::new(&judged, &checks.names);
                tracing::info!(
                    %request_id,
                    language = %answer.language,
                    version = %answer.version,
                    status = answer.status,
                    passed = answer.summary.passed,
                    total = answer.summary.total,
                    total_ms = received.elapsed().as_millis() as u64,
                    "batch finished"
                );
                Ok(warp::reply::json(&answer).into_response())
            }
        }
    }
    .await;
    let mut response = answered.unwrap_or_else(|e: ApiError| {
        tracing::info!(%request_id, code = e.code(), error = %e, "request refused");
        e.into_response()
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    caller.decorate(response)
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
        cpu_time_ms = ?answer.run.cpu_time_ms,
        memory_peak_bytes = ?answer.run.memory_peak_bytes,
        total_ms = received.elapsed().as_millis() as u64,
        pooled = report.timing.pool == PoolUse::Hit,
        "run finished"
    );
}
