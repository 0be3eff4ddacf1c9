//! `GET /playground`: a page, shipped in the binary and loading nothing
//! from elsewhere, that runs code over `GET /run-code/ws`.

use warp::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

/// The page: one file, its styles and script inline.
const PAGE: &str = include_str!("playground.html");

/// What the page may load: itself, and its own origin's API.
const POLICY: &str = "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The playground: runs code over `GET /run-code/ws`, streaming its
/// output, answering its prompts (docs/streaming.md).
#[utoipa::path(get, path = "/playground", tag = "probes", operation_id = "playground",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
pub(crate) fn page() -> Response {
    let mut response = PAGE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
