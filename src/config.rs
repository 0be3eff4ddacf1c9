//! Server configuration: built-in defaults, then an optional TOML file, then
//! `CODE_RUNNER_*` environment variables, merged with figment.
//!
//! Every key and its default is listed on [`Config`]. Nested keys (the
//! default limits) are reached from the environment with a double
//! underscore: `CODE_RUNNER_LIMITS__MEMORY_MB=256`. A value that does not
//! parse or is out of range stops start-up with a message naming the key,
//! where the value came from and why it was refused.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::limits::{DefaultLimits, Limits};
use crate::validation::{FieldError, field_errors};

/// Environment variable holding the path of an optional TOML config file.
pub const CONFIG_FILE_ENV: &str = "CODE_RUNNER_CONFIG";
/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "CODE_RUNNER_";

/// The server-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1`; use `0.0.0.0` in a container.
    pub host: IpAddr,
    /// Port to listen on; `0` picks a free one. Default `8001`.
    pub port: u16,
    /// Folder of `*.toml` language files. Default `languages`. When it does
    /// not exist, the built-in python language is served.
    pub languages_dir: PathBuf,
    /// How often the languages folder is checked for added, changed or
    /// removed files, in ms; `0` turns reloading off. Default `1000`.
    #[validate(range(max = 3_600_000))]
    pub reload_interval_ms: u64,
    /// The Docker engine to drive (`unix:///var/run/docker.sock`,
    /// `tcp://host:2376`). Default: unset, meaning `DOCKER_HOST`, or else
    /// the local socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_host: Option<String>,
    /// Name of this deployment, written on every sandbox container as the
    /// value of the `code-runner` label. At start-up, containers carrying the
    /// same name are removed as leftovers of an earlier process; services
    /// sharing one Docker engine need distinct names. Default `default`.
    #[validate(custom(function = "crate::validation::label_value"))]
    pub instance: String,
    /// Runs executing at once. Default `4`.
    #[validate(range(min = 1, max = 1024))]
    pub max_concurrent_runs: usize,
    /// Requests allowed to wait for a run slot; beyond it the answer is 429.
    /// Default `32`.
    #[validate(range(max = 100_000))]
    pub max_queue: usize,
    /// Runs one client (an API key, or a peer address when keys are off)
    /// may have at once. Default: half of `max_concurrent_runs`, rounded
    /// up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 1024))]
    pub client_max_runs: Option<usize>,
    /// Requests one client may have waiting for a slot. Default: half of
    /// `max_queue`, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(max = 100_000))]
    pub client_max_queue: Option<usize>,
    /// Longest wait for a run slot before the answer is 429, in ms. Default `30000`.
    #[validate(range(min = 1, max = 600_000))]
    pub queue_timeout_ms: u64,
    /// Connections open at once; more wait to be accepted. Default `1024`.
    #[validate(range(min = 1, max = 1_000_000))]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, in ms.
    /// Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in ms (beyond:
    /// 408). Default `10000`.
    #[validate(range(min = 100, max = 600_000))]
    pub body_timeout_ms: u64,
    /// Largest request body, in bytes. Default `2097152` (2 MiB).
    #[validate(range(min = 1024, max = 268_435_456))]
    pub max_body_bytes: u64,
    /// Largest `code` and `files` together, in bytes. Default `262144` (256 KiB).
    #[validate(range(min = 1, max = 67_108_864))]
    pub max_code_bytes: usize,
    /// Largest `stdin`, in bytes. Default `1048576` (1 MiB).
    #[validate(range(max = 67_108_864))]
    pub max_stdin_bytes: usize,
    /// Most `args` in one request. Default `64`.
    #[validate(range(max = 4096))]
    pub max_args: usize,
    /// Largest single argument, in bytes. Default `4096`.
    #[validate(range(min = 1, max = 131_072))]
    pub max_arg_bytes: usize,
    /// How long SIGTERM or SIGINT waits for runs in flight before their
    /// containers are removed, in ms. Default `15000`.
    #[validate(range(max = 600_000))]
    pub shutdown_grace_ms: u64,
    /// The least each language's pool keeps started ahead of demand (a
    /// language file's `pool_size` overrides it; a compiled language's are
    /// compile-and-run pairs); the pool grows above it with demand, within
    /// `pool_memory_mb` (which also bounds the floors together). `0` with
    /// `pool_memory_mb = 0` turns the pool off. Default `32`: a first burst
    /// of 48 runs from 8 clients is then mostly served from the pool
    /// (README, "Performance").
    #[validate(range(max = 64))]
    pub pool_size: usize,
    /// The memory the pools' waiting sandboxes may take together, in MiB
    /// (budgeted at 12 MiB each): the pools grow towards recent demand
    /// within it. Default `768`.
    #[validate(range(min = 0, max = 1_048_576))]
    pub pool_memory_mb: u64,
    /// Whether pooled sandboxes of a language with a pre-start hook
    /// (`prestart` in its file) start its interpreter before the program
    /// arrives. Default `true`.
    pub prestart: bool,
    /// Pooled containers being started at once, across languages. Default `2`.
    #[validate(range(min = 1, max = 64))]
    pub pool_refills: usize,
    /// Most extra `files` in one request. Default `32`.
    #[validate(range(max = 1024))]
    pub max_files: usize,
    /// Most `tests` in one batch. Default `64`.
    #[validate(range(min = 1, max = 1024))]
    pub max_tests: usize,
    /// The numeric users (and groups) sandboxes run as, `FIRST-LAST`; no
    /// two live sandboxes ever share one. Default: 65536 uids from 524288
    /// up (the range systemd sets aside for containers), in a block chosen
    /// by the `instance` name, so that services sharing one engine use
    /// disjoint ranges; set it to be sure. It may not hold root, `nobody`
    /// (65534) or the service's own uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "valid_uids"))]
    pub sandbox_uids: Option<UidRange>,
    /// Limits for the languages whose files leave a limit out.
    #[validate(nested)]
    pub limits: Limits,
    /// Compile-stage limits for the compiled languages whose files leave one
    /// out. Defaults as `limits`, but `wall_time_ms = 30000`,
    /// `memory_mb = 512` and `scratch_mb = 128`.
    #[validate(nested)]
    pub compile_limits: Limits,
    /// API keys, each allowed every route but `/metrics`; empty (the
    /// default): no key is needed. From the environment, comma-separated:
    /// `CODE_RUNNER_API_KEYS=key1,key2`. Never logged.
    #[serde(
        default,
        deserialize_with = "secrets",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub api_keys: Vec<Secret>,
    /// A file of more keys, one per line: the key, or `sha256:` and its
    /// SHA-256 in hex (so that the file need not hold it), then optionally
    /// the routes it may use (`run,piston,judge0,probes,metrics`; default
    /// all but `metrics`); `#` starts a comment. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys_file: Option<PathBuf>,
    /// The key `/metrics` wants; unset: any API key (or none when keys are
    /// off). Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_key: Option<Secret>,
    /// Requests that run code one client may send per minute (a token
    /// bucket per API key, or per peer address when keys are off); `0`
    /// (the default) turns the rate limit off.
    #[validate(range(max = 1_000_000))]
    pub rate_limit_per_minute: u32,
    /// How many of them may come at once (the bucket's size); `0` (the
    /// default): a tenth of `rate_limit_per_minute`, at least 1.
    #[validate(range(max = 1_000_000))]
    pub rate_limit_burst: u32,
    /// How logs are written to stderr: `text` (the default), or `json`,
    /// one JSON object per line (`CODE_RUNNER_LOG_FORMAT=json`).
    pub log_format: LogFormat,
    /// Judge0's API (`/judge0/…`): where its submissions are kept, and its
    /// bounds.
    #[validate(nested)]
    pub judge0: Judge0Config,
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
    /// Workers taking queued submissions; `0`: as many as
    /// `max_concurrent_runs`. Default `0`.
    #[validate(range(max = 1024))]
    pub workers: usize,
    /// Most submissions waiting in the queue (beyond: 503 `queue is
    /// full`). Default `100` (Judge0's).
    #[validate(range(min = 1, max = 1_000_000))]
    pub max_queue: usize,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8001,
            languages_dir: PathBuf::from("languages"),
            reload_interval_ms: 1000,
            docker_host: None,
            instance: "default".to_string(),
            max_concurrent_runs: 4,
            max_queue: 32,
            client_max_runs: None,
            client_max_queue: None,
            queue_timeout_ms: 30_000,
            max_connections: 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_body_bytes: 2 * 1024 * 1024,
            max_code_bytes: 256 * 1024,
            max_stdin_bytes: 1024 * 1024,
            max_args: 64,
            max_arg_bytes: 4096,
            shutdown_grace_ms: 15_000,
            pool_size: 32,
            pool_memory_mb: 768,
            prestart: true,
            pool_refills: 2,
            max_files: 32,
            max_tests: 64,
            sandbox_uids: None,
            limits: Limits::default(),
            compile_limits: Limits::compile_default(),
            api_keys: Vec::new(),
            api_keys_file: None,
            metrics_key: None,
            rate_limit_per_minute: 0,
            rate_limit_burst: 0,
            log_format: LogFormat::Text,
            judge0: Judge0Config::default(),
        }
    }
}

