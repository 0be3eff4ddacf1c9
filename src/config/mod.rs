//! Server configuration: built-in defaults, then an optional TOML file, then
//! `CODE_RUNNER_*` environment variables, merged with figment.
//!
//! Every key and its default is listed on [`Config`] and its sections
//! ([`sections`], [`Judge0Config`]), each deserialized straight into the
//! settings of the part of the service it configures. Nested keys are
//! reached from the environment with a double underscore:
//! `CODE_RUNNER_POOL__SIZE=8`, `CODE_RUNNER_LIMITS__MEMORY_MB=256`. The
//! flat names of earlier releases (`CODE_RUNNER_POOL_SIZE`,
//! `CODE_RUNNER_MAX_CONCURRENT_RUNS`, ...) still work as aliases
//! ([`ALIASES`]). A value that does not parse or is out of range stops
//! start-up with a message naming the key, where the value came from and
//! why it was refused.

mod judge0;
pub mod sections;
#[cfg(test)]
mod tests;
mod uids;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::limits::{DefaultLimits, Limits};
use crate::validation::{FieldError, field_errors};
pub use judge0::{CallbackHost, CallbackTarget, Judge0Config};
pub use sections::{
    FrontDoor, IDLE_SANDBOX_MB, LogFormat, PoolSettings, RequestBounds, RunSettings, Secret,
    ServerSettings, StreamSettings,
};
pub use uids::UidRange;

/// Environment variable holding the path of an optional TOML config file.
pub const CONFIG_FILE_ENV: &str = "CODE_RUNNER_CONFIG";
/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "CODE_RUNNER_";

/// The flat keys of earlier releases and the nested keys they now stand
/// for; `CODE_RUNNER_<FLAT>` sets the nested key.
pub const ALIASES: [(&str, &str); 27] = [
    ("host", "server.host"),
    ("port", "server.port"),
    ("max_connections", "server.max_connections"),
    ("header_timeout_ms", "server.header_timeout_ms"),
    ("body_timeout_ms", "server.body_timeout_ms"),
    ("max_body_bytes", "server.max_body_bytes"),
    ("shutdown_grace_ms", "server.shutdown_grace_ms"),
    ("max_concurrent_runs", "runs.max_concurrent"),
    ("max_queue", "runs.max_queue"),
    ("client_max_runs", "runs.client_max_concurrent"),
    ("client_max_queue", "runs.client_max_queue"),
    ("queue_timeout_ms", "runs.queue_timeout_ms"),
    ("max_code_bytes", "requests.max_code_bytes"),
    ("max_files", "requests.max_files"),
    ("max_stdin_bytes", "requests.max_stdin_bytes"),
    ("max_args", "requests.max_args"),
    ("max_arg_bytes", "requests.max_arg_bytes"),
    ("max_tests", "requests.max_tests"),
    ("pool_size", "pool.size"),
    ("pool_memory_mb", "pool.memory_mb"),
    ("pool_refills", "pool.refills"),
    ("prestart", "pool.prestart"),
    ("api_keys", "front_door.api_keys"),
    ("api_keys_file", "front_door.api_keys_file"),
    ("metrics_key", "front_door.metrics_key"),
    ("rate_limit_per_minute", "front_door.rate_limit_per_minute"),
    ("rate_limit_burst", "front_door.rate_limit_burst"),
];

/// The nested key a flat key (of an environment variable, after the
/// prefix) stands for, if it is an alias.
fn alias(flat: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(flat))
        .map(|(_, nested)| *nested)
}

/// A hint for a key of a file that is now nested: " (it is `pool.size` now)".
fn renamed(key: &str) -> String {
    alias(key).map_or(String::new(), |nested| format!(" (it is `{nested}` now)"))
}

/// The environment variable that set `keys`: the nested name, or the
/// alias that stands for it when that is the one set. (An element of a
/// list, `judge0.callback_hosts.0`, is set by the list's variable.)
fn env_name(keys: &[String]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .filter(|key| !key.bytes().all(|b| b.is_ascii_digit()))
        .cloned()
        .collect();
    let nested = format!("{ENV_PREFIX}{}", keys.join("__").to_uppercase());
    if std::env::var_os(&nested).is_some() {
        return nested;
    }
    let path = keys.join(".");
    ALIASES
        .iter()
        .find(|(_, to)| *to == path)
        .map(|(flat, _)| format!("{ENV_PREFIX}{}", flat.to_uppercase()))
        .filter(|flat| std::env::var_os(flat).is_some())
        .unwrap_or(nested)
}

