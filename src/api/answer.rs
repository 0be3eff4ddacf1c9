//! What the dialects' answers share: a typed body written as JSON with its
//! status; the id every answer and log line carries; the headers of a run that was served (`x-code-runner-pool`,
//! `Server-Timing`), which `/run-code` and Piston's `execute` both send;
//! and the schema helpers of an answer that is one of several types.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{Ref, RefOr, Schema};
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

use crate::outcome::{PoolUse, Timing};

/// Header carrying the id of a request, as written in the logs.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// A fresh id for a request.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Header saying whether a run's sandbox came from the pool (`hit`) or was
/// started for it (`miss`).
pub(crate) const POOL_HEADER: &str = "x-code-runner-pool";

/// `body`, as JSON, answered with `status`.
pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// `body`, as JSON, answered with `status`; `Err` when `body` cannot be
/// written (a Judge0 view whose text is not UTF-8, base64 not asked).
pub(crate) fn try_json(
    status: StatusCode,
    body: &impl Serialize,
) -> Result<Response, serde_json::Error> {
    let mut response = Response::new(serde_json::to_vec(body)?.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// How [`POOL_HEADER`] names a run's use of the pool.
fn pool_use(pool: PoolUse) -> &'static str {
    match pool {
        PoolUse::Hit => "hit",
        PoolUse::Miss => "miss",
    }
}

/// `x-code-runner-pool` and `Server-Timing`: the phases of the run, the
/// time in Engine API calls and waiting for the program, and in all.
pub(crate) fn add_timing_headers(response: &mut Response, timing: &Timing, total: Duration) {
    let headers = response.headers_mut();
    headers.insert(POOL_HEADER, HeaderValue::from_static(pool_use(timing.pool)));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut value: String = timing
        .phases
        .iter()
        .map(|(phase, d)| format!("{};dur={:.3}, ", phase.as_str(), ms(*d)))
        .collect();
    value.push_str(&format!(
        "docker;dur={:.3}, total;dur={:.3}",
        ms(timing.docker),
        ms(total)
    ));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("server-timing", value);
    }
}

/// A reference to `T`'s schema in the document's components: how an
/// answer that is one of several types (`oneOf`, `anyOf`) names each.
pub(crate) fn reference<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

/// Adds `T`'s schema, and those it refers to, to the document's
/// components.
pub(crate) fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}