impl Config {
    /// Loads the configuration from the defaults, the file named by
    /// `CODE_RUNNER_CONFIG` (if set) and the `CODE_RUNNER_*` variables.
    pub fn load() -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Ok(path) = std::env::var(CONFIG_FILE_ENV) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "{CONFIG_FILE_ENV} names `{}`, which is not a readable file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__");
        Self::from_figment(figment.merge(env))
    }

    /// Extracts and validates a configuration from any figment; errors name
    /// the key, its source and the reason.
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|errors| {
            let lines: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    let path = e.path.join(".");
                    let source = e
                        .metadata
                        .as_ref()
                        .map(|m| source_of(m, &e.path))
                        .unwrap_or_default();
                    if path.is_empty() {
                        format!("invalid configuration{source}: {}", e.kind)
                    } else {
                        format!("invalid configuration: key `{path}`{source}: {}", e.kind)
                    }
                })
                .collect();
            ConfigError(lines.join("\n"))
        })?;
        if let Err(errors) = config.validate() {
            let lines: Vec<String> = field_errors(&errors)
                .into_iter()
                .map(|FieldError { path, message, .. }| {
                    let keys: Vec<String> = path.split('.').map(str::to_string).collect();
                    let source = figment
                        .find_metadata(&path)
                        .map(|m| source_of(m, &keys))
                        .unwrap_or_default();
                    format!("invalid configuration: key `{path}`{source}: {message}")
                })
                .collect();
            return Err(ConfigError(lines.join("\n")));
        }
        Ok(config)
    }

    /// The limits language files fall back on.
    pub fn default_limits(&self) -> DefaultLimits {
        DefaultLimits {
            run: self.limits.clone(),
            compile: self.compile_limits.clone(),
        }
    }

    /// The folder of language files.
    pub fn languages_dir(&self) -> &Path {
        &self.languages_dir
    }

    /// The grace period given to runs in flight at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// How often to look for changed language files, if at all.
    pub fn reload_interval(&self) -> Option<Duration> {
        (self.reload_interval_ms > 0).then(|| Duration::from_millis(self.reload_interval_ms))
    }

    /// The deadline for a request's headers.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The deadline for a request's body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// The uids sandboxes run as: `sandbox_uids`, or this instance's block.
    pub fn sandbox_uids(&self) -> UidRange {
        self.sandbox_uids
            .unwrap_or_else(|| UidRange::for_instance(&self.instance))
    }

    /// The longest wait for a run slot.
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }
}

