//! The `[judge0]` section: where Judge0's submissions are kept, its
//! bounds, and its callbacks.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use validator::Validate;

/// The `judge0.*` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Judge0Config {
    /// Where submissions are stored: `sqlite://PATH` (the file is created
    /// on first start), `postgres://USER:PASSWORD@HOST:PORT/DB` (shared by
    /// replicas), or `off` (nothing is stored; only `wait=true` is
    /// served). Default `sqlite://judge0.sqlite`.
    #[validate(custom(function = "database_url"))]
    pub database: String,
    /// How long finished submissions are kept, in s. Default `604800` (7
    /// days).
    #[validate(range(min = 60, max = 315_360_000))]
    pub keep_results_s: u64,
    /// Workers taking queued submissions; `0`: one per run slot
    /// (`runs.max_concurrent`). Default `0`.
    #[validate(range(max = 1024))]
    pub workers: usize,
    /// Most submissions waiting in the queue (beyond: 503 `queue is
    /// full`). Default `100` (Judge0's).
    #[validate(range(min = 1, max = 1_000_000))]
    pub max_queue: usize,
    /// Submissions one client (an API key, or a peer address when keys are
    /// off) may have waiting (beyond: 429). Default: a quarter of
    /// `max_queue`, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 1_000_000))]
    pub client_max_queue: Option<usize>,
    /// Most submissions stored, queued or finished (beyond: 507).
    /// Default `100000`.
    #[validate(range(min = 1, max = 100_000_000))]
    pub max_stored: usize,
    /// Most bytes the stored submissions may hold, their requests and
    /// results (beyond: 507). Default `1073741824` (1 GiB).
    #[validate(range(min = 1_048_576_u64, max = 1_099_511_627_776_u64))]
    pub max_stored_bytes: u64,
    /// Submissions one client may have stored (beyond: 429). Default: a
    /// quarter of `max_stored`, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 100_000_000))]
    pub client_max_stored: Option<usize>,
    /// Bytes one client's stored submissions may hold (beyond: 429).
    /// Default: a quarter of `max_stored_bytes`, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 1_099_511_627_776_u64))]
    pub client_max_stored_bytes: Option<u64>,
    /// Most submissions in one batch. Default `20` (Judge0's).
    #[validate(range(min = 1, max = 1000))]
    pub max_batch: usize,
    /// Hosts a `callback_url` may name: `host` (any port) or `host:port`.
    /// Default: none, so callbacks are refused.
    pub callback_hosts: Vec<String>,
    /// Attempts per callback. Default `3` (Judge0's).
    #[validate(range(min = 1, max = 10))]
    pub callback_tries: u32,
    /// Each callback attempt's time limit, in ms. Default `5000` (Judge0's).
    #[validate(range(min = 100, max = 60_000))]
    pub callback_timeout_ms: u64,
    /// Longest a `wait=true` request waits for its result, in ms; past it,
    /// the submission is answered as it stands. Default `60000`.
    #[validate(range(min = 1000, max = 600_000))]
    pub wait_timeout_ms: u64,
}

impl Default for Judge0Config {
    fn default() -> Self {
        Judge0Config {
            database: "sqlite://judge0.sqlite".to_string(),
            keep_results_s: 7 * 24 * 3600,
            workers: 0,
            max_queue: 100,
            client_max_queue: None,
            max_stored: 100_000,
            max_stored_bytes: 1 << 30,
            client_max_stored: None,
            client_max_stored_bytes: None,
            max_batch: 20,
            callback_hosts: Vec::new(),
            callback_tries: 3,
            callback_timeout_ms: 5000,
            wait_timeout_ms: 60_000,
        }
    }
}

impl Judge0Config {
    /// The database URL, or `None` when storage is off.
    pub fn database_url(&self) -> Option<&str> {
        (self.database != "off").then_some(self.database.as_str())
    }
}

fn database_url(value: &str) -> Result<(), validator::ValidationError> {
    if value == "off"
        || value.starts_with("sqlite:")
        || value.starts_with("postgres://")
        || value.starts_with("postgresql://")
    {
        Ok(())
    } else {
        Err(crate::validation::error(
            "database",
            "must be `sqlite://PATH`, `postgres://…` or `off`",
        ))
    }
}

impl Judge0Config {
    /// How long finished submissions are kept.
    pub fn keep_results(&self) -> Duration {
        Duration::from_secs(self.keep_results_s)
    }

    /// Each callback attempt's time limit.
    pub fn callback_timeout(&self) -> Duration {
        Duration::from_millis(self.callback_timeout_ms)
    }

    /// Longest a `wait=true` request waits for its result.
    pub fn wait_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_timeout_ms)
    }

    /// The submissions one client may have waiting.
    pub fn client_queue(&self) -> usize {
        (self.client_max_queue)
            .unwrap_or(self.max_queue.div_ceil(4))
            .min(self.max_queue)
    }

    /// The submissions one client may have stored.
    pub fn client_stored(&self) -> usize {
        (self.client_max_stored)
            .unwrap_or(self.max_stored.div_ceil(4))
            .min(self.max_stored)
    }

    /// The bytes one client's stored submissions may hold.
    pub fn client_stored_bytes(&self) -> u64 {
        (self.client_max_stored_bytes)
            .unwrap_or(self.max_stored_bytes.div_ceil(4))
            .min(self.max_stored_bytes)
    }

    /// The workers taking queued submissions: `workers`, or one per run
    /// slot (`max_concurrent`) when it is `0`.
    pub fn workers(&self, max_concurrent: usize) -> usize {
        match self.workers {
            0 => max_concurrent,
            n => n,
        }
    }
}
