//! Judge0's callbacks: when a submission with a `callback_url` finishes,
//! its result (the 8 default fields, base64) is sent there with a PUT, as
//! Judge0 does (`IsolateJob#call_callback`): up to `tries` attempts, each
//! within `timeout`, retried only when no answer came.
//!
//! Only the `host:port`s an operator lists in `judge0.callback_hosts` may
//! be called (none by default), so that the service cannot be made to
//! reach its own network: a listed name is resolved when it is called,
//! the addresses it resolves to that are not public are dropped unless an
//! entry lists that address and port itself, and the connection goes to
//! an address so checked (it is pinned: nothing is looked up again).
//!
//! Callbacks are sent by [`Callbacks`], a bounded set of tasks beside the
//! workers, so that a callback host that never answers holds a slot of
//! that set, never a worker.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::config::{CallbackHost, CallbackTarget};

/// The host and port `url` names (its scheme's port when it gives none).
fn target(url: &Url) -> Option<(CallbackTarget, u16)> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = match bare.parse::<IpAddr>() {
        Ok(addr) => CallbackTarget::Addr(addr),
        Err(_) => CallbackTarget::Name(bare.to_ascii_lowercase()),
    };
    Some((host, url.port_or_known_default()?))
}

/// Whether `url` may be called back: `http` or `https`, to a host and
/// port the allow-list names.
///
/// Errors: the sentence a client reads (Judge0's own when callbacks are
/// off).
pub(crate) fn allowed(url: &str, hosts: &[CallbackHost]) -> Result<(), String> {
    if hosts.is_empty() {
        return Err("setting callback is not allowed".into());
    }
    let parsed = Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    let Some((host, port)) = target(&parsed) else {
        return Err("names no host".into());
    };
    if hosts
        .iter()
        .any(|entry| entry.host == host && entry.port == port)
    {
        return Ok(());
    }
    let named = CallbackHost { host, port };
    Err(format!(
        "names the host `{named}`, which this server does not call back (judge0.callback_hosts)"
    ))
}

/// Whether `ip` is an address of the public internet: not loopback,
/// private (RFC 1918, IPv6 unique local), link-local, unspecified,
/// shared (RFC 6598), broadcast or multicast. An IPv4-mapped IPv6
/// address is its IPv4 address.
pub(crate) fn public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || shared
                || a == 0)
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.is_multicast())
        }
    }
}

/// Why a callback was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undelivered {
    /// No answer came, after every try.
    Unanswered,
    /// Its host may not be called (the reason, for the log).
    Refused(String),
}

/// How callbacks are sent.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    roots: Arc<[reqwest::Certificate]>,
    hosts: Arc<[CallbackHost]>,
    tries: u32,
    timeout: Duration,
}

impl Caller {
    /// A caller to `hosts`, making `tries` attempts, each within
    /// `timeout`. It follows no redirect (a redirect could lead off the
    /// allow-list), uses no proxy, and trusts the Mozilla roots it carries
    /// (the image has no system certificates).
    pub(crate) fn new(hosts: &[CallbackHost], tries: u32, timeout: Duration) -> Caller {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect();
        Caller {
            roots,
            hosts: hosts.into(),
            tries: tries.max(1),
            timeout,
        }
    }

