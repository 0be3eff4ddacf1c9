//! The front door: who is calling ([`Caller`]: an API key's id, or the
//! peer's address when keys are off), whether that key may use the route
//! (401 without a key, with an unknown one or with two that differ, 403
//! for a key that may not), and, for the routes
//! that run code and Judge0's, a token-bucket rate per caller
//! (`governor`) with `RateLimit-*` headers
//! (draft-ietf-httpapi-ratelimit-headers) and `Retry-After` when refused.
//! A request costs one token at the door, and a request that runs more
//! than one program (tests, `number_of_runs`, a batch) the rest once its
//! body is read ([`Gate::charge`]).
//! The keys file is read again when it changes ([`Gate::reload_keys`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use warp::http::{HeaderMap, HeaderValue};
use warp::reply::Response;

use crate::config::{FrontDoor, Secret};
use crate::job::Client;

/// The peer's address, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// The routes a key may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    /// `POST /run-code`.
    Run,
    /// Piston's `/api/v2/…`.
    Piston,
    /// Judge0's `/judge0/…`.
    Judge0,
    /// `/ready`, `/languages`, `/openapi.json`.
    Probes,
    /// `/metrics`.
    Metrics,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::Run,
        Route::Piston,
        Route::Judge0,
        Route::Probes,
        Route::Metrics,
    ];

    fn name(self) -> &'static str {
        match self {
            Route::Run => "run",
            Route::Piston => "piston",
            Route::Judge0 => "judge0",
            Route::Probes => "probes",
            Route::Metrics => "metrics",
        }
    }

    fn parse(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Why the door stays shut.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "an API key is needed: send it as `Authorization: Bearer KEY`, `Authorization: KEY`, `X-API-Key: KEY`, `X-Auth-Token: KEY` or `X-Auth-User: KEY`"
    )]
    NoKey,
    #[error("this API key is not valid")]
    BadKey,
    /// Two headers carry different keys: which one counts is not guessed.
    #[error(
        "this request carries different API keys in {0} and {1}: send one key, the same in every header that carries it"
    )]
    TwoKeys(&'static str, &'static str),
    #[error("this API key may not use the {0} routes")]
    NotAllowed(&'static str),
    #[error("too many requests or runs: at most {limit} a minute; retry in {retry_s} s")]
    RateLimited { limit: u32, retry_s: u64 },
    /// A request that runs more programs than the bucket holds: it can
    /// never pass as it is.
    #[error(
        "this request runs {runs} programs, more than the {burst} a client may start at once (front_door.rate_limit_burst); send fewer in one request"
    )]
    OverBurst { runs: u32, burst: u32 },
}

type Limiter =
    RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock, StateInformationMiddleware>;

/// Whose stored Judge0 submissions a caller reads and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Its own only: a key's (another key's token is unknown to it).
    Own,
    /// Every one: keys are off, or the key is granted `judge0:all`.
    Every,
}

/// A key as held: its SHA-256 (the key itself is not kept), routes, and
/// whose Judge0 submissions it reaches.
#[derive(Debug, Clone)]
struct Key {
    routes: Vec<Route>,
    reach: Reach,
}

/// SHA-256 of each key, with what it may use.
type Keys = HashMap<[u8; 32], Key>;

/// The door.
pub(crate) struct Gate {
    /// The keys as last read: the settings' own, then the keys file's.
    keys: RwLock<Arc<Keys>>,
    /// Whether a key is needed: some are set, or a keys file is named (so
    /// that a file emptied while the service runs shuts the door rather
    /// than opening it).
    keys_on: bool,
    /// The keys file, to read again when it changes.
    file: Option<KeysFile>,
    metrics_key: Option<[u8; 32]>,
    /// The limiter, the rate a minute and the burst.
    limiter: Option<(Limiter, u32, u32)>,
}

/// A keys file and what its reloads start from.
struct KeysFile {
    path: PathBuf,
    /// The settings' own keys, which every reload keeps.
    settings: Keys,
    /// SHA-256 of what the file held when last read (its text, or why it
    /// could not be read), so that each change is taken, or refused and
    /// logged, once.
    last: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("keys", &self.keys().len())
            .field("metrics_key", &self.metrics_key.is_some())
            .field("rate_limit", &self.limiter.as_ref().map(|(_, n, _)| n))
            .finish()
    }
}

