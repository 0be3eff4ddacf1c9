//! The HTTP API: its routes ([`routes`]); each dialect's wire types and
//! handlers ([`native`]: `POST /run-code`; [`piston`]: Piston's v2 API
//! under `/api/v2`; [`judge0`]: Judge0 CE 1.13.1's under `/judge0`); the
//! probes ([`probes`]); the OpenAPI document of every route, generated
//! from the handlers and their types ([`openapi`]); request bodies
//! ([`body`]); the front door ([`gate`]: keys, rate limits); what answers
//! share ([`answer`]: typed JSON, a run's headers); and the one mapping
//! of every error to its HTTP status and headers ([`error`]). Every
//! answer is a typed value that serialises itself and describes itself
//! in the document. It depends on the pipeline through the [`Runner`]
//! seam only.

mod answer;
mod body;
pub(crate) mod error;
pub(crate) mod gate;
pub(crate) mod judge0;
pub(crate) mod live;
pub(crate) mod native;
pub(crate) mod openapi;
pub(crate) mod piston;
pub(crate) mod probes;
mod state;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;

use warp::{Filter, Reply};

use warp::http::{HeaderMap, Method};

use crate::metrics::StatusLabel;
use crate::runner::Runner;
pub(crate) use error::peer_refusal;
use gate::{Caller, PeerAddr, Route};
pub(crate) use state::Api;

/// The door of `route`: lets the request in as a [`Caller`] (counting it
/// against the rate limit when `runs` says so from its method: every
/// request that runs code, and every one of Judge0's, which read stored
/// submissions of any size) or rejects it (401, 403, 429). A request that
/// runs more than one program is charged the rest by its handler
/// ([`gate::Gate::charge`]).
fn enter<R: Runner>(
    api: Arc<Api<R>>,
    route: Route,
    runs: fn(&Method) -> bool,
) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::method()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and_then(move |method: Method, headers, peer| {
            let api = api.clone();
            async move {
                api.gate
                    .enter(route, runs(&method), &headers, peer)
                    .map_err(|refused| warp::reject::custom(error::ApiError::from(refused)))
            }
        })
}

fn always(_: &Method) -> bool {
    true
}

fn never(_: &Method) -> bool {
    false
}

fn posts(method: &Method) -> bool {
    method == Method::POST
}

/// Every route of the service, with errors rendered as JSON and every
/// answer of 400 and above counted.
pub(crate) fn routes<R: Runner>(
    api: Arc<Api<R>>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_api = {
        let api = api.clone();
        warp::any().map(move || api.clone())
    };

    let run = warp::path!("run-code")
        .and(warp::post())
        .and(enter(api.clone(), Route::Run, always))
        .and(with_api.clone())
        .and(warp::header::optional::<String>("accept"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(native::run_code::<R>);
    let judge0 = warp::path("judge0")
        .and(enter(api.clone(), Route::Judge0, always))
        .and(with_api.clone())
        .and(warp::method())
        .and(warp::path::tail())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(judge0::handle::<R>);
    let piston = warp::path("api")
        .and(warp::path("v2"))
        .and(enter(api.clone(), Route::Piston, posts))
        .and(with_api)
        .and(warp::method())
        .and(warp::path::tail())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(piston::handle::<R>);

    let counted = api.metrics.clone();
    stream_routes(api.clone())
        .or(judge0)
        .unify()
        .or(piston)
        .unify()
        .or(run)
        .unify()
        .or(probe_routes(api.clone()))
        .unify()
        .recover(error::recover)
        .unify()
        .map(move |response: warp::reply::Response| {
            let status = response.status();
            if status.as_u16() >= 400 {
                counted
                    .rejections
                    .get_or_create(&StatusLabel {
                        status: status.as_u16().to_string(),
                    })
                    .inc();
            }
            response
        })
}

/// The streamed runs' sockets, `GET /run-code/ws` and Piston's `GET
/// /api/v2/connect` (each let in by the front door at its first frame),
/// and the playground page.
fn stream_routes<R: Runner>(
    api: Arc<Api<R>>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
+ Clone
+ Send
+ Sync
+ 'static {
    let socket = {
        let api = api.clone();
        warp::get()
            .and(warp::ws())
            .and(warp::any().map(move || api.clone()))
            .and(warp::header::headers_cloned())
            .and(warp::ext::optional::<PeerAddr>())
    };
    let ours = warp::path!("run-code" / "ws")
        .and(socket.clone())
        .map(|ws, api, headers, peer| upgrade(ws, api, headers, peer, live::ws::serve::<R>));
    let piston = warp::path!("api" / "v2" / "connect")
        .and(socket)
        .map(|ws, api, headers, peer| upgrade(ws, api, headers, peer, live::connect::serve::<R>));
    // The same path without an upgrade: told what it is.
    let plain = warp::path!("run-code" / "ws")
        .and(warp::get())
        .map(live::ws::upgrade_required);
    let playground = warp::path!("playground")
        .and(warp::get())
        .map(live::playground::page);
    ours.or(plain)
        .unify()
        .or(piston)
        .unify()
        .or(playground)
        .unify()
}

/// The upgrade of one streamed run's socket, served by `serve` within the
/// frame cap: a browser's socket from another origin is refused before
/// it; the session is tracked, so that shutdown waits for it.
fn upgrade<R: Runner, S>(
    ws: warp::ws::Ws,
    api: Arc<Api<R>>,
    headers: HeaderMap,
    peer: Option<PeerAddr>,
    serve: fn(Arc<Api<R>>, HeaderMap, Option<PeerAddr>, warp::ws::WebSocket) -> S,
) -> warp::reply::Response
where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    if let Err(refused) = live::same_origin(&headers) {
        return refused.into_response();
    }
    let max = api.streams.settings().max_frame_bytes;
    ws.max_frame_size(max)
        .max_message_size(max)
        .on_upgrade(move |socket| {
            let sessions = api.sessions.clone();
            sessions.track_future(serve(api, headers, peer, socket))
        })
        .into_response()
}

/// The probes and documents: `/health`, `/ready`, `/languages`,
/// `/openapi.json` and `/metrics`.
fn probe_routes<R: Runner>(
    api: Arc<Api<R>>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
+ Clone
+ Send
+ Sync
+ 'static {
    let with_api = {
        let api = api.clone();
        warp::any().map(move || api.clone())
    };
    let health = warp::path!("health").and(warp::get()).map(probes::health);
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(enter(api.clone(), Route::Probes, never))
        .and(with_api.clone())
        .then(|_: Caller, api| probes::ready::<R>(api));
    let languages = warp::path!("languages")
        .and(warp::get())
        .and(enter(api.clone(), Route::Probes, never))
        .and(with_api.clone())
        .map(|_: Caller, api| probes::languages::<R>(api));
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .and(enter(api.clone(), Route::Probes, never))
        .map(|_: Caller| openapi::serve());
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(enter(api.clone(), Route::Metrics, never))
        .and(with_api.clone())
        .map(|_: Caller, api| probes::metrics::<R>(api));
    health
        .or(ready)
        .unify()
        .or(languages)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
}
