//! The error table of `docs/api.md` held to the code: every refusal the
//! service can answer, ours and warp's, is a row with its HTTP status, and
//! no row names a code that is not answered.

use std::collections::BTreeSet;

use super::{hello, send};
use crate::api::error::ApiError;

/// One of each refusal; `index` below makes sure none is left out.
fn one_of_each() -> Vec<ApiError> {
    let text = || "x".to_string();
    vec![
        ApiError::MalformedJson(text()),
        ApiError::BodyUnreadable(text()),
        ApiError::InvalidType(text()),
        ApiError::UnknownField(text()),
        ApiError::InvalidField {
            field: text(),
            message: text(),
        },
        ApiError::FieldTooLarge {
            field: text(),
            message: text(),
        },
        ApiError::UnknownLanguage {
            name: text(),
            available: vec![],
        },
        ApiError::UnknownVersion {
            name: text(),
            range: text(),
            versions: vec![],
        },
        ApiError::BodyTooLarge { limit: 1 },
        ApiError::BodyTimeout { ms: 1 },
        ApiError::Busy,
        ApiError::ClientBusy,
        ApiError::BodiesBusy,
        ApiError::ShuttingDown,
        ApiError::DockerUnavailable,
        ApiError::ImageMissing {
            image: text(),
            language: text(),
        },
        ApiError::RuntimeMissing {
            runtime: text(),
            language: text(),
        },
        ApiError::Internal { request_id: text() },
        ApiError::Unauthorized(text()),
        ApiError::Forbidden(text()),
        ApiError::RateLimited {
            message: text(),
            retry_s: 1,
        },
        ApiError::LengthRequired,
        ApiError::QueueFull,
        ApiError::StoreFailed(text()),
        ApiError::NotStored,
        ApiError::TooManyConnections { cap: 1 },
        ApiError::ClientQueueFull(text()),
        ApiError::ClientStorageFull(text()),
        ApiError::StorageFull(text()),
        ApiError::TooManyRuns(text()),
        ApiError::TooManyStreams(text()),
        ApiError::FirstFrameTimeout { ms: 1 },
        ApiError::MalformedFrame(text()),
        ApiError::UpgradeRequired,
    ]
}

/// Each variant's place: a new variant does not compile until it is
/// given one, and the test then fails until `one_of_each` holds it.
fn index(e: &ApiError) -> usize {
    match e {
        ApiError::MalformedJson(_) => 0,
        ApiError::BodyUnreadable(_) => 1,
        ApiError::InvalidType(_) => 2,
        ApiError::UnknownField(_) => 3,
        ApiError::InvalidField { .. } => 4,
        ApiError::FieldTooLarge { .. } => 5,
        ApiError::UnknownLanguage { .. } => 6,
        ApiError::UnknownVersion { .. } => 7,
        ApiError::BodyTooLarge { .. } => 8,
        ApiError::BodyTimeout { .. } => 9,
        ApiError::Busy => 10,
        ApiError::ClientBusy => 11,
        ApiError::BodiesBusy => 12,
        ApiError::ShuttingDown => 13,
        ApiError::DockerUnavailable => 14,
        ApiError::ImageMissing { .. } => 15,
        ApiError::RuntimeMissing { .. } => 16,
        ApiError::Internal { .. } => 17,
        ApiError::Unauthorized(_) => 18,
        ApiError::Forbidden(_) => 19,
        ApiError::RateLimited { .. } => 20,
        ApiError::LengthRequired => 21,
        ApiError::QueueFull => 22,
        ApiError::StoreFailed(_) => 23,
        ApiError::NotStored => 24,
        ApiError::TooManyConnections { .. } => 25,
        ApiError::ClientQueueFull(_) => 26,
        ApiError::ClientStorageFull(_) => 27,
        ApiError::StorageFull(_) => 28,
        ApiError::TooManyRuns(_) => 29,
        ApiError::TooManyStreams(_) => 30,
        ApiError::FirstFrameTimeout { .. } => 31,
        ApiError::MalformedFrame(_) => 32,
        ApiError::UpgradeRequired => 33,
    }
}

const VARIANTS: usize = 34;

/// The rows of the table under `### Errors`: (HTTP status, code).
fn documented() -> BTreeSet<(u16, String)> {
    let docs = include_str!("../../../docs/api.md");
    let table = docs
        .split("| HTTP | `code` | when |")
        .nth(1)
        .expect("docs/api.md has the error table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells[1].parse().expect("an HTTP status");
            (status, cells[2].trim_matches('`').to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_error_table_of_the_docs_is_every_refusal_the_service_answers() {
    let errors = one_of_each();
    let covered: BTreeSet<usize> = errors.iter().map(index).collect();
    assert_eq!(covered, (0..VARIANTS).collect(), "one of each variant");

    let mut answered: BTreeSet<(u16, String)> = errors
        .iter()
        .map(|e| (e.status().as_u16(), e.code().to_string()))
        .collect();
    // warp's own refusals, as a client gets them.
    let runner = hello();
    for request in [
        warp::test::request().method("GET").path("/nope"),
        warp::test::request()
            .method("PUT")
            .path("/run-code")
            .body("{}"),
        warp::test::request().method("POST").path("/run-code"),
        warp::test::request()
            .method("POST")
            .path("/run-code")
            .header("content-length", "10485760"),
    ] {
        let reply = send(&runner, request).await;
        let code = reply.body["code"].as_str().expect("a code").to_string();
        answered.insert((reply.status, code));
    }
    assert_eq!(documented(), answered, "docs/api.md's error table");
}
