//! `code-runner healthcheck`: asks the local service's `/health` and exits
//! 0 when it answers `{"status": "ok"}`, so that a container image needs
//! neither curl nor a shell for its health check.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The address to ask: the configured one, or loopback when the service
/// listens on every address.
pub fn target(config: &Config) -> SocketAddr {
    let host = match config.server.host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        ip => ip,
    };
    SocketAddr::new(host, config.server.port)
}

/// Checks `GET /health` at `addr`; the error says what went wrong.
pub async fn check(addr: SocketAddr) -> Result<(), String> {
    tokio::time::timeout(TIMEOUT, ask(addr))
        .await
        .map_err(|_| format!("no answer from {addr} within {} s", TIMEOUT.as_secs()))?
}

async fn ask(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let healthy = status_line.split_whitespace().nth(1) == Some("200")
        && serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v["status"] == "ok");
    if healthy {
        Ok(())
    } else {
        Err(format!("unhealthy answer: {status_line}"))
    }
}
