//! The HTTP API: its routes ([`routes`]), each dialect's wire types and
//! handler ([`native`]: `POST /run-code`; [`piston`]: Piston's v2 API under
//! `/api/v2`), the probes ([`probes`]), request
//! bodies ([`body`]) and the mapping of every error to a JSON response
//! ([`error`]). It depends on the pipeline through the [`Runner`] seam
//! only.

mod body;
pub mod error;
pub mod judge0;
pub mod native;
pub mod piston;
pub mod probes;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use warp::{Filter, Reply};

use crate::job::RequestBounds;
use crate::judge0::Judge0;
use crate::limits::Limits;
use crate::runner::Runner;
use body::BodyReader;

/// Header carrying the id of a request, as written in the logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header saying whether a run's sandbox came from the pool (`hit`) or was
/// started for it (`miss`).
pub const POOL_HEADER: &str = "x-code-runner-pool";

/// The HTTP settings of the API, from the configuration.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// The size bounds of a request's parts.
    pub bounds: RequestBounds,
    /// The server's default run limits (Judge0's `/config_info` reports
    /// them).
    pub defaults: Limits,
}

/// What every handler shares: the runner, Judge0's service and the
/// request bounds.
#[derive(Debug)]
pub struct Api<R> {
    pub runner: Arc<R>,
    judge0: Arc<Judge0<R>>,
    body: BodyReader,
    bounds: RequestBounds,
    defaults: Limits,
}

/// Every route of the service, with errors rendered as JSON.
pub fn routes<R: Runner>(
    runner: Arc<R>,
    judge0: Arc<Judge0<R>>,
    settings: ApiSettings,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let max_body = settings.max_body_bytes;
    let api = Arc::new(Api {
        runner,
        judge0,
        body: BodyReader::new(settings.max_body_bytes, settings.body_timeout),
        bounds: settings.bounds,
        defaults: settings.defaults,
    });
    let with_api = warp::any().map(move || api.clone());

    let run = warp::path!("run-code")
        .and(warp::post())
        .and(warp::body::content_length_limit(max_body))
        .and(with_api.clone())
        .and(warp::body::stream())
        .then(native::run_code::<R>);
    let health = warp::path!("health").and(warp::get()).map(probes::health);
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with_api.clone())
        .then(probes::ready::<R>);
    let languages = warp::path!("languages")
        .and(warp::get())
        .and(with_api.clone())
        .map(probes::languages::<R>);
    let judge0 = warp::path("judge0")
        .and(with_api.clone())
        .and(warp::method())
        .and(warp::path::tail())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::body::stream())
        .then(judge0::handle::<R>);
    let piston = warp::path("api")
        .and(warp::path("v2"))
        .and(with_api)
        .and(warp::method())
        .and(warp::path::tail())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .then(piston::handle::<R>);

    judge0
        .or(piston)
        .unify()
        .or(run)
        .unify()
        .or(health)
        .unify()
        .or(ready)
        .unify()
        .or(languages)
        .unify()
        .recover(error::recover)
        .unify()
}

/// A fresh id for a request.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
