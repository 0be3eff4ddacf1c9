//! The probes and the language list: `GET /health`, `GET /ready`,
//! `GET /languages`, `GET /metrics`, `GET /openapi.json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::Api;
use crate::language::Language;
use crate::limits::Limits;
use crate::runner::Runner;

/// `GET /health`: the process serves (liveness).
pub fn health() -> Response {
    warp::reply::json(&json!({ "status": "ok" })).into_response()
}

/// `GET /ready`: 200 when Docker answers and every image is present, with
/// the languages and the sandboxes waiting in the pool; else 503 with the
/// problems (sentences) and the missing images.
pub async fn ready<R: Runner>(api: Arc<Api<R>>) -> Response {
    let readiness = api.runner.readiness().await;
    if readiness.problems.is_empty() {
        let pool: BTreeMap<String, usize> = readiness.pool.into_iter().collect();
        let target: BTreeMap<String, usize> = readiness.pool_target.into_iter().collect();
        let body = json!({
            "status": "ready",
            "languages": readiness.languages,
            "pool": pool,
            "pool_target": target,
        });
        warp::reply::json(&body).into_response()
    } else {
        let body = json!({
            "status": "not_ready",
            "problems": readiness.problems,
            "missing_images": readiness.missing_images,
        });
        warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}

/// One language version as `GET /languages` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LanguageInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub version: String,
    pub image: String,
    /// The run's limits, with the keys of a language file's `[limits]`.
    pub limits: Limits,
    /// The compile stage's limits, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile_limits: Option<Limits>,
}

impl From<&Language> for LanguageInfo {
    fn from(l: &Language) -> Self {
        LanguageInfo {
            name: l.name.clone(),
            aliases: l.aliases.clone(),
            version: l.version.clone(),
            image: l.image.clone(),
            limits: l.limits.clone(),
            compile_limits: l.compile.as_ref().map(|c| c.limits.clone()),
        }
    }
}

/// `GET /languages`: every language version (sorted by name, newest
/// first), with its limits.
pub fn languages<R: Runner>(api: Arc<Api<R>>) -> Response {
    let registry = api.runner.registry();
    let list: Vec<LanguageInfo> = registry
        .languages()
        .iter()
        .map(|l| LanguageInfo::from(l.as_ref()))
        .collect();
    warp::reply::json(&json!({ "languages": list })).into_response()
}

/// `GET /metrics`: the Prometheus metrics (text exposition format 0.0.4),
/// their gauges brought up to date first.
pub fn metrics<R: Runner>(api: Arc<Api<R>>) -> Response {
    api.runner.observe(&api.metrics);
    let mut response = api.metrics.encode().into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of every route.
pub fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut response = DOCUMENT
        .get_or_init(super::openapi::document)
        .clone()
        .into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}
