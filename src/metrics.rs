//! The service's Prometheus metrics (`GET /metrics`, the text exposition
//! format), through `prometheus-client`: one registry per running service.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `code_runner_runs_total` | counter | `language`, `status` (`ok`, `runtime_error`, `timeout`, `memory_limit`, `output_limit`, `compile_error`) |
//! | `code_runner_run_duration_seconds` | histogram | `language`: wall time of the program |
//! | `code_runner_run_cpu_seconds` | histogram | `language`: CPU time of the program (where the sandbox reports it) |
//! | `code_runner_run_memory_bytes` | histogram | `language`: peak memory of the sandbox |
//! | `code_runner_queue_wait_seconds` | histogram | time waited for a run slot |
//! | `code_runner_pool_claims_total` | counter | `result` (`hit`, `miss`): runs served from the pool, or not |
//! | `code_runner_pool_ready` | gauge | `language`: sandboxes waiting in the pool |
//! | `code_runner_pool_target` | gauge | `language`: what the pool aims at now (its floor, or recent demand, within the memory budget) |
//! | `code_runner_containers_alive` | gauge | containers and volumes the service holds |
//! | `code_runner_runs_in_flight` | gauge | runs holding a slot |
//! | `code_runner_rejections_total` | counter | `status`: HTTP status of every answer of 400 and above |
//! | `code_runner_docker_errors_total` | counter | `step` (`container create`, `container start`, …): Engine API calls that failed |
//! | `code_runner_language_reload_failures_total` | counter | language files refused while the service ran |
//! | `code_runner_readiness_probes_total` | counter | probes of the engine for `/ready` (at most one a second) |

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunLabels {
    pub(crate) language: String,
    pub(crate) status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LanguageLabel {
    pub(crate) language: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub(crate) result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub(crate) status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StepLabel {
    pub(crate) step: String,
}

type Histograms = Family<LanguageLabel, Histogram, fn() -> Histogram>;

/// Every metric of one service.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) runs: Family<RunLabels, Counter>,
    pub(crate) run_seconds: Histograms,
    pub(crate) cpu_seconds: Histograms,
    pub(crate) memory_bytes: Histograms,
    pub(crate) queue_wait_seconds: Histogram,
    pub(crate) pool_claims: Family<ResultLabel, Counter>,
    pub(crate) pool_ready: Family<LanguageLabel, Gauge>,
    pub(crate) pool_target: Family<LanguageLabel, Gauge>,
    pub(crate) containers_alive: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub(crate) runs_in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub(crate) rejections: Family<StatusLabel, Counter>,
    pub(crate) docker_errors: Family<StepLabel, Counter>,
    pub(crate) reload_failures: Counter<u64, AtomicU64>,
    pub(crate) readiness_probes: Counter<u64, AtomicU64>,
    pub(crate) streams_open: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub(crate) streams_refused: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn seconds() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn bytes() -> Histogram {
    // 1 MiB to 4 GiB, by 4.
    Histogram::new((0..7).map(|i| (1u64 << (20 + 2 * i)) as f64))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `code_runner_` prefix
    /// (the names the metrics table of docs/front-door.md gives).
    pub(crate) fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("code_runner"),
            runs: Family::default(),
            run_seconds: Histograms::new_with_constructor(seconds),
            cpu_seconds: Histograms::new_with_constructor(seconds),
            memory_bytes: Histograms::new_with_constructor(bytes),
            queue_wait_seconds: seconds(),
            pool_claims: Family::default(),
            pool_ready: Family::default(),
            pool_target: Family::default(),
            containers_alive: Gauge::default(),
            runs_in_flight: Gauge::default(),
            rejections: Family::default(),
            docker_errors: Family::default(),
            reload_failures: Counter::default(),
            readiness_probes: Counter::default(),
            streams_open: Gauge::default(),
            streams_refused: Family::default(),
        };
        metrics.describe();
        metrics
    }

    /// Registers every metric under its name and help text.
    fn describe(&mut self) {
        let r = &mut self.registry;
        r.register(
            "runs",
            "Runs finished, by language and status",
            self.runs.clone(),
        );
        r.register(
            "run_duration_seconds",
            "Wall time of the program, by language",
            self.run_seconds.clone(),
        );
        r.register(
            "run_cpu_seconds",
            "CPU time of the program, by language",
            self.cpu_seconds.clone(),
        );
        r.register(
            "run_memory_bytes",
            "Peak memory of the sandbox, by language",
            self.memory_bytes.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time waited for a run slot",
            self.queue_wait_seconds.clone(),
        );
        r.register(
            "pool_claims",
            "Runs served from the pool (hit) or not (miss)",
            self.pool_claims.clone(),
        );
        r.register(
            "pool_ready",
            "Sandboxes waiting in the pool, by language",
            self.pool_ready.clone(),
        );
        r.register(
            "pool_target",
            "What each language's pool aims at now",
            self.pool_target.clone(),
        );
        self.describe_service();
    }

    /// Registers the metrics of the service itself (beside its runs).
    fn describe_service(&mut self) {
        let r = &mut self.registry;
        r.register(
            "containers_alive",
            "Containers and volumes the service holds",
            self.containers_alive.clone(),
        );
        r.register(
            "runs_in_flight",
            "Runs holding a run slot",
            self.runs_in_flight.clone(),
        );
        r.register(
            "rejections",
            "Answers with an HTTP status of 400 and above, by status",
            self.rejections.clone(),
        );
        r.register(
            "docker_errors",
            "Engine API calls that failed, by step",
            self.docker_errors.clone(),
        );
        r.register(
            "language_reload_failures",
            "Language files refused while the service ran",
            self.reload_failures.clone(),
        );
        r.register(
            "readiness_probes",
            "Probes of the engine for /ready",
            self.readiness_probes.clone(),
        );
        r.register(
            "streams_open",
            "Streamed runs open (WebSocket and Server-Sent Events)",
            self.streams_open.clone(),
        );
        r.register(
            "streams_refused",
            "Streamed runs refused at a cap, by cap (total, client)",
            self.streams_refused.clone(),
        );
    }

    /// The exposition text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }

    /// Counts a failed Engine API call.
    pub(crate) fn docker_error(&self, step: impl ToString) {
        self.docker_errors
            .get_or_create(&StepLabel {
                step: step.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_name() {
        let metrics = Metrics::new();
        metrics
            .runs
            .get_or_create(&RunLabels {
                language: "python".into(),
                status: "ok".into(),
            })
            .inc();
        metrics.docker_error("container create");
        metrics.queue_wait_seconds.observe(0.2);
        metrics
            .memory_bytes
            .get_or_create(&LanguageLabel {
                language: "python".into(),
            })
            .observe(5e6);
        let text = metrics.encode();
        for line in [
            "code_runner_runs_total{language=\"python\",status=\"ok\"} 1",
            "code_runner_docker_errors_total{step=\"container create\"} 1",
            "code_runner_queue_wait_seconds_count 1",
            "# TYPE code_runner_containers_alive gauge",
            "# TYPE code_runner_language_reload_failures counter",
            "code_runner_run_memory_bytes_bucket{le=\"16777216.0\",language=\"python\"} 1",
            "# TYPE code_runner_run_memory_bytes histogram",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
