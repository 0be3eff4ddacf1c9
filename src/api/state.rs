//! What every handler of the API shares: the [`Api`] state (the runner,
//! Judge0's service, the door, the metrics, the request bounds), its
//! settings.

use std::sync::Arc;
use std::time::Duration;

use super::body::BodyReader;
use super::gate::Gate;
use crate::job::RequestBounds;
use crate::judge0::Judge0;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::runner::Runner;

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

/// What every handler shares: the runner, Judge0's service, the door, the
/// metrics and the request bounds.
#[derive(Debug)]
pub struct Api<R> {
    pub runner: Arc<R>,
    pub(super) judge0: Arc<Judge0<R>>,
    pub(super) gate: Gate,
    pub(super) metrics: Arc<Metrics>,
    pub(super) body: BodyReader,
    pub(super) bounds: RequestBounds,
    pub(super) defaults: Limits,
}

impl<R: Runner> Api<R> {
    /// Forgets the rate-limit state of callers not seen lately.
    pub fn forget_idle(&self) {
        self.gate.forget_idle();
    }

    pub fn new(
        runner: Arc<R>,
        judge0: Arc<Judge0<R>>,
        gate: Gate,
        metrics: Arc<Metrics>,
        settings: ApiSettings,
    ) -> Api<R> {
        Api {
            runner,
            judge0,
            gate,
            metrics,
            body: BodyReader::new(settings.max_body_bytes, settings.body_timeout),
            bounds: settings.bounds,
            defaults: settings.defaults,
        }
    }
}
