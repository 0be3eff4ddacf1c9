//! The API's errors, each with a stable machine code, and the one place
//! where they, the domain's refusals ([`JobError`], [`RunError`]) and
//! warp's own rejections become HTTP responses.
//!
//! Every error body is JSON: `{"code": "...", "message": "..."}`, plus
//! details where they help (`field`, `languages`, `versions`, `limit`,
//! `image`, `request_id`).

use std::convert::Infallible;

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::http::header::{HeaderValue, RETRY_AFTER};
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

use super::{REQUEST_ID_HEADER, new_request_id};
use crate::job::{Field, JobError};
use crate::language::Lookup;
use crate::runner::RunError;
use crate::text::clip;

/// A request the API refuses, or the service's own trouble.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
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
    /// A body with no `Content-Length`.
    #[error("the request needs a Content-Length header")]
    LengthRequired,
}

impl From<super::gate::Refused> for ApiError {
    fn from(refused: super::gate::Refused) -> ApiError {
        use super::gate::Refused;
        let message = refused.to_string();
        match refused {
            Refused::NoKey | Refused::BadKey => ApiError::Unauthorized(message),
            Refused::NotAllowed(_) => ApiError::Forbidden(message),
            Refused::RateLimited { retry_s, .. } => ApiError::RateLimited { message, retry_s },
        }
    }
}

impl ApiError {
    /// The stable machine code clients can branch on.
    pub fn code(&self) -> &'static str {
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
            ApiError::LengthRequired => "length_required",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::BodyUnreadable(_)
            | ApiError::InvalidType(_)
            | ApiError::UnknownField(_)
            | ApiError::InvalidField { .. }
            | ApiError::UnknownLanguage { .. }
            | ApiError::UnknownVersion { .. } => StatusCode::BAD_REQUEST,
            ApiError::FieldTooLarge { .. } | ApiError::BodyTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy | ApiError::ClientBusy | ApiError::BodiesBusy => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::ShuttingDown
            | ApiError::DockerUnavailable
            | ApiError::ImageMissing { .. }
            | ApiError::RuntimeMissing { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::UnknownField(field)
            | ApiError::InvalidField { field, .. }
            | ApiError::FieldTooLarge { field, .. } => json!({ "field": field }),
            ApiError::UnknownLanguage { available, .. } => json!({ "languages": available }),
            ApiError::UnknownVersion { versions, .. } => json!({ "versions": versions }),
            ApiError::BodyTooLarge { limit } => json!({ "limit": limit }),
            ApiError::ImageMissing { image, .. } => json!({ "image": image }),
            ApiError::RuntimeMissing { runtime, .. } => json!({ "runtime": runtime }),
            ApiError::Internal { request_id } => json!({ "request_id": request_id }),
            _ => json!({}),
        }
    }

    /// A refused job, with `name` giving the dialect's name of a field.
    pub fn from_job(
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
    pub fn from_run(e: RunError, request_id: &str) -> ApiError {
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
}

impl warp::reject::Reject for ApiError {}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        if let (Value::Object(body), Value::Object(details)) = (&mut body, self.details()) {
            body.extend(details);
        }
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        if matches!(
            self,
            ApiError::Busy | ApiError::ClientBusy | ApiError::BodiesBusy | ApiError::ShuttingDown
        ) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::Internal { request_id } = &self
            && let Ok(value) = HeaderValue::from_str(request_id)
        {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        match &self {
            ApiError::RateLimited { retry_s, .. } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_s));
            }
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    warp::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
        response
    }
}

fn plain(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "code": code, "message": message });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Turns every rejection, ours or warp's, into a JSON error response.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
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
        return Ok(plain(status, code, message));
    }
    let request_id = new_request_id();
    tracing::error!(%request_id, ?rejection, "unhandled rejection");
    Ok(ApiError::Internal { request_id }.into_response())
}