    /// The addresses a callback to `url` may connect to: `None` for an
    /// address the allow-list names (it is called as it is), else the
    /// name and its checked addresses; `Err` when none may be called.
    async fn pin(&self, url: &Url) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
        let Some((host, port)) = target(url) else {
            return Err("the URL names no host".into());
        };
        let name = match host {
            CallbackTarget::Addr(_) => return Ok(None),
            CallbackTarget::Name(name) => name,
        };
        let looked_up =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host((name.as_str(), port)))
                .await
                .map_err(|_| format!("`{name}` was not resolved within the callback's time limit"))?
                .map_err(|e| format!("`{name}` cannot be resolved: {e}"))?;
        let (pinned, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = looked_up.partition(|addr| {
            public(addr.ip())
                || self.hosts.iter().any(|entry| {
                    entry.host == CallbackTarget::Addr(addr.ip().to_canonical())
                        && entry.port == port
                })
        });
        if pinned.is_empty() {
            let refused: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            return Err(format!(
                "`{name}` resolves to {}, which is not public, and judge0.callback_hosts does not list it",
                if refused.is_empty() {
                    "nothing".to_string()
                } else {
                    refused.join(", ")
                }
            ));
        }
        Ok(Some((name, pinned)))
    }

    /// The client of one callback: to `pinned`'s addresses for its name.
    fn client(&self, pinned: Option<&(String, Vec<SocketAddr>)>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only(self.roots.iter().cloned())
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("code-runner/", env!("CARGO_PKG_VERSION")));
        if let Some((name, addrs)) = pinned {
            builder = builder.resolve_to_addrs(name, addrs);
        }
        builder.build().expect("the callback client builds")
    }

    /// PUTs `body` (JSON) to `url`: delivered when an answer came
    /// (whatever its status, as Judge0 counts it).
    pub(crate) async fn call(&self, url: &str, body: String) -> Result<(), Undelivered> {
        let parsed = Url::parse(url).map_err(|e| Undelivered::Refused(e.to_string()))?;
        let pinned = self.pin(&parsed).await.map_err(Undelivered::Refused)?;
        let client = self.client(pinned.as_ref());
        let to = origin(url);
        for attempt in 1..=self.tries {
            let sent = client
                .put(parsed.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(answer) => {
                    tracing::debug!(%to, status = %answer.status(), "callback delivered");
                    return Ok(());
                }
                Err(e) => {
                    let error = e.without_url();
                    tracing::info!(%to, attempt, %error, "callback not answered");
                }
            }
        }
        Err(Undelivered::Unanswered)
    }
}

/// The callbacks being sent: each on a task of its own, at most
/// `judge0.max_callbacks` at once. A callback handed over while they are
/// all taken is dropped (logged): the workers never wait for one.
#[derive(Debug)]
pub(crate) struct Callbacks {
    caller: Caller,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
    /// Cancelled once shutdown's grace is over: the rest are dropped.
    dropped: CancellationToken,
}

impl Callbacks {
    /// At most `max` callbacks at once, sent by `caller`.
    pub(crate) fn new(caller: Caller, max: usize) -> Callbacks {
        Callbacks {
            caller,
            slots: Arc::new(Semaphore::new(max)),
            tasks: TaskTracker::new(),
            dropped: CancellationToken::new(),
        }
    }

    /// Held by a worker while it may still hand callbacks over, so that
    /// shutdown waits for its last one too.
    pub(crate) fn hold(&self) -> TaskTrackerToken {
        self.tasks.token()
    }

    /// Sends `body` to `url` for the submission `token` in the
    /// background; false (logged) when every slot is taken or shutdown's
    /// grace is over.
    pub(crate) fn send(&self, token: &str, url: &str, body: String) -> bool {
        let to = origin(url);
        if self.dropped.is_cancelled() {
            tracing::warn!(%token, %to, "judge0: callback dropped: the service is stopping");
            return false;
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(%token, %to, "judge0: callback dropped: every callback slot is taken (judge0.max_callbacks)");
            return false;
        };
        let (caller, dropped, url, token) = (
            self.caller.clone(),
            self.dropped.clone(),
            url.to_string(),
            token.to_string(),
        );
        self.tasks.spawn(async move {
            let _slot = slot;
            tokio::select! {
                sent = caller.call(&url, body) => match sent {
                    Ok(()) => {}
                    Err(Undelivered::Unanswered) => {
                        tracing::warn!(%token, %to, "judge0: callback failed after every try");
                    }
                    Err(Undelivered::Refused(why)) => {
                        tracing::warn!(%token, %to, %why, "judge0: callback refused");
                    }
                },
                () = dropped.cancelled() => {
                    tracing::warn!(%token, %to, "judge0: callback dropped: shutdown's grace is over");
                }
            }
        });
        true
    }

    /// At shutdown: waits for the workers to let go ([`hold`](Self::hold))
    /// and the callbacks in flight to end, for at most `grace`; then
    /// drops those left (each logged).
    pub(crate) async fn finish(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            self.dropped.cancel();
        }
    }
}

