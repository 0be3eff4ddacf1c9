//! The HTTP API: routes ([`routes`]), handlers ([`handlers`]), wire types
//! ([`models`]) and the mapping of every error to a JSON response
//! ([`error`]).

pub mod error;
pub mod handlers;
pub mod models;

use std::convert::Infallible;
use std::sync::Arc;

use warp::{Filter, Reply};

use crate::app::AppState;

/// Header carrying the id of a request, as written in the logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header saying whether a run's container came from the pool (`hit`) or
/// was started for it (`miss`).
pub const POOL_HEADER: &str = "x-code-runner-pool";

/// Every route of the service, with errors rendered as JSON.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let max_body = state.config.max_body_bytes;
    let with_state = warp::any().map(move || state.clone());

    let run = warp::path!("run-code")
        .and(warp::post())
        .and(warp::body::content_length_limit(max_body))
        .and(with_state.clone())
        .and(warp::body::stream())
        .then(handlers::run_code);
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({ "status": "ok" })));
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with_state.clone())
        .then(handlers::ready);
    let languages = warp::path!("languages")
        .and(warp::get())
        .and(with_state)
        .then(handlers::languages);

    run.map(Reply::into_response)
        .or(health.map(Reply::into_response))
        .unify()
        .or(ready.map(Reply::into_response))
        .unify()
        .or(languages.map(Reply::into_response))
        .unify()
        .recover(error::recover)
        .unify()
}

/// A fresh id for a request.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
