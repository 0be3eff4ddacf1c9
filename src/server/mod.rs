//! Serving HTTP: the accept loop, with bounds warp's own server lacks — a
//! cap on open connections and a share of it per peer (`peers`), a deadline
//! for a request's headers and one for an answer's writes (`stall`), so
//! that slow, idle or greedy clients cannot pile up — and a graceful
//! shutdown.

mod peers;
mod stall;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warp::{Filter, Reply};

use crate::api::gate::PeerAddr;
use crate::api::peer_refusal;
use crate::config::ServerSettings;
use peers::Peers;
use stall::Stalled;

/// Refusals of a peer past its share being written at once; beyond, the
/// connection is closed with no answer.
const REFUSALS: usize = 64;
/// The longest a refusal may take to write and to drain what came with it.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Serves `routes` on `listener` within the `[server]` bounds (connections
/// open at once, beyond which they wait in the kernel's accept queue; those
/// of one peer, beyond which it is answered 429 and closed; how long a
/// client may take to send a request's headers, counted from the
/// connection's start or the end of its previous answer, so that an idle
/// connection is closed after it; how long an answer may go unread) until
/// `shutdown` resolves; then stops
/// accepting, lets every open connection finish its request in flight (idle
/// ones are closed), and returns once they are all done.
pub(crate) async fn serve<F>(
    listener: TcpListener,
    routes: F,
    bounds: &ServerSettings,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let peers = Peers::new(bounds.peer_connections());
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let (header_timeout, write_timeout) = (bounds.header_timeout(), bounds.write_timeout());
    // Cancelled at shutdown: each connection finishes its request in
    // flight, and the server waits for them all.
    let closing = tokio_util::sync::CancellationToken::new();
    let connections = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(peer_slot) = peers.admit(peer.ip()) else {
            refuse(stream, permit, refusals.clone(), peers.cap());
            continue;
        };
        // Each request carries the peer's address (the client, when API
        // keys are off).
        let warp_service = warp::service(routes.clone());
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                tower_service::Service::call(&mut warp_service.clone(), request)
            },
        );
        let stream = Stalled::new(stream, write_timeout).holding((permit, peer_slot));
        connections.spawn(connection(stream, service, header_timeout, closing.clone()));
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// Serves one connection's requests until it ends, or, once `closing` is
/// cancelled, until its request in flight is answered. HTTP/1 only,
/// hyper's own (with upgrades, for WebSockets), never hyper-util's guess of
/// the version: guessing reads the first bytes with no deadline, so a
/// silent client would hold its slot for ever. The connection's slots go
/// with `stream`, which an upgraded connection keeps.
async fn connection<S>(
    stream: Stalled<TcpStream>,
    service: S,
    header_timeout: Duration,
    closing: tokio_util::sync::CancellationToken,
) where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers a connection of a peer past its share with a 429 and closes it,
/// within [`REFUSAL_TIME`]; closes it at once when [`REFUSALS`] are being
/// written already.
fn refuse(
    mut stream: TcpStream,
    permit: OwnedSemaphorePermit,
    refusals: Arc<Semaphore>,
    cap: usize,
) {
    let Ok(refusal) = refusals.try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _slots = (permit, refusal);
        let answer = peer_refusal(cap);
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            // Read what the client sent, so that closing does not reset
            // the connection before it has read the answer.
            let mut sink = [0; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}