/// Who called, as the door let them in.
#[derive(Debug)]
pub(crate) struct Caller {
    /// The key's id (`key:` and the start of its hash) or the peer's
    /// address (`ip:…`): the client for fairness and rate limits.
    pub(crate) client: Client,
    /// Whose stored Judge0 submissions it reaches.
    pub(crate) reach: Reach,
    /// The rate limit's state after this request, for its headers; `None`
    /// when it was not counted. Behind a lock so that [`Gate::charge`]
    /// can update it through the `&Caller` the handlers share.
    rate: Mutex<Option<Rate>>,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    limit: u32,
    remaining: u32,
    /// Seconds until the bucket is full again.
    reset_s: u64,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key of a keys file: its SHA-256, the routes it may use, and whose
/// Judge0 submissions it reaches.
type FileKey = ([u8; 32], Vec<Route>, Reach);

/// The grant of a keys file's route list that lets a key use Judge0's
/// routes and read and delete every key's submissions, not only its own.
const JUDGE0_ALL: &str = "judge0:all";

/// Reads a keys file (see `api_keys_file`); errors name the line.
#[cfg(test)]
fn read_keys_file(path: &Path) -> Result<Vec<FileKey>, String> {
    parse_keys_file(path, &read_text(path)?)
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))
}

/// The keys of `text`, the keys file at `path`; errors name the line.
fn parse_keys_file(path: &Path, text: &str) -> Result<Vec<FileKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let key = words.next().expect("a non-empty line has a word");
        let hash = match key.strip_prefix("sha256:") {
            Some(hex) => decode_hex(hex).ok_or_else(|| {
                format!(
                    "{} line {}: `sha256:` wants 64 hex digits",
                    path.display(),
                    n + 1
                )
            })?,
            None => sha256(key),
        };
        let list = words.next();
        let reach = if list.is_some_and(|list| list.split(',').any(|w| w == JUDGE0_ALL)) {
            Reach::Every
        } else {
            Reach::Own
        };
        let routes = match list {
            None => default_routes(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    let route = match name {
                        JUDGE0_ALL => Some(Route::Judge0),
                        name => Route::parse(name),
                    };
                    route.ok_or_else(|| {
                            format!(
                                "{} line {}: unknown route `{name}` (run, piston, judge0, judge0:all, probes, metrics)",
                                path.display(),
                                n + 1
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        if words.next().is_some() {
            return Err(format!(
                "{} line {}: a key, then its routes, and nothing else",
                path.display(),
                n + 1
            ));
        }
        keys.push((hash, routes, reach));
    }
    Ok(keys)
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Whom a connection, or a request without a key, counts against: the
/// IPv4 address (an IPv4-mapped IPv6 address is its IPv4 one), or the /64
/// of an IPv6 address.
pub(crate) fn peer_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

impl KeysFile {
    /// The keys to serve: the settings' own, and the file's `listed`.
    fn keys(&self, listed: Vec<FileKey>) -> Keys {
        let mut keys = self.settings.clone();
        keys.extend(
            listed
                .into_iter()
                .map(|(hash, routes, reach)| (hash, Key { routes, reach })),
        );
        keys
    }
}

fn default_routes() -> Vec<Route> {
    vec![Route::Run, Route::Piston, Route::Judge0, Route::Probes]
}

impl Gate {
    /// The door of the `[front_door]` settings; errors name the keys file
    /// and line.
    pub(crate) fn new(settings: &FrontDoor) -> Result<Gate, String> {
        let mut keys = HashMap::new();
        for Secret(key) in &settings.api_keys {
            keys.insert(
                sha256(key),
                Key {
                    routes: default_routes(),
                    reach: Reach::Own,
                },
            );
        }
        let file = match &settings.api_keys_file {
            Some(path) => {
                let text = read_text(path)?;
                let file = KeysFile {
                    path: path.clone(),
                    settings: keys.clone(),
                    last: Mutex::new(sha256(&text)),
                };
                keys = file.keys(parse_keys_file(path, &text)?);
                Some(file)
            }
            None => None,
        };
        let limiter = NonZeroU32::new(settings.rate_limit_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(settings.rate_limit_burst)
                .unwrap_or_else(|| NonZeroU32::new((per_minute.get() / 10).max(1)).expect("≥ 1"));
            let quota = Quota::per_minute(per_minute).allow_burst(burst);
            (
                RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                per_minute.get(),
                burst.get(),
            )
        });
        Ok(Gate {
            keys_on: !keys.is_empty() || file.is_some(),
            keys: RwLock::new(Arc::new(keys)),
            file,
            metrics_key: settings.metrics_key.as_ref().map(|Secret(key)| sha256(key)),
            limiter,
        })
    }

    /// Lets a request to `route` in, or says why not; `runs` says whether
    /// it counts against the rate limit (one token).
    pub(crate) fn enter(
        &self,
        route: Route,
        runs: bool,
        headers: &HeaderMap,
        peer: Option<PeerAddr>,
    ) -> Result<Caller, Refused> {
        let metrics_key = route == Route::Metrics && self.metrics_key.is_some();
        let presented = match presented_key(headers) {
            Ok(key) => key,
            Err(two) if self.keys_on || metrics_key => return Err(two),
            // Keys are off: no header is read.
            Err(_) => None,
        };
        let keys = self.keys();
        let (client, reach): (Client, Reach) = match (route, &self.metrics_key, presented) {
            (Route::Metrics, Some(wanted), Some(key)) => {
                if &sha256(key) == wanted {
                    return Ok(Caller {
                        client: Arc::from("metrics"),
                        reach: Reach::Own,
                        rate: Mutex::new(None),
                    });
                }
                if keys.contains_key(&sha256(key)) {
                    return Err(Refused::NotAllowed(route.name()));
                }
                return Err(Refused::BadKey);
            }
            (Route::Metrics, Some(_), None) => return Err(Refused::NoKey),
            _ if !self.keys_on => (
                Arc::from(peer.map_or_else(
                    || "ip:unknown".to_string(),
                    |p| format!("ip:{}", peer_of(p.0.ip())),
                )),
                Reach::Every,
            ),
            (_, _, None) => return Err(Refused::NoKey),
            (_, _, Some(key)) => {
                let hash = sha256(key);
                let known = keys.get(&hash).ok_or(Refused::BadKey)?;
                if !known.routes.contains(&route) {
                    return Err(Refused::NotAllowed(route.name()));
                }
                (Arc::from(format!("key:{}", &hex(&hash)[..12])), known.reach)
            }
        };
        let rate = match (&self.limiter, runs) {
            (Some((limiter, per_minute, _)), true) => {
                Some(rate(limiter, *per_minute, &client, NonZeroU32::MIN, false)?)
            }
            _ => None,
        };
        Ok(Caller {
            client,
            reach,
            rate: Mutex::new(rate),
        })
    }

    /// Whether a request needs a key.
    pub(crate) fn keys_on(&self) -> bool {
        self.keys_on
    }

    /// The keys as last read.
    fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the keys file again (blocking: call it off the request path)
    /// and, when it changed, serves its keys from the next request on (a
    /// revoked key is refused, a new one admitted); a file that cannot be
    /// read or is broken keeps the last good keys, and is logged once per
    /// change.
    pub(crate) fn reload_keys(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let read = read_text(&file.path);
        let seen = sha256(read.as_ref().unwrap_or_else(|e| e));
        {
            let mut last = file.last.lock().unwrap_or_else(PoisonError::into_inner);
            if *last == seen {
                return;
            }
            *last = seen;
        }
        match read.and_then(|text| parse_keys_file(&file.path, &text)) {
            Ok(listed) => {
                let keys = file.keys(listed);
                tracing::info!(file = %file.path.display(), keys = keys.len(), "keys file reloaded");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            }
            Err(error) => {
                tracing::warn!(%error, "keys file refused; the last good keys stay");
            }
        }
    }

    /// Charges a request the door counted for the `runs` programs it runs:
    /// the door took one token, the rest are taken now. A request that
    /// runs more than the burst is refused as it can never pass; one past
    /// the rate gets a `Retry-After` that counts the door's token too, so
    /// that the same request sent then passes.
    pub(crate) fn charge(&self, caller: &Caller, runs: usize) -> Result<(), Refused> {
        let Some((limiter, per_minute, burst)) = &self.limiter else {
            return Ok(());
        };
        let mut state = caller
            .rate
            .lock()
            .expect("a caller's rate is never poisoned");
        if state.is_none() {
            return Ok(());
        }
        let runs = u32::try_from(runs).unwrap_or(u32::MAX);
        if runs > *burst {
            return Err(Refused::OverBurst {
                runs,
                burst: *burst,
            });
        }
        if let Some(rest) = NonZeroU32::new(runs.saturating_sub(1)) {
            *state = Some(rate(limiter, *per_minute, &caller.client, rest, true)?);
        }
        Ok(())
    }

    /// Forgets the rate state of callers not seen lately (bounds memory).
    pub(crate) fn forget_idle(&self) {
        if let Some((limiter, _, _)) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Takes `n` tokens of `client`'s bucket: its state then, or the refusal
/// with the wait; `after_door` when the door's token was taken already, so
/// that the wait covers it too.
fn rate(
    limiter: &Limiter,
    per_minute: u32,
    client: &Client,
    n: NonZeroU32,
    after_door: bool,
) -> Result<Rate, Refused> {
    let checked =
        limiter
            .check_key_n(client, n)
            .map_err(|governor::InsufficientCapacity(burst)| Refused::OverBurst {
                runs: n.get(),
                burst,
            })?;
    match checked {
        Ok(state) => {
            let remaining = state.remaining_burst_capacity();
            let quota = state.quota();
            let missing = quota.burst_size().get() - remaining;
            let reset = quota.replenish_interval() * missing;
            Ok(Rate {
                limit: per_minute,
                remaining,
                reset_s: reset.as_secs_f64().ceil() as u64,
            })
        }
        Err(not_until) => {
            let mut wait = not_until.wait_time_from(DefaultClock::default().now());
            if after_door {
                wait += not_until.quota().replenish_interval();
            }
            Err(Refused::RateLimited {
                limit: per_minute,
                retry_s: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
        }
    }
}

/// The headers that may carry a key, with their names as written in
/// refusals: ours, Judge0's (`X-Auth-Token` for authentication,
/// `X-Auth-User` for authorization) and `Authorization` (see
/// [`authorization_key`]).
const KEY_HEADERS: [(&str, &str); 4] = [
    ("authorization", "`Authorization`"),
    ("x-api-key", "`X-API-Key`"),
    ("x-auth-token", "`X-Auth-Token`"),
    ("x-auth-user", "`X-Auth-User`"),
];

/// The key of an `Authorization` value: `Bearer KEY` (the scheme in any
/// case) or a bare `KEY`, as Piston's clients send it; a value of another
/// scheme (`Basic …`) carries none.
fn authorization_key(value: &str) -> Option<&str> {
    let value = value.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => Some(key.trim()),
        Some(_) => None,
        None => Some(value),
    }
}

/// The key a request presents, in any of [`KEY_HEADERS`]; two headers
/// that carry different keys are refused, naming both.
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, Refused> {
    let mut found: Option<(&str, &'static str)> = None;
    let values = KEY_HEADERS.into_iter().flat_map(|(header, name)| {
        let values = headers.get_all(header).into_iter();
        values.filter_map(move |v| Some((header, name, v.to_str().ok()?)))
    });
    for (header, name, value) in values {
        let key = match header {
            "authorization" => authorization_key(value),
            _ => Some(value.trim()),
        };
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            continue;
        };
        match found {
            Some((first, first_name)) if first != key => {
                return Err(Refused::TwoKeys(first_name, name));
            }
            Some(_) => {}
            None => found = Some((key, name)),
        }
    }
    Ok(found.map(|(key, _)| key))
}

impl Caller {
    /// Adds the rate limit's headers to `response`.
    pub(crate) fn decorate(&self, mut response: Response) -> Response {
        let rate = *self.rate.lock().expect("a caller's rate is never poisoned");
        if let Some(rate) = rate {
            let headers = response.headers_mut();
            for (name, value) in [
                ("ratelimit-limit", rate.limit.to_string()),
                ("ratelimit-remaining", rate.remaining.to_string()),
                ("ratelimit-reset", rate.reset_s.to_string()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn peer(ip: &str) -> Option<PeerAddr> {
        Some(PeerAddr(format!("{ip}:1234").parse().unwrap()))
    }

    #[test]
    fn without_keys_the_client_is_the_peers_address() {
        let gate = Gate::new(&FrontDoor::default()).unwrap();
        let caller = gate
            .enter(Route::Run, true, &headers(&[]), peer("127.0.0.2"))
            .unwrap();
        assert_eq!(&*caller.client, "ip:127.0.0.2");
        assert!(
            gate.enter(Route::Metrics, false, &headers(&[]), None)
                .is_ok()
        );
        // An IPv6 host holds its /64 whole: rotating within it is one
        // client (security review 3, L9), another /64 another.
        let client = |ip: &str| {
            let ip = format!("[{ip}]");
            gate.enter(Route::Run, true, &headers(&[]), peer(&ip))
                .unwrap()
                .client
        };
        assert_eq!(&*client("2001:db8:1:2::1"), "ip:2001:db8:1:2::");
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::7"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
    }

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_is_its_ipv4_address_or_its_ipv6_slash_64() {
        assert_eq!(peer_of(addr("192.0.2.7")), addr("192.0.2.7"));
        assert_eq!(peer_of(addr("::ffff:192.0.2.7")), addr("192.0.2.7"));
        assert_eq!(
            peer_of(addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            addr("2001:db8:1:2::")
        );
        assert_eq!(
            peer_of(addr("2001:db8:1:2::1")),
            peer_of(addr("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            peer_of(addr("2001:db8:1:2::1")),
            peer_of(addr("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn without_a_metrics_key_only_a_key_granted_metrics_scrapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "scraper metrics\n").unwrap();
        let gate = Gate::new(&FrontDoor {
            api_keys: vec![Secret("plain".into())],
            api_keys_file: Some(file),
            ..FrontDoor::default()
        })
        .unwrap();
        let bearer = |key: &str| headers(&[("authorization", &format!("Bearer {key}"))]);
        assert!(matches!(
            gate.enter(Route::Metrics, false, &bearer("plain"), None),
            Err(Refused::NotAllowed(_))
        ));
        assert!(
            gate.enter(Route::Metrics, false, &bearer("scraper"), None)
                .is_ok()
        );
    }

    #[test]
    fn keys_are_needed_checked_and_held_to_their_routes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        let hashed = hex(&sha256("hashed-key"));
        std::fs::write(
            &file,
            format!("# judges\nsha256:{hashed} judge0,probes\nplain-key run # a comment\n"),
        )
        .unwrap();
        let gate = Gate::new(&FrontDoor {
            api_keys: vec![Secret("alpha".into())],
            api_keys_file: Some(file),
            metrics_key: Some(Secret("scrape".into())),
            ..FrontDoor::default()
        })
        .unwrap();
        let enter =
            |route, pairs: &[(&'static str, &str)]| gate.enter(route, false, &headers(pairs), None);
        assert_eq!(enter(Route::Run, &[]).unwrap_err(), Refused::NoKey);
        assert_eq!(
            enter(Route::Run, &[("x-api-key", "nope")]).unwrap_err(),
            Refused::BadKey
        );
        let alpha = enter(Route::Run, &[("authorization", "Bearer alpha")]).unwrap();
        assert!(alpha.client.starts_with("key:"), "{}", alpha.client);
        assert!(!alpha.client.contains("alpha"));
        assert!(enter(Route::Judge0, &[("x-api-key", "hashed-key")]).is_ok());
        assert_eq!(
            enter(Route::Run, &[("x-api-key", "hashed-key")]).unwrap_err(),
            Refused::NotAllowed("run")
        );
        assert!(enter(Route::Run, &[("x-api-key", "plain-key")]).is_ok());
        assert_eq!(
            enter(Route::Piston, &[("x-api-key", "plain-key")]).unwrap_err(),
            Refused::NotAllowed("piston")
        );
        // /metrics: its own key only.
        assert!(enter(Route::Metrics, &[("x-api-key", "scrape")]).is_ok());
        assert_eq!(
            enter(Route::Metrics, &[("x-api-key", "alpha")]).unwrap_err(),
            Refused::NotAllowed("metrics")
        );
        assert_eq!(enter(Route::Metrics, &[]).unwrap_err(), Refused::NoKey);
        assert!(format!("{gate:?}").contains("keys: 3"));
    }

    #[test]
    fn a_key_counts_in_any_of_its_headers_and_two_that_differ_are_refused() {
        let gate = Gate::new(&FrontDoor {
            api_keys: vec![Secret("alpha".into()), Secret("beta".into())],
            ..FrontDoor::default()
        })
        .unwrap();
        let enter = |pairs: &[(&'static str, &str)]| {
            gate.enter(Route::Judge0, false, &headers(pairs), None)
                .map(|caller| caller.client)
        };
        let alpha = enter(&[("x-api-key", "alpha")]).unwrap();
        for pairs in [
            &[("authorization", "Bearer alpha")][..],
            &[("authorization", "BEARER  alpha ")],
            &[("authorization", "alpha")],
            &[("x-auth-token", "alpha")],
            &[("x-auth-user", "alpha")],
            &[("x-auth-token", "alpha"), ("x-auth-user", "alpha")],
            &[("authorization", "alpha"), ("x-api-key", "alpha")],
            // Another scheme carries no key of ours.
            &[
                ("authorization", "Basic dXNlcjpwYXNz"),
                ("x-auth-token", "alpha"),
            ],
        ] {
            assert_eq!(enter(pairs).as_ref(), Ok(&alpha), "{pairs:?}");
        }
        assert_eq!(
            enter(&[("authorization", "wrong")]).unwrap_err(),
            Refused::BadKey
        );
        assert_eq!(
            enter(&[("x-auth-token", "wrong")]).unwrap_err(),
            Refused::BadKey
        );
        assert_eq!(
            enter(&[("authorization", "Basic dXNlcjpwYXNz")]).unwrap_err(),
            Refused::NoKey
        );
        let two = enter(&[("x-auth-token", "alpha"), ("x-auth-user", "beta")]).unwrap_err();
        assert_eq!(two, Refused::TwoKeys("`X-Auth-Token`", "`X-Auth-User`"));
        assert!(
            two.to_string()
                .contains("different API keys in `X-Auth-Token` and `X-Auth-User`")
        );
        // Even when one of them is a good key, and with a wrong one.
        let two = enter(&[("authorization", "Bearer alpha"), ("x-api-key", "wrong")]);
        assert_eq!(
            two.unwrap_err(),
            Refused::TwoKeys("`Authorization`", "`X-API-Key`")
        );
        // With keys off no header is read.
        let open = Gate::new(&FrontDoor::default()).unwrap();
        let two = headers(&[("x-auth-token", "a"), ("x-api-key", "b")]);
        assert!(open.enter(Route::Judge0, false, &two, None).is_ok());
        assert!(!open.keys_on() && gate.keys_on());
    }

    #[test]
    fn the_keys_file_read_again_revokes_and_admits_keeps_the_last_good_and_never_opens_the_door() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "old-key\n").unwrap();
        let gate = Gate::new(&FrontDoor {
            api_keys: vec![Secret("settings-key".into())],
            api_keys_file: Some(file.clone()),
            ..FrontDoor::default()
        })
        .unwrap();
        let enter =
            |key: &str| gate.enter(Route::Run, false, &headers(&[("x-api-key", key)]), None);
        assert!(enter("old-key").is_ok());
        gate.reload_keys();
        assert!(enter("old-key").is_ok(), "an unchanged file keeps its keys");
        std::fs::write(&file, "new-key run\n").unwrap();
        gate.reload_keys();
        assert_eq!(enter("old-key").unwrap_err(), Refused::BadKey);
        assert!(enter("new-key").is_ok());
        assert!(enter("settings-key").is_ok(), "the settings' keys stay");
        // A broken file, then a missing one: the last good keys stay.
        std::fs::write(&file, "other-key admin\n").unwrap();
        gate.reload_keys();
        std::fs::remove_file(&file).unwrap();
        gate.reload_keys();
        assert!(enter("new-key").is_ok());
        assert_eq!(enter("other-key").unwrap_err(), Refused::BadKey);
        // A file emptied of keys shuts the door: a key is still needed.
        let gate = Gate::new(&FrontDoor {
            api_keys_file: Some(file.clone()),
            ..FrontDoor::default()
        });
        assert!(gate.unwrap_err().contains("cannot be read"));
        std::fs::write(&file, "only-key\n").unwrap();
        let gate = Gate::new(&FrontDoor {
            api_keys_file: Some(file.clone()),
            ..FrontDoor::default()
        })
        .unwrap();
        std::fs::write(&file, "# revoked\n").unwrap();
        gate.reload_keys();
        let anonymous = gate.enter(Route::Run, false, &headers(&[]), peer("127.0.0.1"));
        assert_eq!(anonymous.unwrap_err(), Refused::NoKey);
        assert_eq!(
            gate.enter(
                Route::Run,
                false,
                &headers(&[("x-api-key", "only-key")]),
                None
            )
            .unwrap_err(),
            Refused::BadKey
        );
    }

    #[test]
    fn only_keys_off_or_a_key_granted_judge0_all_reaches_every_submission() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "auditor judge0:all\nteacher run,judge0\n").unwrap();
        let gate = Gate::new(&FrontDoor {
            api_keys: vec![Secret("plain".into())],
            api_keys_file: Some(file),
            ..FrontDoor::default()
        })
        .unwrap();
        let reach = |key: &str| {
            let key = headers(&[("x-api-key", key)]);
            gate.enter(Route::Judge0, false, &key, None).unwrap().reach
        };
        assert_eq!(reach("auditor"), Reach::Every);
        assert_eq!(reach("teacher"), Reach::Own);
        assert_eq!(reach("plain"), Reach::Own);
        // The grant is Judge0's routes and no other.
        let auditor = headers(&[("x-api-key", "auditor")]);
        assert_eq!(
            gate.enter(Route::Run, false, &auditor, None).unwrap_err(),
            Refused::NotAllowed("run")
        );
        let open = Gate::new(&FrontDoor::default()).unwrap();
        let caller = open
            .enter(Route::Judge0, false, &headers(&[]), None)
            .unwrap();
        assert_eq!(caller.reach, Reach::Every);
    }

    #[test]
    fn a_bad_keys_file_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "ok\nsha256:xyz\n").unwrap();
        let err = read_keys_file(&file).unwrap_err();
        assert!(
            err.ends_with("line 2: `sha256:` wants 64 hex digits"),
            "{err}"
        );
        std::fs::write(&file, "k run,admin\n").unwrap();
        let err = read_keys_file(&file).unwrap_err();
        assert!(err.contains("line 1: unknown route `admin`"), "{err}");
    }

    #[test]
    fn the_rate_is_a_bucket_per_client_with_its_state_for_the_headers() {
        let gate = Gate::new(&FrontDoor {
            rate_limit_per_minute: 60,
            rate_limit_burst: 2,
            ..FrontDoor::default()
        })
        .unwrap();
        let enter = |ip| gate.enter(Route::Run, true, &headers(&[]), peer(ip));
        let first = enter("10.0.0.1").unwrap();
        let response = first.decorate(Response::new("".into()));
        assert_eq!(response.headers()["ratelimit-limit"], "60");
        assert_eq!(response.headers()["ratelimit-remaining"], "1");
        assert!(enter("10.0.0.1").is_ok());
        let refused = enter("10.0.0.1").unwrap_err();
        assert!(
            matches!(
                refused,
                Refused::RateLimited {
                    limit: 60,
                    retry_s: 1
                }
            ),
            "{refused:?}"
        );
        // Another client has its own bucket; requests that do not run code
        // are not counted.
        assert!(enter("10.0.0.2").is_ok());
        assert!(
            gate.enter(Route::Run, false, &headers(&[]), peer("10.0.0.1"))
                .is_ok()
        );
    }

    #[test]
    fn a_request_is_charged_its_runs_and_one_over_the_burst_can_never_pass() {
        // Security review 3, L4: a request was one token, whatever it ran.
        let gate = Gate::new(&FrontDoor {
            rate_limit_per_minute: 6,
            rate_limit_burst: 5,
            ..FrontDoor::default()
        })
        .unwrap();
        let enter = || gate.enter(Route::Judge0, true, &headers(&[]), peer("10.0.0.1"));
        let remaining = |caller: &Caller| {
            caller.decorate(Response::new("".into())).headers()["ratelimit-remaining"].clone()
        };
        let caller = enter().unwrap();
        assert_eq!(remaining(&caller), "4");
        gate.charge(&caller, 3).unwrap();
        assert_eq!(remaining(&caller), "2", "the door's token and two more");
        // More than the burst: refused at once, whatever is left.
        let caller = enter().unwrap();
        assert_eq!(
            gate.charge(&caller, 6).unwrap_err(),
            Refused::OverBurst { runs: 6, burst: 5 }
        );
        // Past the rate: the wait counts the door's token too (one every
        // 10 s), so that the same request sent then passes.
        let caller = enter().unwrap();
        let Err(Refused::RateLimited { retry_s, .. }) = gate.charge(&caller, 2) else {
            panic!("a run past the rate passed");
        };
        assert!((19..=21).contains(&retry_s), "{retry_s}");
        // A request the door did not count is not charged.
        let free = gate
            .enter(Route::Piston, false, &headers(&[]), peer("10.0.0.1"))
            .unwrap();
        assert!(gate.charge(&free, 64).is_ok());
    }
}
