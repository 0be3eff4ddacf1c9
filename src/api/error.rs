//! The API's errors, each with a stable machine code, and the one place
//! where they, the domain's refusals ([`JobError`], [`RunError`],
//! [`Judge0Error`]), the front door's and warp's own rejections get their
//! HTTP status and headers ([`ApiError::respond`]). A dialect chooses
//! only the body's shape: the native one is [`ErrorBody`],
//! `{"code": "...", "message": "..."}` plus details where they help
//! (`field`, `languages`, `versions`, `limit`, `image`, `runtime`,
//! `request_id`); Piston's is `{"message"}` and Judge0's `{"error"}`,
//! with the same sentence. An internal fault is logged here, with its
//! request id, and answered without its cause.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::http::header::{HeaderMap, HeaderValue, RETRY_AFTER, UPGRADE, WWW_AUTHENTICATE};
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

use super::answer;
use super::answer::{REQUEST_ID_HEADER, new_request_id};
use crate::job::{Field, JobError};
use crate::judge0::Judge0Error;
use crate::judge0::store::Full;
use crate::language::Lookup;
use crate::runner::RunError;
use crate::text::clip;

/// A request the API refuses, or the service's own trouble.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body could not be read: {0}")]
    BodyUnreadable(String),
    #[error("{0}")]
    InvalidType(String),
    #[error("unknown field `{0}` in the request")]
    UnknownField(String),
    #[error("field `{field}` {message}")]
    InvalidField { field: String, message: String },
    #[error("field `{field}` {message}")]
    FieldTooLarge { field: String, message: String },
    #[error("unknown language `{name}`; the languages are: {}", available.join(", "))]
    UnknownLanguage {
        name: String,
        available: Vec<String>,
    },
    #[error("language `{name}` has no version matching `{range}`; its versions are: {}", versions.join(", "))]
    UnknownVersion {
        name: String,
        range: String,
        versions: Vec<String>,
    },
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error("every run slot is busy and the queue is full; retry later")]
    Busy,
    #[error(
        "this client already has its share of the run slots and of the queue in use; retry later"
    )]
    ClientBusy,
    #[error("too many request bodies are being received at once; retry later")]
    BodiesBusy,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("Docker cannot be reached, so no code can run now")]
    DockerUnavailable,
    #[error(
        "the image `{image}` of language `{language}` is not on the Docker engine; runs of it cannot start until it is pulled or built"
    )]
    ImageMissing { image: String, language: String },
    #[error(
        "the OCI runtime `{runtime}` of language `{language}` is not registered with the Docker engine; runs of it cannot start until an operator registers it"
    )]
    RuntimeMissing { runtime: String, language: String },
    #[error("internal error; quote request id {request_id} when reporting it")]
    Internal { request_id: String },
    /// No API key, or one not known.
    #[error("{0}")]
    Unauthorized(String),
    /// A key that may not use the route.
    #[error("{0}")]
    Forbidden(String),
    /// Past the client's rate.
    #[error("{message}")]
    RateLimited { message: String, retry_s: u64 },
    /// A request that runs more programs than the rate's burst: it can
    /// never pass as it is.
    #[error("{0}")]
    TooManyRuns(String),
    /// A body with no `Content-Length`.
    #[error("the request needs a Content-Length header")]
    LengthRequired,
    /// A peer that holds its share of the connections already.
    #[error(
        "this client holds its share of the connections already ({cap}); close one or retry later"
    )]
    TooManyConnections { cap: usize },
    /// Judge0's queue of stored submissions is full (Judge0's words).
    #[error("queue is full")]
    QueueFull,
    /// A client has its share of Judge0's queue waiting already.
    #[error("{0}")]
    ClientQueueFull(String),
    /// A client's stored Judge0 submissions are at their bound.
    #[error("{0}")]
    ClientStorageFull(String),
    /// Judge0's stored submissions are at their bound.
    #[error("{0}")]
    StorageFull(String),
    /// Judge0's submissions database failed.
    #[error("the submissions database failed: {0}")]
    StoreFailed(String),
    /// Judge0's submissions are not stored (`judge0.database = "off"`).
    #[error(
        "submissions are not stored on this server (judge0.database is off): only wait=true is served"
    )]
    NotStored,
    /// The caps on streamed runs open are reached.
    #[error("{0}")]
    TooManyStreams(String),
    /// A WebSocket whose first frame did not come in time.
    #[error("no run request came within {ms} ms of the connection")]
    FirstFrameTimeout { ms: u64 },
    /// A streamed run's frame that is not one the protocol has.
    #[error("{0}")]
    MalformedFrame(String),
    /// A plain request to a WebSocket's path.
    #[error(
        "this path is a WebSocket: open it with an upgrade (Connection: Upgrade, Upgrade: websocket)"
    )]
    UpgradeRequired,
}