/// Where a value came from, as " in <source>".
fn source_of(metadata: &figment::Metadata, keys: &[String]) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => format!(" in {}", path.display()),
        _ if metadata.name.contains("environment") => {
            format!(
                " in environment variable {ENV_PREFIX}{}",
                keys.join("__").to_uppercase()
            )
        }
        _ => format!(" in {}", metadata.name),
    }
}

/// A range of numeric uids, written `FIRST-LAST` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

/// Where instance blocks start: systemd's range for containers' uids
/// (524288–1879048191, `systemd-nspawn --private-users`).
const CONTAINER_UIDS: (u32, u32) = (524_288, 1_879_048_191);
/// The size of an instance's block.
const BLOCK: u32 = 65_536;

impl UidRange {
    /// How many uids it holds.
    pub fn count(&self) -> u32 {
        self.last - self.first + 1
    }

    pub fn contains(&self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    /// The block of `instance`: one of the 65536-uid blocks of systemd's
    /// container range, chosen by a hash (FNV-1a) of the name.
    pub fn for_instance(instance: &str) -> UidRange {
        let hash = instance.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let blocks = u64::from((CONTAINER_UIDS.1 - CONTAINER_UIDS.0 + 1) / BLOCK);
        let first = CONTAINER_UIDS.0 + BLOCK * (hash % blocks) as u32;
        UidRange {
            first,
            last: first + BLOCK - 1,
        }
    }
}

impl std::fmt::Display for UidRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for UidRange {
    type Err = String;
    fn from_str(text: &str) -> Result<UidRange, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("must be FIRST-LAST, such as 200000-265535 (got {text:?})"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("must be FIRST-LAST, two uids (got {text:?})"))
        };
        Ok(UidRange {
            first: number(first)?,
            last: number(last)?,
        })
    }
}

