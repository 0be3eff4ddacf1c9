//! Serving HTTP: the accept loop, with bounds warp's own server lacks — a
//! cap on open connections and a deadline for a request's headers, so that
//! slow or idle clients cannot pile up — and a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::{Filter, Reply};

use crate::api::gate::PeerAddr;
use crate::config::ServerSettings;

/// Serves `routes` on `listener` within the `[server]` bounds (connections
/// open at once, beyond which they wait in the kernel's accept queue; how
/// long a client may take to send a request's headers, counted from the
/// connection's start or the end of its previous answer, so that an idle
/// connection is closed after it) until `shutdown` resolves; then stops
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
    let header_timeout = bounds.header_timeout();
    let graceful = GracefulShutdown::new();
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
        // Each request carries the peer's address (the client, when API
        // keys are off).
        let warp_service = warp::service(routes.clone());
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                tower_service::Service::call(&mut warp_service.clone(), request)
            },
        );
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            // HTTP/1 only (and no upgrades, which would bring the guessing
            // back): guessing the version reads the first bytes with no
            // deadline, so a silent client would hold its slot for ever.
            let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
