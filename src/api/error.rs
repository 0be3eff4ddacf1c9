//! The API's errors, each with a stable machine code, and the one place
//! where they (and warp's own rejections) become HTTP responses.
//!
//! Every error body is JSON: `{"code": "...", "message": "..."}`, plus
//! details where they help (`field`, `languages`, `request_id`).

use std::convert::Infallible;

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::http::header::{HeaderValue, RETRY_AFTER};
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

/// A request the API refuses, or the service's own trouble.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
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
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error("every run slot is busy and the queue is full; retry later")]
    Busy,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("Docker cannot be reached, so no code can run now")]
    DockerUnavailable,
    #[error(
        "the image `{image}` of language `{language}` is not on the Docker engine; runs of it cannot start until it is pulled or built"
    )]
    ImageMissing { image: String, language: String },
    #[error("internal error; quote request id {request_id} when reporting it")]
    Internal { request_id: String },
}

impl ApiError {
    /// The stable machine code clients can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidType(_) => "invalid_type",
            ApiError::UnknownField(_) => "unknown_field",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::FieldTooLarge { .. } => "field_too_large",
            ApiError::UnknownLanguage { .. } => "unknown_language",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout { .. } => "body_timeout",
            ApiError::Busy => "busy",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::DockerUnavailable => "docker_unavailable",
            ApiError::ImageMissing { .. } => "image_missing",
            ApiError::Internal { .. } => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidType(_)
            | ApiError::UnknownField(_)
            | ApiError::InvalidField { .. }
            | ApiError::UnknownLanguage { .. } => StatusCode::BAD_REQUEST,
            ApiError::FieldTooLarge { .. } | ApiError::BodyTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown
            | ApiError::DockerUnavailable
            | ApiError::ImageMissing { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::UnknownField(field) => json!({ "field": field }),
            ApiError::InvalidField { field, .. } | ApiError::FieldTooLarge { field, .. } => {
                json!({ "field": field })
            }
            ApiError::UnknownLanguage { available, .. } => json!({ "languages": available }),
            ApiError::BodyTooLarge { limit } => json!({ "limit": limit }),
            ApiError::ImageMissing { image, .. } => json!({ "image": image }),
            ApiError::Internal { request_id } => json!({ "request_id": request_id }),
            _ => json!({}),
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
        error_response(
            self.status(),
            body,
            matches!(self, ApiError::Busy | ApiError::ShuttingDown),
        )
    }
}

fn error_response(status: StatusCode, body: Value, retry: bool) -> Response {
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if retry {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn plain(status: StatusCode, code: &str, message: String) -> Response {
    error_response(status, json!({ "code": code, "message": message }), false)
}

/// Turns every rejection, ours or warp's, into a JSON error response.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(e.clone().into_response());
    }
    if rejection.is_not_found() {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such path; the paths are POST /run-code, GET /health, GET /ready and GET /languages"
                .to_string(),
        ));
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not take that HTTP method".to_string(),
        ));
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the limit".to_string(),
        ));
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return Ok(plain(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "the request needs a Content-Length header".to_string(),
        ));
    }
    if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        return Ok(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON".to_string(),
        ));
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            e.to_string(),
        ));
    }
    if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "missing_header",
            e.to_string(),
        ));
    }
    let request_id = super::new_request_id();
    tracing::error!(%request_id, ?rejection, "unhandled rejection");
    Ok(ApiError::Internal { request_id }.into_response())
}
