//! The sections of the configuration, each deserialized straight into the
//! settings its part of the service takes: `[server]` (the listener and
//! its bounds), `[runs]` (run slots and the queue), `[requests]` (the size
//! of a request's parts), `[pool]` (sandboxes started ahead of demand) and
//! `[front_door]` (API keys and rates). Every field's doc gives its default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use validator::Validate;

/// The `[server]` keys: where the service listens and how it bounds
/// connections and request bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Default `127.0.0.1`; use `0.0.0.0` in a container.
    pub host: IpAddr,
    /// Port to listen on; `0` picks a free one. Default `8001`.
    pub port: u16,
    /// Connections open at once; more wait to be accepted. Default `1024`.
    #[validate(range(min = 1, max = 1_000_000))]
    pub max_connections: usize,
    /// Connections one peer (an IPv4 address, an IPv6 /64) may hold open;
    /// beyond, 429 and closed. Default: a quarter of `max_connections`,
    /// rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 1_000_000))]
    pub max_connections_per_peer: Option<usize>,
    /// How long a client may take to send a request's headers, in ms.
    /// Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in ms (beyond:
    /// 408). Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub body_timeout_ms: u64,
    /// How long an answer's write may wait for the client to read, in ms,
    /// before the connection is closed. Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub write_timeout_ms: u64,
    /// Largest request body, in bytes. Default `2097152` (2 MiB).
    #[validate(range(min = 1024, max = 268_435_456))]
    pub max_body_bytes: u64,
    /// How long SIGTERM or SIGINT waits for runs in flight before their
    /// containers are removed, in ms. Default `15000`.
    #[validate(range(max = 600_000))]
    pub shutdown_grace_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8001,
            max_connections: 1024,
            max_connections_per_peer: None,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            max_body_bytes: 2 * 1024 * 1024,
            shutdown_grace_ms: 15_000,
        }
    }
}

impl ServerSettings {
    /// The deadline for a request's headers.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The connections one peer may hold.
    pub fn peer_connections(&self) -> usize {
        (self.max_connections_per_peer)
            .unwrap_or(self.max_connections.div_ceil(4))
            .min(self.max_connections)
    }

    /// How long an answer may wait for the client to read it.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// The deadline for a request's body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The grace period given to runs in flight at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// The `[runs]` keys: run slots and the queue in front of them, shared
/// fairly between clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Runs executing at once. Default `4`.
    #[validate(range(min = 1, max = 1024))]
    pub max_concurrent: usize,
    /// Requests allowed to wait for a run slot; beyond it the answer is 429.
    /// Default `32`.
    #[validate(range(max = 100_000))]
    pub max_queue: usize,
    /// Runs one client (an API key, or a peer address when keys are off)
    /// may have at once. Default: half of `max_concurrent`, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 1024))]
    pub client_max_concurrent: Option<usize>,
    /// Requests one client may have waiting for a slot. Default: half of
    /// `max_queue`, rounded up.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(max = 100_000))]
    pub client_max_queue: Option<usize>,
    /// Longest wait for a run slot before the answer is 429, in ms. Default
    /// `30000`.
    #[validate(range(min = 1, max = 600_000))]
    pub queue_timeout_ms: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            max_concurrent: 4,
            max_queue: 32,
            client_max_concurrent: None,
            client_max_queue: None,
            queue_timeout_ms: 30_000,
        }
    }
}

impl RunSettings {
    /// The runs one client may have at once.
    pub fn client_slots(&self) -> usize {
        (self.client_max_concurrent)
            .unwrap_or(self.max_concurrent.div_ceil(2))
            .min(self.max_concurrent)
    }

    /// The requests one client may have waiting.
    pub fn client_queue(&self) -> usize {
        (self.client_max_queue)
            .unwrap_or(self.max_queue.div_ceil(2))
            .min(self.max_queue)
    }

    /// The longest wait for a run slot.
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }
}

/// The `[streams]` keys: the bounds of streamed runs (`GET /run-code/ws`,
/// Piston's `/api/v2/connect`, `POST /run-code` as Server-Sent Events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// Streamed runs open at once, every protocol together. Default `64`.
    #[validate(range(min = 1, max = 100_000))]
    pub max_open: usize,
    /// Streamed runs one client may have open at once. Default `8`.
    #[validate(range(min = 1, max = 100_000))]
    pub client_max_open: usize,
    /// The largest WebSocket frame (and message) a client may send, in
    /// bytes. Default `1048576`.
    #[validate(range(min = 1024, max = 67_108_864))]
    pub max_frame_bytes: usize,
    /// How long a WebSocket may wait for its first frame, in ms. Default
    /// `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub first_frame_timeout_ms: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            max_open: 64,
            client_max_open: 8,
            max_frame_bytes: 1024 * 1024,
            first_frame_timeout_ms: 10_000,
        }
    }
}

impl StreamSettings {
    /// The longest wait for a socket's first frame.
    pub fn first_frame_timeout(&self) -> Duration {
        Duration::from_millis(self.first_frame_timeout_ms)
    }
}