impl From<super::gate::Refused> for ApiError {
    fn from(refused: super::gate::Refused) -> ApiError {
        use super::gate::Refused;
        let message = refused.to_string();
        match refused {
            Refused::NoKey | Refused::BadKey | Refused::TwoKeys(..) => {
                ApiError::Unauthorized(message)
            }
            Refused::NotAllowed(_) => ApiError::Forbidden(message),
            Refused::RateLimited { retry_s, .. } => ApiError::RateLimited { message, retry_s },
            Refused::OverBurst { .. } => ApiError::TooManyRuns(message),
        }
    }
}

impl ApiError {
    /// The stable machine code clients can branch on.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BodyUnreadable(_) => "body_unreadable",
            ApiError::InvalidType(_) => "invalid_type",
            ApiError::UnknownField(_) => "unknown_field",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::FieldTooLarge { .. } => "field_too_large",
            ApiError::UnknownLanguage { .. } => "unknown_language",
            ApiError::UnknownVersion { .. } => "unknown_version",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout { .. } => "body_timeout",
            ApiError::Busy | ApiError::ClientBusy | ApiError::BodiesBusy => "busy",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::DockerUnavailable => "docker_unavailable",
            ApiError::ImageMissing { .. } => "image_missing",
            ApiError::RuntimeMissing { .. } => "runtime_missing",
            ApiError::Internal { .. } => "internal_error",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyRuns(_) => "too_many_runs",
            ApiError::LengthRequired => "length_required",
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::QueueFull | ApiError::ClientQueueFull(_) => "queue_full",
            ApiError::ClientStorageFull(_) | ApiError::StorageFull(_) => "storage_full",
            ApiError::StoreFailed(_) => "store_failed",
            ApiError::NotStored => "not_stored",
            ApiError::TooManyStreams(_) => "too_many_streams",
            ApiError::FirstFrameTimeout { .. } => "first_frame_timeout",
            ApiError::MalformedFrame(_) => "malformed_frame",
            ApiError::UpgradeRequired => "upgrade_required",
        }
    }

    /// The HTTP status it is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::BodyUnreadable(_)
            | ApiError::InvalidType(_)
            | ApiError::UnknownField(_)
            | ApiError::InvalidField { .. }
            | ApiError::UnknownLanguage { .. }
            | ApiError::UnknownVersion { .. }
            | ApiError::MalformedFrame(_)
            | ApiError::NotStored => StatusCode::BAD_REQUEST,
            ApiError::FieldTooLarge { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::TooManyRuns(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } | ApiError::FirstFrameTimeout { .. } => {
                StatusCode::REQUEST_TIMEOUT
            }
            ApiError::Busy | ApiError::ClientBusy | ApiError::BodiesBusy => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::ShuttingDown
            | ApiError::DockerUnavailable
            | ApiError::ImageMissing { .. }
            | ApiError::RuntimeMissing { .. }
            | ApiError::QueueFull
            | ApiError::StoreFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. }
            | ApiError::TooManyConnections { .. }
            | ApiError::ClientQueueFull(_)
            | ApiError::TooManyStreams(_)
            | ApiError::ClientStorageFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
        }
    }

    /// Its headers: `Retry-After` when a retry may succeed, the request id
    /// of an internal fault, the scheme a missing key needs.
    fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            ApiError::Busy
            | ApiError::ClientBusy
            | ApiError::BodiesBusy
            | ApiError::ShuttingDown
            | ApiError::QueueFull
            | ApiError::ClientQueueFull(_)
            | ApiError::TooManyStreams(_)
            | ApiError::TooManyConnections { .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_s, .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_s));
            }
            ApiError::Internal { request_id } => {
                if let Ok(value) = HeaderValue::from_str(request_id) {
                    headers.insert(REQUEST_ID_HEADER, value);
                }
            }
            ApiError::Unauthorized(_) => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::UpgradeRequired => {
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            }
            _ => {}
        }
    }

    /// The answer to this error with `body`, the dialect's shape for it:
    /// its status and headers are this error's, whatever the dialect.
    pub(crate) fn respond(&self, body: &impl Serialize) -> Response {
        let mut response = answer::json(self.status(), body);
        self.add_headers(response.headers_mut());
        response
    }

    /// A refused job, with `name` giving the dialect's name of a field.
    pub(crate) fn from_job(
        e: JobError,
        available: Vec<String>,
        name: impl Fn(Field) -> String,
    ) -> ApiError {
        match e {
            JobError::TooLarge { field, message } => ApiError::FieldTooLarge {
                field: name(field),
                message,
            },
            JobError::Invalid { field, message } => ApiError::InvalidField {
                field: name(field),
                message,
            },
            JobError::Language(Lookup::UnknownLanguage { name }) => ApiError::UnknownLanguage {
                name: clip(&name).into_owned(),
                available,
            },
            JobError::Language(Lookup::UnknownVersion {
                name,
                range,
                available,
            }) => ApiError::UnknownVersion {
                name,
                range: clip(&range).into_owned(),
                versions: available,
            },
            JobError::Language(Lookup::BadRange { range, reason }) => ApiError::InvalidField {
                field: "version".to_string(),
                message: format!("`{}` is not a version range: {reason}", clip(&range)),
            },
            JobError::LimitRaised { stage, raised } => ApiError::InvalidField {
                field: name(crate::job::Field::Limit(stage, raised.limit)),
                message: format!(
                    "may only lower the {stage} limit of the language, {} (got {})",
                    raised.allowed, raised.requested
                ),
            },
        }
    }

    /// A job that did not run; an internal error is logged here, with
    /// `request_id`, and answered without its cause.
    pub(crate) fn from_run(e: RunError, request_id: &str) -> ApiError {
        match e {
            RunError::Busy => ApiError::Busy,
            RunError::ClientBusy => ApiError::ClientBusy,
            RunError::ShuttingDown => ApiError::ShuttingDown,
            RunError::DockerUnavailable(reason) => {
                tracing::warn!(%request_id, %reason, "Docker cannot be reached");
                ApiError::DockerUnavailable
            }
            RunError::ImageMissing { image, language } => {
                ApiError::ImageMissing { image, language }
            }
            RunError::RuntimeMissing { runtime, language } => {
                ApiError::RuntimeMissing { runtime, language }
            }

            RunError::Internal(cause) => {
                tracing::error!(%request_id, %cause, "run failed");
                ApiError::Internal {
                    request_id: request_id.to_string(),
                }
            }
        }
    }

    /// A Judge0 call that could not be served; the database's failures
    /// and an internal fault are logged here, with `request_id`.
    pub(crate) fn from_judge0(e: Judge0Error, request_id: &str) -> ApiError {
        match e {
            Judge0Error::Full(Full::Queue) => ApiError::QueueFull,
            Judge0Error::Full(full @ Full::ClientQueue(_)) => {
                ApiError::ClientQueueFull(full.to_string())
            }
            Judge0Error::Full(full @ (Full::ClientRows(_) | Full::ClientBytes(_))) => {
                ApiError::ClientStorageFull(full.to_string())
            }
            Judge0Error::Full(full @ (Full::Rows(_) | Full::Bytes(_))) => {
                ApiError::StorageFull(full.to_string())
            }
            Judge0Error::NotStored => ApiError::NotStored,
            Judge0Error::Store(e) => {
                tracing::error!(%request_id, error = %e, "judge0: the submissions database failed");
                ApiError::StoreFailed(e.0)
            }
            Judge0Error::Unreadable(cause) => {
                tracing::error!(%request_id, %cause, "judge0: a stored submission cannot be read");
                ApiError::Internal {
                    request_id: request_id.to_string(),
                }
            }
            Judge0Error::Run(e) => ApiError::from_run(e, request_id),
        }
    }
}

