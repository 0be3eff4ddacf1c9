//! The OpenAPI 3.1 document of every route of every dialect
//! (`GET /openapi.json`), generated with `utoipa` from the handlers
//! themselves (each carries its `#[utoipa::path]`) and the types they
//! answer with and read; Piston's and Judge0's routes are nested under
//! their prefixes. CI checks the live service against it with
//! `schemathesis`.

use utoipa::OpenApi;
use warp::reply::{Reply, Response};

use super::judge0::Judge0Api;
use super::piston::PistonApi;
use super::{live, native, probes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "code-runner",
        description = "Runs untrusted code in locked-down Docker sandboxes. Three dialects: its own (`/run-code`), Piston v2 (`/api/v2`) and Judge0 CE 1.13.1 (`/judge0`). Streamed runs: `GET /run-code/ws` and Piston's `GET /api/v2/connect` (WebSockets), and `POST /run-code` with `Accept: text/event-stream` (Server-Sent Events); `/playground` is a page built on them. With API keys on, send `Authorization: Bearer KEY`, `Authorization: KEY`, `X-API-Key: KEY`, `X-Auth-Token: KEY` or `X-Auth-User: KEY` (every route but `/health`; two headers with different keys are refused)."
    ),
    paths(
        native::run_code,
        live::ws::upgrade_required,
        live::playground::page,
        probes::health,
        probes::ready,
        probes::languages,
        probes::metrics,
        serve,
    ),
    nest(
        (path = "/api/v2", api = PistonApi),
        (path = "/judge0", api = Judge0Api),
    )
)]
struct ApiDoc;

/// The document, as JSON.
pub(crate) fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serialises")
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "probes", operation_id = "openapi",
    responses((status = 200, description = "This document", body = Object)))]
pub(crate) fn serve() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut response = DOCUMENT.get_or_init(document).clone().into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_covers_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for path in [
            "/run-code",
            "/run-code/ws",
            "/playground",
            "/health",
            "/ready",
            "/languages",
            "/metrics",
            "/openapi.json",
            "/api/v2/runtimes",
            "/api/v2/execute",
            "/api/v2/connect",
            "/judge0/submissions",
            "/judge0/submissions/batch",
            "/judge0/submissions/{token}",
            "/judge0/languages",
            "/judge0/languages/all",
            "/judge0/languages/{id}",
            "/judge0/statuses",
            "/judge0/about",
            "/judge0/config_info",
            "/judge0/version",
            "/judge0/isolate",
            "/judge0/license",
            "/judge0/workers",
            "/judge0/statistics",
            "/judge0/system_info",
            "/judge0/authenticate",
            "/judge0/authorize",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        assert_eq!(paths.len(), 28, "{paths:?}");
        // `GET /judge0/submissions` lists, beside the POST that creates.
        let submissions = &doc["paths"]["/judge0/submissions"];
        assert!(
            submissions["get"].is_object() && submissions["post"].is_object(),
            "{submissions}"
        );
        let run = &doc["components"]["schemas"]["RunRequest"]["properties"];
        assert!(
            run["language"].is_object() && run["tests"].is_object(),
            "{run}"
        );
    }
}
