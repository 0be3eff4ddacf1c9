//! Judge0's authentication and authorization (`sessions_controller.rb`):
//! `POST /judge0/authenticate` and `POST /judge0/authorize`, over this
//! service's API keys. The front door has checked the key already
//! (Judge0's `X-Auth-Token` and `X-Auth-User` are keys as any other
//! header's), so a request that reaches these is authenticated. Judge0
//! asks for authorization to list submissions; here any key may list its
//! own, and with keys off nothing is authorized: no caller may list every
//! caller's submissions.

use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::super::error::ErrorBody;
use super::super::state::Api;
use super::request::{Judge0ErrorBody, Refused};
use crate::runner::Runner;

/// Judge0's 403 when keys are off: there is no key to authorize.
pub(super) fn authorized<R: Runner>(api: &Api<R>) -> Result<(), Refused> {
    if api.gate.keys_on() {
        return Ok(());
    }
    Err(Refused::Judge0(
        StatusCode::FORBIDDEN,
        "authorization needs an API key, and keys are off on this server (front_door.api_keys): submissions are not listed".into(),
    ))
}

/// An empty 200, as Judge0's `head :ok`.
fn ok() -> Response {
    warp::reply().into_response()
}

/// Whether the key is good: 200 (or keys are off), and 401 from the door
/// otherwise.
#[utoipa::path(post, path = "/authenticate", tag = "judge0", operation_id = "judge0_authenticate",
    responses(
        (status = 200, description = "The key is good, or keys are off"),
        (status = 401, description = "No key, an unknown one, or two that differ (the front door's refusal)", body = ErrorBody),
    ))]
pub(super) fn authenticate() -> Response {
    ok()
}

/// Whether the key may list submissions (its own): 200 for any good key,
/// 403 when keys are off.
#[utoipa::path(post, path = "/authorize", tag = "judge0", operation_id = "judge0_authorize",
    responses(
        (status = 200, description = "The key may list its submissions"),
        (status = 401, description = "No key, an unknown one, or two that differ (the front door's refusal)", body = ErrorBody),
        (status = 403, description = "Keys are off: nothing is authorized", body = Judge0ErrorBody),
    ))]
pub(super) fn authorize<R: Runner>(api: &Api<R>) -> Result<Response, Refused> {
    authorized(api).map(|()| ok())
}
