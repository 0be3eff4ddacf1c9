//! What every handler of the API shares: the [`Api`] state (the runner,
//! Judge0's service, the door, the metrics, the request bounds).

use crate::judging::catalogue::Catalogue;
use std::sync::Arc;

use super::body::BodyReader;
use super::gate::Gate;
use crate::config::{Config, RequestBounds};
use crate::judge0::Judge0;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::runner::Runner;

/// What every handler shares: the runner, Judge0's service, the door, the
/// metrics and the request bounds.
#[derive(Debug)]
pub(crate) struct Api<R> {
    pub(crate) runner: Arc<R>,
    pub(super) judge0: Arc<Judge0<R>>,
    pub(super) gate: Gate,
    pub(super) metrics: Arc<Metrics>,
    pub(super) body: BodyReader,
    pub(super) bounds: RequestBounds,
    pub(super) defaults: Limits,
    /// The operator's shared checkers and interactors.
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) streams: Arc<super::live::Streams>,
    /// The streamed runs' sockets, which outlive their connections'
    /// requests: shutdown waits for them ([`Api::sessions_ended`]).
    pub(super) sessions: tokio_util::task::TaskTracker,
}

impl<R: Runner> Api<R> {
    /// Forgets the rate-limit state of callers not seen lately.
    pub(crate) fn forget_idle(&self) {
        self.gate.forget_idle();
    }

    /// Waits until every streamed run's socket has ended (once the server
    /// stopped taking connections: none starts after).
    pub(crate) async fn sessions_ended(&self) {
        self.sessions.close();
        self.sessions.wait().await;
    }

    /// Reads the keys file again, if it changed (blocking).
    pub(crate) fn reload_keys(&self) {
        self.gate.reload_keys();
    }

    /// The API of `config`: its body bounds (`[server]`), request bounds
    /// (`[requests]`) and default limits (Judge0's `/config_info` reports
    /// them).
    pub(crate) fn new(
        runner: Arc<R>,
        judge0: Arc<Judge0<R>>,
        gate: Gate,
        metrics: Arc<Metrics>,
        catalogue: Catalogue,
        config: &Config,
    ) -> Api<R> {
        let server = &config.server;
        Api {
            runner,
            judge0,
            gate,
            metrics: metrics.clone(),
            body: BodyReader::new(server.max_body_bytes, server.body_timeout()),
            bounds: config.requests.clone(),
            defaults: config.limits.clone(),
            catalogue: Arc::new(catalogue),
            streams: super::live::Streams::new(config.streams.clone(), metrics.clone()),
            sessions: tokio_util::task::TaskTracker::new(),
        }
    }
}
