//! Judge0 CE 1.13.1's API under `/judge0` (its own paths after the
//! prefix: `POST /judge0/submissions`, `GET /judge0/languages`, …), so that
//! Judge0's clients, its official Python SDK among them, work with the
//! base URL `http://HOST:PORT/judge0`. (Judge0 serves from `/`, where this
//! service's own `/languages` already is.)
//!
//! The shapes, status codes and messages are Judge0's
//! (`app/controllers/*.rb` at v1.13.1): [`info`] answers what the service
//! is, [`system`] what it holds and runs on, [`sessions`] whether a key
//! is good, [`submissions`] takes and shows submissions. Errors are
//! `{"error": …}` ([`Judge0ErrorBody`](request::Judge0ErrorBody)): Judge0's own refusals with
//! Judge0's status, the service's trouble (and a refused body) with the
//! status and headers [`ApiError`](super::error::ApiError) gives it everywhere. A refused
//! submission is 422 with Judge0's `{"field": ["message"]}`. The work is
//! the [`Judge0`](crate::judge0::Judge0) service's.

mod info;
mod request;
mod sessions;
mod submissions;
mod system;

use std::sync::Arc;

use bytes::Buf;
use futures_util::Stream;
use warp::http::Method;
use warp::reply::Response;

use super::gate::Caller;
use super::state::Api;
use crate::runner::Runner;
use request::{Params, Refused, Request};

/// Judge0's part of the API's document: the routes [`handle`] serves,
/// relative to `/judge0`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    submissions::create,
    submissions::create_batch,
    submissions::show_batch,
    submissions::show,
    submissions::list,
    submissions::delete,
    info::languages,
    info::all_languages,
    info::language,
    info::statuses,
    info::about,
    info::config_info,
    info::version,
    info::isolate,
    info::license,
    system::workers,
    system::statistics,
    system::system_info,
    sessions::authenticate,
    sessions::authorize,
))]
pub(super) struct Judge0Api;

/// `/judge0/<tail>`: Judge0's routes, each to its handler.
pub(crate) async fn handle<R: Runner>(
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
    let params = Params::parse(&query);
    let answered = match (&method, segments.as_slice()) {
        (&Method::GET, ["about"]) => Ok(info::about(&api)),
        (&Method::GET, ["version"]) => Ok(info::version()),
        (&Method::GET, ["isolate"]) => Ok(info::isolate()),
        (&Method::GET, ["license"]) => Ok(info::license()),
        (&Method::GET, ["workers"]) => system::workers(&api).await,
        (&Method::GET, ["statistics"]) => system::statistics(&api, &request).await,
        (&Method::GET, ["system_info"]) => Ok(system::system_info()),
        (&Method::POST, ["authenticate"]) => Ok(sessions::authenticate()),
        (&Method::POST, ["authorize"]) => sessions::authorize(&api),
        (&Method::GET, ["config_info"]) => Ok(info::config_info(&api)),
        (&Method::GET, ["statuses"]) => Ok(info::statuses()),
        (&Method::GET, ["languages"]) => Ok(info::languages(&api)),
        (&Method::GET, ["languages", "all"]) => Ok(info::all_languages(&api)),
        (&Method::GET, ["languages", id]) => info::language(&api, id),
        (&Method::POST, ["submissions"]) => {
            submissions::create(&api, &request, &params, body).await
        }
        (&Method::POST, ["submissions", "batch"]) => {
            submissions::create_batch(&api, &request, &params, body).await
        }
        (&Method::GET, ["submissions"]) => submissions::list(&api, &request, &params).await,
        (&Method::GET, ["submissions", "batch"]) => {
            submissions::show_batch(&api, &request, &params).await
        }
        (&Method::GET, ["submissions", token]) => {
            submissions::show(&api, &request, &params, token).await
        }
        (&Method::DELETE, ["submissions", token]) => {
            submissions::delete(&api, &request, &params, token).await
        }
        _ => Err(Refused::not_found()),
    };
    caller.decorate(answered.unwrap_or_else(Refused::into_response))
}