/// The native dialect's error (and the front door's and warp's, on every
/// route): a stable `code` and a sentence, with details where they help.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// `malformed_json`, `invalid_field`, `unknown_language`, `busy`,
    /// `unauthorized`, `rate_limited`, `internal_error`, …
    code: &'static str,
    message: String,
    /// The field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The languages served (`unknown_language`).
    #[serde(skip_serializing_if = "Option::is_none")]
    languages: Option<Vec<String>>,
    /// The language's versions (`unknown_version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<String>>,
    /// The largest body, in bytes (`body_too_large`).
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    /// The image that is missing (`image_missing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    /// The OCI runtime that is missing (`runtime_missing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<String>,
    /// The id to quote (`internal_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ErrorBody {
    /// A code and a message, without details.
    fn plain(code: &'static str, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            field: None,
            languages: None,
            versions: None,
            limit: None,
            image: None,
            runtime: None,
            request_id: None,
        }
    }
}

impl From<&ApiError> for ErrorBody {
    fn from(e: &ApiError) -> ErrorBody {
        let mut body = ErrorBody::plain(e.code(), e.to_string());
        match e {
            ApiError::UnknownField(field)
            | ApiError::InvalidField { field, .. }
            | ApiError::FieldTooLarge { field, .. } => body.field = Some(field.clone()),
            ApiError::UnknownLanguage { available, .. } => body.languages = Some(available.clone()),
            ApiError::UnknownVersion { versions, .. } => body.versions = Some(versions.clone()),
            ApiError::BodyTooLarge { limit } => body.limit = Some(*limit),
            ApiError::ImageMissing { image, .. } => body.image = Some(image.clone()),
            ApiError::RuntimeMissing { runtime, .. } => body.runtime = Some(runtime.clone()),
            ApiError::Internal { request_id } => body.request_id = Some(request_id.clone()),
            _ => {}
        }
        body
    }
}

