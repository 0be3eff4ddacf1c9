//! The `[judge0]` section: where Judge0's submissions are kept, its
//! bounds, and its callbacks (the hosts they may reach: [`CallbackHost`]).

use std::fmt;
use std::net::IpAddr;
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
    /// Where a `callback_url` may point: `host:port` (a name, an IPv4
    /// address, or `[IPv6]`), each with its port. A name is resolved at
    /// call time, and an address it resolves to that is not public
    /// (loopback, private, link-local, unspecified, ...) is called only
    /// when an entry lists that address and port itself. Default: none,
    /// so callbacks are refused.
    pub callback_hosts: Vec<CallbackHost>,
    /// Attempts per callback. Default `3` (Judge0's).
    #[validate(range(min = 1, max = 10))]
    pub callback_tries: u32,
    /// Each callback attempt's time limit, in ms. Default `5000` (Judge0's).
    #[validate(range(min = 100, max = 60_000))]
    pub callback_timeout_ms: u64,
    /// Callbacks being sent at once, each on a task of its own beside the
    /// workers; a submission finishing while they are all taken is not
    /// called back (logged). Default `64`.
    #[validate(range(min = 1, max = 10_000))]
    pub max_callbacks: usize,
    /// Longest a `wait=true` request waits for its result, in ms; past it,
    /// the submission is answered as it stands. Default `60000`.
    #[validate(range(min = 1000, max = 600_000))]
    pub wait_timeout_ms: u64,
    /// `homepage` of `GET /judge0/about`. Default: the crate's homepage
    /// when its Cargo.toml names one, else `/playground` (this service's
    /// own page).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 2048))]
    pub homepage: Option<String>,
    /// `source_code` of `GET /judge0/about`. Default: the crate's
    /// repository when its Cargo.toml names one, else its name and version
    /// (`code-runner 0.1.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 2048))]
    pub source_code: Option<String>,
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
            max_callbacks: 64,
            wait_timeout_ms: 60_000,
            homepage: None,
            source_code: None,
        }
    }
}

impl Judge0Config {
    /// `homepage` of `GET /judge0/about`: the one set, or the crate's
    /// homepage, or this service's `/playground`.
    pub fn homepage(&self) -> &str {
        let crate_homepage = env!("CARGO_PKG_HOMEPAGE");
        match &self.homepage {
            Some(homepage) => homepage,
            None if !crate_homepage.is_empty() => crate_homepage,
            None => "/playground",
        }
    }

    /// `source_code` of `GET /judge0/about`: the one set, or the crate's
    /// repository, or its name and version.
    pub fn source_code(&self) -> &str {
        let repository = env!("CARGO_PKG_REPOSITORY");
        match &self.source_code {
            Some(source) => source,
            None if !repository.is_empty() => repository,
            None => concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")),
        }
    }

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

/// An entry of `judge0.callback_hosts`: a host and the one port of it
/// that may be called back. Written `host:port`, `1.2.3.4:port` or
/// `[::1]:port`; a name is kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallbackHost {
    /// The host, a name or an address.
    pub host: CallbackTarget,
    /// Its port.
    pub port: u16,
}

/// The host of a [`CallbackHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackTarget {
    /// A name, resolved when a callback is made.
    Name(String),
    /// An address, called as it is.
    Addr(IpAddr),
}

impl std::str::FromStr for CallbackHost {
    type Err = String;

    fn from_str(entry: &str) -> Result<CallbackHost, String> {
        let no_port = || {
            format!(
                "`{entry}` names no port: every entry is `host:port` (`{entry}:443` for https, `{entry}:80` for http)"
            )
        };
        let (host, port) = entry.rsplit_once(':').ok_or_else(no_port)?;
        if host.contains(':') && !host.starts_with('[') {
            // A bare IPv6 address: its last group is no port.
            return Err(format!(
                "`{entry}`: write an IPv6 address in brackets, with its port: `[{entry}]:443`"
            ));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("`{entry}`: the port must be a number from 1 to 65535"))?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => CallbackTarget::Addr(IpAddr::V6(
                v6.parse()
                    .map_err(|_| format!("`{entry}`: `[{v6}]` is not an IPv6 address"))?,
            )),
            None => match host.parse::<IpAddr>() {
                Ok(addr) => CallbackTarget::Addr(addr),
                Err(_) if valid_name(host) => CallbackTarget::Name(host.to_ascii_lowercase()),
                Err(_) => return Err(format!("`{entry}`: `{host}` is not a host name or address")),
            },
        };
        Ok(CallbackHost { host, port })
    }
}

/// A DNS name as a URL's host may be: labels of letters, digits, `-`
/// and `_`, separated by dots.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl TryFrom<String> for CallbackHost {
    type Error = String;

    fn try_from(entry: String) -> Result<CallbackHost, String> {
        entry.parse()
    }
}

impl fmt::Display for CallbackHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            CallbackTarget::Name(name) => write!(f, "{name}:{}", self.port),
            CallbackTarget::Addr(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            CallbackTarget::Addr(v4) => write!(f, "{v4}:{}", self.port),
        }
    }
}

impl From<CallbackHost> for String {
    fn from(entry: CallbackHost) -> String {
        entry.to_string()
    }
}
