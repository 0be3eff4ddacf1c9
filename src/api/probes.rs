//! The probes and the language list: `GET /health`, `GET /ready`,
//! `GET /languages`, `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::answer;
use super::state::Api;
use crate::language::Language;
use crate::limits::Limits;
use crate::runner::Runner;

/// `GET /health`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`.
    status: &'static str,
}

/// The process serves (liveness).
#[utoipa::path(get, path = "/health", tag = "probes", operation_id = "health",
    responses((status = 200, description = "The process serves", body = Health)))]
pub(crate) fn health() -> Response {
    answer::json(StatusCode::OK, &Health { status: "ok" })
}

/// `GET /ready`'s answer: whether runs can be served.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Ready {
    /// Docker answers and every image is present (200).
    Ready {
        languages: Vec<String>,
        /// Sandboxes waiting in the pool, per language.
        pool: BTreeMap<String, usize>,
        /// What each language's pool aims at now.
        pool_target: BTreeMap<String, usize>,
    },
    /// Runs cannot be served now (503).
    NotReady {
        /// What is wrong, in sentences.
        problems: Vec<String>,
        missing_images: Vec<String>,
    },
}

impl Ready {
    fn status(&self) -> StatusCode {
        match self {
            Ready::Ready { .. } => StatusCode::OK,
            Ready::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether runs can be served: 200 when Docker answers and every image is
/// present, with the languages and the sandboxes waiting in the pool; else
/// 503 with the problems and the missing images.
#[utoipa::path(get, path = "/ready", tag = "probes", operation_id = "ready",
    responses(
        (status = 200, description = "Runs can be served", body = Ready),
        (status = 503, description = "Runs cannot be served now", body = Ready),
    ))]
pub(crate) async fn ready<R: Runner>(api: Arc<Api<R>>) -> Response {
    let readiness = api.runner.readiness().await;
    let ready = if readiness.problems.is_empty() {
        Ready::Ready {
            languages: readiness.languages,
            pool: readiness.pool.into_iter().collect(),
            pool_target: readiness.pool_target.into_iter().collect(),
        }
    } else {
        Ready::NotReady {
            problems: readiness.problems,
            missing_images: readiness.missing_images,
        }
    };
    answer::json(ready.status(), &ready)
}

/// One language version as `GET /languages` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct LanguageInfo {
    name: String,
    aliases: Vec<String>,
    version: String,
    image: String,
    /// The run's limits, with the keys of a language file's `[limits]`.
    limits: Limits,
    /// The compile stage's limits, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    compile_limits: Option<Limits>,
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

/// `GET /languages`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct LanguageList {
    languages: Vec<LanguageInfo>,
}

/// Every language version served (sorted by name, newest first), with its
/// limits.
#[utoipa::path(get, path = "/languages", tag = "probes", operation_id = "languages",
    responses((status = 200, description = "Every language version served", body = LanguageList)))]
pub(crate) fn languages<R: Runner>(api: Arc<Api<R>>) -> Response {
    let registry = api.runner.registry();
    let list = LanguageList {
        languages: registry
            .languages()
            .iter()
            .map(|l| LanguageInfo::from(l.as_ref()))
            .collect(),
    };
    answer::json(StatusCode::OK, &list)
}

/// The Prometheus metrics (text exposition format 0.0.4), their gauges
/// brought up to date first.
#[utoipa::path(get, path = "/metrics", tag = "probes", operation_id = "metrics",
    responses((status = 200, description = "Prometheus metrics (text format 0.0.4)", body = String, content_type = "text/plain")))]
pub(crate) fn metrics<R: Runner>(api: Arc<Api<R>>) -> Response {
    api.runner.observe(&api.metrics);
    let mut response = api.metrics.encode().into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
