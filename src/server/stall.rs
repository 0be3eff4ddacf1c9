//! A write deadline for a connection: an answer that makes no progress
//! for the deadline (a client that stops reading, or reads nothing at all)
//! fails its write, and the connection, with what it held, is dropped.
//! hyper has a deadline for reading a request's headers, none for writing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, whose writes and flushes fail with `TimedOut` once they have
/// been pending for `limit` without a byte going out.
pub(crate) struct Stalled<S> {
    inner: S,
    limit: Duration,
    pending_since: Option<Pin<Box<Sleep>>>,
    /// What the connection holds while it is open (its slots), for as long
    /// as the stream lives: past an upgrade to a WebSocket too.
    _held: Option<Box<dyn Send + Sync>>,
}

impl<S> Stalled<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Stalled<S> {
        Stalled {
            inner,
            limit,
            pending_since: None,
            _held: None,
        }
    }

    /// The same, holding `held` until the stream is dropped.
    pub(crate) fn holding(mut self, held: impl Send + Sync + 'static) -> Stalled<S> {
        self._held = Some(Box::new(held));
        self
    }

    /// After a pending write: `Pending`, or the error once the deadline
    /// has passed.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let deadline =
            (self.pending_since).get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {} ms", limit.as_millis()),
        )))
    }

    /// What a write or a flush polled to: progress resets the deadline.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self.waiting(cx),
            done => {
                self.pending_since = None;
                done
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalled<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalled<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_at_the_deadline() {
        let (server, _client) = tokio::io::duplex(1024);
        let mut server = Stalled::new(server, LIMIT);
        let started = tokio::time::Instant::now();
        let e = server
            .write_all(&[0; 4096])
            .await
            .expect_err("a stalled write");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT, "after the deadline, not before");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_gets_the_whole_answer() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = Stalled::new(server, LIMIT);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0; 512];
            loop {
                // Each read comes within the deadline, though all of them
                // together take far longer than it.
                tokio::time::sleep(LIMIT / 2).await;
                match client.read(&mut buf).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        server
            .write_all(&[7; 8192])
            .await
            .expect("progress resets the deadline");
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), vec![7; 8192]);
    }
}