/// What a log may say of a callback URL: its scheme, host and port, never
/// its path or query, which often carry a client's secret.
pub(crate) fn origin(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> Vec<CallbackHost> {
        entries.iter().map(|e| e.parse().unwrap()).collect()
    }

    #[test]
    fn a_logged_callback_url_keeps_its_origin_only() {
        assert_eq!(
            origin("https://judge.example:8443/hook/s3cr3t?token=abc#x"),
            "https://judge.example:8443"
        );
        assert_eq!(origin("http://10.0.0.1/t?k=v"), "http://10.0.0.1");
        assert_eq!(origin("not a url s3cr3t"), "(not a URL)");
    }

    #[test]
    fn only_listed_hosts_and_ports_are_called_back() {
        assert_eq!(
            allowed("http://example.com/x", &[]).unwrap_err(),
            "setting callback is not allowed"
        );
        let hosts = hosts(&[
            "Hooks.example.com:443",
            "hooks.example.com:8080",
            "127.0.0.1:9000",
            "[::1]:9000",
        ]);
        assert!(allowed("https://hooks.example.com/judge0", &hosts).is_ok());
        assert!(allowed("http://HOOKS.example.com:8080/x", &hosts).is_ok());
        assert!(allowed("http://127.0.0.1:9000/cb", &hosts).is_ok());
        assert!(allowed("http://[::1]:9000/cb", &hosts).is_ok());
        // A name's other ports, and http's port 80, are not listed.
        let refused = allowed("http://hooks.example.com/x", &hosts).unwrap_err();
        assert!(refused.contains("`hooks.example.com:80`"), "{refused}");
        let refused = allowed("http://127.0.0.1:9001/cb", &hosts).unwrap_err();
        assert!(refused.contains("`127.0.0.1:9001`"), "{refused}");
        assert!(allowed("http://169.254.169.254/latest", &hosts).is_err());
        assert!(allowed("http://[::1]:9001/", &hosts).is_err());
        assert!(allowed("file:///etc/passwd", &hosts).is_err());
        assert!(allowed("not a url", &hosts).is_err());
    }

    #[test]
    fn only_the_public_internet_is_public() {
        for ip in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_is_pinned_to_its_checked_addresses_and_refused_when_none_may_be_called() {
        let url = |u: &str| Url::parse(u).unwrap();
        let timeout = Duration::from_secs(5);
        // `localhost` is listed by name only: its loopback address is not
        // called.
        let by_name = Caller::new(&hosts(&["localhost:9000"]), 1, timeout);
        let refused = by_name
            .pin(&url("http://localhost:9000/x"))
            .await
            .unwrap_err();
        assert!(refused.contains("127.0.0.1"), "{refused}");
        assert!(refused.contains("not public"), "{refused}");
        // Listed by its address and port too, it is, at that address.
        let by_address = Caller::new(&hosts(&["localhost:9000", "127.0.0.1:9000"]), 1, timeout);
        let (name, addrs) = by_address
            .pin(&url("http://localhost:9000/x"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "localhost");
        assert_eq!(addrs, ["127.0.0.1:9000".parse::<SocketAddr>().unwrap()]);
        // The address on another port is not that entry.
        let other_port = Caller::new(&hosts(&["localhost:9000", "127.0.0.1:9001"]), 1, timeout);
        assert!(
            other_port
                .pin(&url("http://localhost:9000/x"))
                .await
                .is_err()
        );
        // A listed address is called as it is.
        let literal = Caller::new(&hosts(&["127.0.0.1:9000"]), 1, timeout);
        assert_eq!(literal.pin(&url("http://127.0.0.1:9000/x")).await, Ok(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_set_drops_the_callback_and_shutdown_drops_those_left_after_the_grace() {
        // A listener that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let caller = Caller::new(&hosts(&[&addr.to_string()]), 3, Duration::from_secs(5));
        let callbacks = Callbacks::new(caller, 2);
        let url = format!("http://{addr}/x");
        assert!(callbacks.send("a", &url, "{}".into()));
        assert!(callbacks.send("b", &url, "{}".into()));
        assert!(!callbacks.send("c", &url, "{}".into()), "past the bound");
        let started = tokio::time::Instant::now();
        callbacks.finish(Duration::from_secs(2)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // Cancelled, the tasks end at once and give their slots back.
        callbacks.tasks.wait().await;
        assert_eq!(callbacks.slots.available_permits(), 2);
        assert!(!callbacks.send("d", &url, "{}".into()), "after the grace");
        drop(listener);
    }
}