impl Serialize for UidRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UidRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UidRange, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn valid_uids(range: &UidRange) -> Result<(), validator::ValidationError> {
    let refuse = |why: &str| {
        Err(crate::validation::error(
            "uids",
            format!("{why} (got {range})"),
        ))
    };
    if range.first > range.last {
        return refuse("must have FIRST no greater than LAST");
    }
    if range.first == 0 {
        return refuse("must not hold root (0)");
    }
    if range.contains(65_534) || range.contains(65_535) || range.last == u32::MAX {
        return refuse("must not hold nobody (65534), 65535 or 4294967295");
    }
    Ok(())
}

/// A configuration that cannot be used; the message names every bad key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

#[cfg(test)]
// figment's `Jail` closures return its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_err() -> String {
        Config::load().unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_what_the_readme_documents() {
        Jail::expect_with(|_| {
            let config = Config::load().expect("defaults load");
            assert_eq!(config, Config::default());
            Ok(())
        });
        let readme = include_str!("../README.md");
        let table = &readme[readme
            .find("## Configuration")
            .expect("a Configuration section")..];
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut checked = 0;
        // Rows of the form "| `key` | `default` | ...".
        for line in table.lines().take_while(|l| !l.starts_with("Logs go")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (Some(key), Some(default)) = (cells.get(1), cells.get(2)) else {
                continue;
            };
            let (Some(key), Some(default)) = (
                key.strip_prefix('`').and_then(|k| k.strip_suffix('`')),
                default.strip_prefix('`').and_then(|d| d.strip_suffix('`')),
            ) else {
                continue;
            };
            let actual = match &defaults[key] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                actual, default,
                "the README documents `{key}` = `{default}`"
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} documented defaults found");
    }

    #[test]
    fn a_limit_a_language_file_leaves_out_comes_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_LIMITS__MEMORY_MB", "300");
            jail.set_env("CODE_RUNNER_LIMITS__WALL_TIME_MS", "4000");
            let config = Config::load().expect("loads");
            let registry = crate::language::Registry::builtin(&config.default_limits()).unwrap();
            let python = registry.get("python").unwrap();
            assert_eq!(python.limits.memory_mb, 300);
            assert_eq!(python.limits.wall_time_ms, 4000);
            assert_eq!(python.limits.pids, Limits::default().pids);
            Ok(())
        });
    }

    #[test]
    fn api_keys_come_from_a_comma_separated_variable_and_are_never_shown() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_API_KEYS", "key-one, key-two,");
            jail.set_env("CODE_RUNNER_METRICS_KEY", "scrape-key");
            jail.set_env("CODE_RUNNER_LOG_FORMAT", "json");
            let config = Config::load().expect("loads");
            assert_eq!(
                config.api_keys,
                [Secret("key-one".into()), Secret("key-two".into())]
            );
            assert_eq!(config.log_format, LogFormat::Json);
            let shown = format!("{config:?}");
            assert!(
                !shown.contains("key-one") && !shown.contains("scrape-key"),
                "{shown}"
            );
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "cr.toml",
                "port = 9000\nmax_queue = 3\n[limits]\nmemory_mb = 256\n",
            )?;
            jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
            jail.set_env("CODE_RUNNER_PORT", "9100");
            jail.set_env("CODE_RUNNER_HOST", "0.0.0.0");
            jail.set_env("CODE_RUNNER_LANGUAGES_DIR", "/srv/langs");
            jail.set_env("CODE_RUNNER_LIMITS__PIDS", "99");
            let config = Config::load().expect("loads");
            assert_eq!(config.port, 9100);
            assert_eq!(config.max_queue, 3);
            assert_eq!(config.host, IpAddr::from([0, 0, 0, 0]));
            assert_eq!(config.languages_dir, PathBuf::from("/srv/langs"));
            assert_eq!(config.limits.memory_mb, 256);
            assert_eq!(config.limits.pids, 99);
            Ok(())
        });
    }

    #[test]
    fn a_value_that_does_not_parse_names_the_key_and_the_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_PORT", "eighty");
            let err = load_err();
            assert!(err.contains("port"), "{err}");
            assert!(err.contains("CODE_RUNNER_PORT"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_out_of_range_value_names_the_key_its_source_and_the_range() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_MAX_CONCURRENT_RUNS", "0");
            let err = load_err();
            assert!(err.contains("`max_concurrent_runs`"), "{err}");
            assert!(err.contains("CODE_RUNNER_MAX_CONCURRENT_RUNS"), "{err}");
            assert!(err.contains("between 1 and 1024"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_nested_limit_out_of_range_in_the_file_names_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("cr.toml", "[limits]\nmemory_mb = 1\n")?;
            jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
            let err = load_err();
            assert!(err.contains("`limits.memory_mb`"), "{err}");
            assert!(err.contains("cr.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        Jail::expect_with(|jail| {
            jail.create_file("cr.toml", "prot = 1\n")?;
            jail.set_env("CODE_RUNNER_CONFIG", "cr.toml");
            let err = load_err();
            assert!(err.contains("prot"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_CONFIG", "nope.toml");
            let err = load_err();
            assert!(err.contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn sandbox_uids_are_a_range_without_root_or_nobody() {
        Jail::expect_with(|jail| {
            assert_eq!(
                Config::load().unwrap().sandbox_uids(),
                UidRange::for_instance("default")
            );
            jail.set_env("CODE_RUNNER_SANDBOX_UIDS", "200000-200099");
            let range = Config::load().unwrap().sandbox_uids();
            assert_eq!((range.first, range.count()), (200_000, 100));
            for (value, why) in [
                ("0-100", "root"),
                ("65000-65535", "nobody"),
                ("300-200", "no greater"),
                ("many", "FIRST-LAST"),
            ] {
                jail.set_env("CODE_RUNNER_SANDBOX_UIDS", value);
                let err = load_err();
                assert!(
                    err.contains("sandbox_uids") && err.contains(why),
                    "{value}: {err}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn a_bad_instance_name_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("CODE_RUNNER_INSTANCE", "has space");
            let err = load_err();
            assert!(err.contains("`instance`"), "{err}");
            Ok(())
        });
    }
}
