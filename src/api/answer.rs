//! What the dialects' answers share: a typed body written as JSON with its
//! status.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

/// `body`, as JSON, answered with `status`.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}