impl warp::reject::Reject for ApiError {}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        self.respond(&ErrorBody::from(&self))
    }
}

/// The answer, as bytes on the wire, to a connection of a peer that holds
/// `cap` connections already: the server writes it before reading any
/// request, and closes the connection.
pub(crate) fn peer_refusal(cap: usize) -> Vec<u8> {
    let refusal = ApiError::TooManyConnections { cap };
    let status = refusal.status();
    let mut headers = HeaderMap::new();
    refusal.add_headers(&mut headers);
    let body = serde_json::to_vec(&ErrorBody::from(&refusal)).expect("an error body serializes");
    let mut wire = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    for (name, value) in &headers {
        wire.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    wire.push_str("\r\n");
    let mut wire = wire.into_bytes();
    wire.extend_from_slice(&body);
    wire
}

/// Turns every rejection, ours or warp's, into a JSON error response.
pub(crate) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(e.clone().into_response());
    }
    let known = if rejection.is_not_found() {
        Some((
            StatusCode::NOT_FOUND,
            "not_found",
            "no such path; the paths are POST /run-code, /api/v2/… (Piston), /judge0/… (Judge0), GET /health, /ready, /languages, /metrics and /openapi.json",
        ))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Some((
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not take that HTTP method",
        ))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Some((
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the limit",
        ))
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        Some((
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "the request needs a Content-Length header",
        ))
    } else {
        None
    };
    if let Some((status, code, message)) = known {
        return Ok(answer::json(status, &ErrorBody::plain(code, message)));
    }
    let request_id = new_request_id();
    tracing::error!(%request_id, ?rejection, "unhandled rejection");
    Ok(ApiError::Internal { request_id }.into_response())
}