/// The `[requests]` keys: the size bounds of a request's parts, in every
/// dialect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct RequestBounds {
    /// Largest `code` and `files` together, in bytes. Default `262144`
    /// (256 KiB).
    #[validate(range(min = 1, max = 67_108_864))]
    pub max_code_bytes: usize,
    /// Most extra `files` in one request. Default `32`.
    #[validate(range(max = 1024))]
    pub max_files: usize,
    /// Largest `stdin`, in bytes. Default `1048576` (1 MiB).
    #[validate(range(max = 67_108_864))]
    pub max_stdin_bytes: usize,
    /// Most `args` in one request. Default `64`.
    #[validate(range(max = 4096))]
    pub max_args: usize,
    /// Largest single argument, in bytes. Default `4096`.
    #[validate(range(min = 1, max = 131_072))]
    pub max_arg_bytes: usize,
    /// Most `tests` in one batch. Default `64`.
    #[validate(range(min = 1, max = 1024))]
    pub max_tests: usize,
    /// Most files one run brings back (`outputs`); the rest are listed as
    /// omitted. Default `16`.
    #[validate(range(max = 1024))]
    pub max_output_files: usize,
    /// Most bytes of the files one request brings back, together (a
    /// batch's tests share them equally). Default `8388608` (8 MiB).
    #[validate(range(max = 67_108_864))]
    pub max_output_bytes: u64,
}

impl Default for RequestBounds {
    fn default() -> Self {
        RequestBounds {
            max_code_bytes: 256 * 1024,
            max_files: 32,
            max_stdin_bytes: 1024 * 1024,
            max_args: 64,
            max_arg_bytes: 4096,
            max_tests: 64,
            max_output_files: 16,
            max_output_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The memory one waiting sandbox is budgeted at, in MiB: well above what
/// one takes here (`docker stats` gave 220 MiB for 62 waiting sandboxes of
/// the catalogue, 3.5 MiB each; docs, "Performance"), leaving room for a
/// language whose waiting interpreter holds more.
pub const IDLE_SANDBOX_MB: u64 = 12;

/// The `[pool]` keys: sandboxes started ahead of demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// The least each language's pool keeps started ahead of demand (a
    /// language file's `pool_size` overrides it; a compiled language's are
    /// compile-and-run pairs); the pool grows above it with demand, within
    /// `memory_mb` (which also bounds the floors together). `0` with
    /// `memory_mb = 0` turns the pool off. Default `32`.
    #[validate(range(max = 64))]
    pub size: usize,
    /// The memory the pools' waiting sandboxes may take together, in MiB
    /// (budgeted at 12 MiB each): the pools grow towards recent demand
    /// within it. Default `768`.
    #[validate(range(min = 0, max = 1_048_576))]
    pub memory_mb: u64,
    /// Pooled containers being started at once, across languages, while no
    /// run is in flight (one at a time while runs are). Default `2`.
    #[validate(range(min = 1, max = 64))]
    pub refills: usize,
    /// Whether pooled sandboxes of a language with a pre-start hook
    /// (`prestart` in its file) start its interpreter before the program
    /// arrives. Default `true`.
    pub prestart: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            size: 32,
            memory_mb: 768,
            refills: 2,
            prestart: true,
        }
    }
}

impl PoolSettings {
    /// The most sandboxes the budget holds.
    pub fn budget(&self) -> usize {
        (self.memory_mb / IDLE_SANDBOX_MB) as usize
    }
}

/// The `[front_door]` keys: API keys and the rate a client may run code at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct FrontDoor {
    /// API keys, each allowed every route but `/metrics`; empty (the
    /// default): no key is needed. From the environment, comma-separated:
    /// `CODE_RUNNER_FRONT_DOOR__API_KEYS=key1,key2`. Never logged.
    #[serde(deserialize_with = "secrets", skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<Secret>,
    /// A file of more keys, one per line: the key, or `sha256:` and its
    /// SHA-256 in hex (so that the file need not hold it), then optionally
    /// the routes it may use (`run,piston,judge0,probes,metrics`; default
    /// all but `metrics`); `#` starts a comment. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys_file: Option<PathBuf>,
    /// The key `/metrics` wants; unset: a key of the keys file that lists
    /// `metrics` (no key at all when keys are off). Never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_key: Option<Secret>,
    /// Tokens one client gets per minute (a token bucket per API key, or
    /// per peer address when keys are off): a request that runs code, or
    /// any to `/judge0`, costs one, and each run past its first one more;
    /// `0` (the default) turns the rate limit off.
    #[validate(range(max = 1_000_000))]
    pub rate_limit_per_minute: u32,
    /// How many tokens may be spent at once (the bucket's size; a request
    /// running more programs is refused); `0` (the default): a tenth of
    /// `rate_limit_per_minute`, at least 1.
    #[validate(range(max = 1_000_000))]
    pub rate_limit_burst: u32,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret (an API key): written as itself, shown as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A list of secrets given as a list or as one comma-separated string (as
/// an environment variable gives it).
fn secrets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        One(String),
    }
    let keys = match Given::deserialize(d)? {
        Given::List(keys) => keys,
        Given::One(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(keys
        .into_iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(Secret)
        .collect())
}