/// The server-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folder of `*.toml` language files. Default `languages`. When it does
    /// not exist, the built-in python language is served.
    pub languages_dir: PathBuf,
    /// Folder of `*.toml` files of shared checkers and interactors, each
    /// named by its file (docs/judging.md). Default `checkers`; when it
    /// does not exist, there are none. Read at start-up.
    pub checkers_dir: PathBuf,
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
    /// The numeric users (and groups) sandboxes run as, `FIRST-LAST`; no
    /// two live sandboxes ever share one. Default: 65536 uids from 524288
    /// up (the range systemd sets aside for containers), in a block chosen
    /// by the `instance` name, so that services sharing one engine use
    /// disjoint ranges; set it to be sure. It may not hold root, `nobody`
    /// (65534) or the service's own uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "uids::valid_uids"))]
    pub sandbox_uids: Option<UidRange>,
    /// How logs are written to stderr: `text` (the default), or `json`,
    /// one JSON object per line (`CODE_RUNNER_LOG_FORMAT=json`).
    pub log_format: LogFormat,
    /// The listener and its bounds.
    #[serde(default)]
    #[validate(nested)]
    pub server: ServerSettings,
    /// Run slots and the queue.
    #[serde(default)]
    #[validate(nested)]
    pub runs: RunSettings,
    /// The size bounds of a request's parts.
    #[serde(default)]
    #[validate(nested)]
    pub requests: RequestBounds,
    /// The bounds of streamed runs.
    #[serde(default)]
    #[validate(nested)]
    pub streams: StreamSettings,
    /// Sandboxes started ahead of demand.
    #[serde(default)]
    #[validate(nested)]
    pub pool: PoolSettings,
    /// API keys and rates.
    #[serde(default)]
    #[validate(nested)]
    pub front_door: FrontDoor,
    /// Limits for the languages whose files leave a limit out.
    #[validate(nested)]
    pub limits: Limits,
    /// Compile-stage limits for the compiled languages whose files leave one
    /// out. Defaults as `limits`, but `wall_time_ms = 30000`,
    /// `memory_mb = 512` and `scratch_mb = 128`.
    #[validate(nested)]
    pub compile_limits: Limits,
    /// Judge0's API (`/judge0/…`): where its submissions are kept, and its
    /// bounds.
    #[validate(nested)]
    pub judge0: Judge0Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            languages_dir: PathBuf::from("languages"),
            checkers_dir: PathBuf::from("checkers"),
            reload_interval_ms: 1000,
            docker_host: None,
            instance: "default".to_string(),
            sandbox_uids: None,
            log_format: LogFormat::Text,
            server: ServerSettings::default(),
            runs: RunSettings::default(),
            requests: RequestBounds::default(),
            streams: StreamSettings::default(),
            pool: PoolSettings::default(),
            front_door: FrontDoor::default(),
            limits: Limits::default(),
            compile_limits: Limits::compile_default(),
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
        let env = Env::prefixed(ENV_PREFIX)
            .ignore(&["config"])
            .map(|key| match alias(key.as_str()) {
                Some(nested) => nested.replace('.', "__").into(),
                None => key.into(),
            })
            .split("__");
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
                    let hint = match &e.kind {
                        figment::error::Kind::UnknownField(key, _) => renamed(key),
                        _ => String::new(),
                    };
                    if path.is_empty() {
                        format!("invalid configuration{source}: {}{hint}", e.kind)
                    } else {
                        format!(
                            "invalid configuration: key `{path}`{source}: {}{hint}",
                            e.kind
                        )
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

    /// How often to look for changed language files, if at all.
    pub fn reload_interval(&self) -> Option<Duration> {
        (self.reload_interval_ms > 0).then(|| Duration::from_millis(self.reload_interval_ms))
    }

    /// The uids sandboxes run as: `sandbox_uids`, or this instance's block.
    pub fn sandbox_uids(&self) -> UidRange {
        self.sandbox_uids
            .unwrap_or_else(|| UidRange::for_instance(&self.instance))
    }
}

/// Where a value came from, as " in <source>".
fn source_of(metadata: &figment::Metadata, keys: &[String]) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => format!(" in {}", path.display()),
        _ if metadata.name.contains("environment") => {
            format!(" in environment variable {}", env_name(keys))
        }
        _ => format!(" in {}", metadata.name),
    }
}

/// A configuration that cannot be used; the message names every bad key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
