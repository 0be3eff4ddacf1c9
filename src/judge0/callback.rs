//! Judge0's callbacks: when a submission with a `callback_url` finishes,
//! its result (the 8 default fields, base64) is sent there with a PUT, as
//! Judge0 does (`IsolateJob#call_callback`): up to `tries` attempts, each
//! within `timeout`, retried only when no answer came. Only the hosts an
//! operator lists in `judge0.callback_hosts` may be called (none by
//! default), so that the service cannot be made to reach its own network.

use std::time::Duration;

use reqwest::Url;

/// Whether `url` may be called back: `http` or `https`, to a host the
/// allow-list names (`host`: any port; `host:port`: that port).
///
/// Errors: the sentence a client reads (Judge0's own when callbacks are
/// off).
pub(crate) fn allowed(url: &str, hosts: &[String]) -> Result<(), String> {
    if hosts.is_empty() {
        return Err("setting callback is not allowed".into());
    }
    let parsed = Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = parsed.port_or_known_default().unwrap_or_default();
    let listed = hosts.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == host || entry == format!("{host}:{port}")
    });
    if listed {
        Ok(())
    } else {
        Err(format!(
            "names the host `{host}:{port}`, which this server does not call back (judge0.callback_hosts)"
        ))
    }
}

/// How callbacks are sent.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    client: reqwest::Client,
    tries: u32,
}

impl Caller {
    /// A caller making `tries` attempts, each within `timeout`. It follows
    /// no redirect (a redirect could lead off the allow-list), uses no
    /// proxy, and trusts the Mozilla roots it carries (the image has no
    /// system certificates).
    pub(crate) fn new(tries: u32, timeout: Duration) -> Caller {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        let client = reqwest::Client::builder()
            .tls_certs_only(roots)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("code-runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the callback client builds");
        Caller {
            client,
            tries: tries.max(1),
        }
    }

    /// PUTs `body` (JSON) to `url`; true when an answer came (whatever its
    /// status, as Judge0 counts it).
    pub(crate) async fn call(&self, url: &str, body: String) -> bool {
        for attempt in 1..=self.tries {
            let sent = self
                .client
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(answer) => {
                    let to = origin(url);
                    tracing::debug!(%to, status = %answer.status(), "callback delivered");
                    return true;
                }
                Err(e) => {
                    let (to, error) = (origin(url), e.without_url());
                    tracing::info!(%to, attempt, %error, "callback not answered");
                }
            }
        }
        false
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
    fn only_listed_hosts_are_called_back() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            allowed("http://example.com/x", &none).unwrap_err(),
            "setting callback is not allowed"
        );
        let hosts = vec![
            "hooks.example.com".to_string(),
            "127.0.0.1:9000".to_string(),
        ];
        assert!(allowed("https://hooks.example.com/judge0", &hosts).is_ok());
        assert!(allowed("http://HOOKS.example.com:8080/x", &hosts).is_ok());
        assert!(allowed("http://127.0.0.1:9000/cb", &hosts).is_ok());
        let refused = allowed("http://127.0.0.1:9001/cb", &hosts).unwrap_err();
        assert!(refused.contains("`127.0.0.1:9001`"), "{refused}");
        assert!(allowed("http://169.254.169.254/latest", &hosts).is_err());
        assert!(allowed("file:///etc/passwd", &hosts).is_err());
        assert!(allowed("not a url", &hosts).is_err());
    }
}
