//! Judge0 CE 1.13.1's API under `/judge0` (its own paths after the
//! prefix: `POST /judge0/submissions`, `GET /judge0/languages`, …), so that
//! Judge0's clients, its official Python SDK among them, work with the
//! base URL `http://HOST:PORT/judge0`. (Judge0 serves from `/`, where this
//! service's own `/languages` already is.)
//!
//! The shapes, status codes and messages are Judge0's
//! (`app/controllers/*.rb` at v1.13.1): [`info`] answers what the service
//! is, [`submissions`] takes and shows submissions. Errors are
//! `{"error": …}` ([`Judge0ErrorBody`]): Judge0's own refusals with
//! Judge0's status, the service's trouble (and a refused body) with the
//! status and headers [`ApiError`] gives it everywhere. A refused
//! submission is 422 with Judge0's `{"field": ["message"]}`. The work is
//! the [`Judge0`](crate::judge0::Judge0) service's.

mod info;
mod submissions;

use std::sync::Arc;

use bytes::Buf;
use futures_util::Stream;
use serde::Serialize;
use serde_json::Value;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::error::ApiError;
use super::gate::Caller;
use super::{Api, answer, new_request_id};
use crate::judge0::Judge0Error;
use crate::judge0::render::Fields;
use crate::runner::Runner;

/// Judge0's part of the API's document: the routes [`handle`] serves,
/// relative to `/judge0`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    submissions::create,
    submissions::create_batch,
    submissions::show_batch,
    submissions::show,
    submissions::delete,
    info::languages,
    info::all_languages,
    info::language,
    info::statuses,
    info::about,
    info::config_info,
    info::version,
))]
pub(super) struct Judge0Api;

/// `/judge0/<tail>`: Judge0's routes, each to its handler.
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
    let params = Params::parse(&query);
    let answered = match (&method, segments.as_slice()) {
        (&Method::GET, ["about"]) => Ok(info::about()),
        (&Method::GET, ["version"]) => Ok(info::version()),
        (&Method::GET, ["config_info"]) => Ok(info::config_info(&api)),
        (&Method::GET, ["statuses"]) => Ok(info::statuses()),
        (&Method::GET, ["languages"]) => Ok(info::languages(&api)),
        (&Method::GET, ["languages", "all"]) => Ok(info::all_languages(&api)),
        (&Method::GET, ["languages", id]) => info::language(&api, id),
        (&Method::POST, ["submissions"]) => {
            let answered = submissions::create(&api, &request, &params, body).await;
            return caller.decorate(answered.unwrap_or_else(Refused::into_response));
        }
        (&Method::POST, ["submissions", "batch"]) => {
            let answered = submissions::create_batch(&api, &request, &params, body).await;
            return caller.decorate(answered.unwrap_or_else(Refused::into_response));
        }
        (&Method::GET, ["submissions", "batch"]) => submissions::show_batch(&api, &params).await,
        (&Method::GET, ["submissions", token]) => submissions::show(&api, &params, token).await,
        (&Method::DELETE, ["submissions", token]) => {
            submissions::delete(&api, &params, token).await
        }
        _ => Err(Refused::not_found()),
    };
    answered.unwrap_or_else(Refused::into_response)
}

/// The query parameters of Judge0's submission routes, as Judge0 reads
/// them: the first of each name counts, and a flag is set only by the text
/// `true`.
#[derive(Debug, Clone, Default, PartialEq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// `true`: text fields are base64, in and out.
    #[param(value_type = Option<bool>)]
    base64_encoded: bool,
    /// `true`: answer with the result (creation only).
    #[param(value_type = Option<bool>)]
    wait: bool,
    /// Fields to answer, comma-separated, or `*`.
    fields: Option<String>,
    /// The tokens of `GET /submissions/batch`, comma-separated (described
    /// there).
    #[param(ignore)]
    tokens: Option<String>,
}

impl Params {
    fn parse(query: &str) -> Params {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        Params {
            base64_encoded: get("base64_encoded").as_deref() == Some("true"),
            wait: get("wait").as_deref() == Some("true"),
            fields: get("fields"),
            tokens: get("tokens"),
        }
    }

    /// The fields `fields=` selects, or Judge0's 400 naming those it does
    /// not know.
    fn fields(&self) -> Result<Fields, Refused> {
        Fields::parse(self.fields.as_deref())
            .map_err(|text| Refused::Judge0(StatusCode::BAD_REQUEST, text))
    }
}

/// Who sent a request, and the length its body declared.
struct Request<'a> {
    caller: &'a Caller,
    declared: Option<u64>,
}

/// Judge0's error: `{"error": text}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct Judge0ErrorBody {
    error: String,
}

/// Why a Judge0 request is not answered as asked; written in Judge0's
/// `{"error"}` ([`Judge0ErrorBody`]).
#[derive(Debug)]
enum Refused {
    /// One of Judge0's own refusals, with its status.
    Judge0(StatusCode, String),
    /// The service's trouble, or a refused body: with the status and
    /// headers [`ApiError`] gives it.
    Trouble(ApiError),
}

impl Refused {
    /// Judge0's 404.
    fn not_found() -> Refused {
        Refused::Judge0(StatusCode::NOT_FOUND, "Not Found".into())
    }

    /// A call Judge0's service could not serve (a full queue, the
    /// database, no storage, a run refused, an internal fault: logged with
    /// a request id).
    fn failed(e: Judge0Error) -> Refused {
        Refused::Trouble(ApiError::from_judge0(e, &new_request_id()))
    }

    fn into_response(self) -> Response {
        match self {
            Refused::Judge0(status, error) => answer::json(status, &Judge0ErrorBody { error }),
            Refused::Trouble(e) => e.respond(&Judge0ErrorBody {
                error: e.to_string(),
            }),
        }
    }
}

/// The request's body as JSON (an empty one is `{}`), or the answer
/// refusing it.
async fn read_json<R: Runner>(
    api: &Api<R>,
    request: &Request<'_>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<Value, Refused> {
    let bytes = api
        .body
        .read(&request.caller.client, request.declared, body)
        .await
        .map_err(Refused::Trouble)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Refused::Trouble(ApiError::MalformedJson(e.to_string())))
}
