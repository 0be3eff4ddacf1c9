//! Request bodies: read a few at a time, bounded in size and time, and
//! parsed as JSON objects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::job::Client;
use crate::text::clip;

/// Request bodies read at once (each up to `max_body_bytes`).
pub(crate) const BODY_READS: usize = 16;
/// Request bodies one client may have being read at once: a client with
/// many slow bodies holds this many of the [`BODY_READS`], not all.
pub(crate) const CLIENT_BODY_READS: usize = 4;
/// Of a body over the limit, at most this much is read and thrown away
/// before the 413 is answered, within [`DRAIN_TIME`], so that clients that
/// send the whole body before reading the answer (Node's `fetch`, Python's
/// `urllib`) read the 413 instead of a broken pipe, as nginx's lingering
/// close does.
pub(crate) const DRAIN_BYTES: u64 = 16 * 1024 * 1024;
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(3);

/// Reads request bodies under the service's bounds.
#[derive(Debug)]
pub(crate) struct BodyReader {
    /// Largest body, in bytes.
    pub(crate) max_bytes: u64,
    /// Longest a body may take to arrive.
    pub(crate) timeout: Duration,
    permits: Semaphore,
    /// Body reads in progress, per client.
    readers: Mutex<HashMap<Client, usize>>,
}

/// A client's body read in progress; dropping it ends it.
struct Reading<'a> {
    readers: &'a Mutex<HashMap<Client, usize>>,
    client: Client,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut readers = self.readers.lock().expect("readers lock");
        if let Some(n) = readers.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                readers.remove(&self.client);
            }
        }
    }
}

impl BodyReader {
    pub(crate) fn new(max_bytes: u64, timeout: Duration) -> BodyReader {
        BodyReader {
            max_bytes,
            timeout,
            permits: Semaphore::new(BODY_READS),
            readers: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a whole body for `client`: at most [`CLIENT_BODY_READS`] of
    /// one client and [`BODY_READS`] in all at once, so that many clients,
    /// or one with many slow bodies, cannot make the service hold many
    /// large bodies or starve others; each at most `max_bytes` (declared
    /// or sent: a body over it is drained, within bounds, then refused)
    /// and within `timeout`.
    pub(crate) async fn read(
        &self,
        client: &Client,
        declared: Option<u64>,
        mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
    ) -> Result<Bytes, ApiError> {
        let _reading = {
            let mut readers = self.readers.lock().expect("readers lock");
            let n = readers.entry(client.clone()).or_default();
            if *n >= CLIENT_BODY_READS {
                return Err(ApiError::BodiesBusy);
            }
            *n += 1;
            Reading {
                readers: &self.readers,
                client: client.clone(),
            }
        };
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| ApiError::BodiesBusy)?
            .expect("the body permits are never closed");
        if declared.is_some_and(|n| n > self.max_bytes) {
            drain(&mut body).await;
            return Err(ApiError::BodyTooLarge {
                limit: self.max_bytes,
            });
        }
        let read = read_bounded(&mut body, self.max_bytes, self.timeout).await;
        if let Err(ApiError::BodyTooLarge { .. }) = read {
            drain(&mut body).await;
        }
        read
    }
}

/// Reads and throws away what is left of `body`, up to [`DRAIN_BYTES`]
/// and [`DRAIN_TIME`].
async fn drain(body: &mut (impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin)) {
    let discard = async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.remaining() as u64;
            if seen > DRAIN_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// Reads the whole of `body`, refusing more than `limit` bytes or longer
/// than `timeout`.
async fn read_bounded<E: std::fmt::Display>(
    body: &mut (impl Stream<Item = Result<impl Buf, E>> + Send + Unpin),
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|e| ApiError::BodyUnreadable(e.to_string()))?;
            if (out.len() + chunk.remaining()) as u64 > limit {
                return Err(ApiError::BodyTooLarge { limit });
            }
            out.put(&mut chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            ms: timeout.as_millis() as u64,
        })?
}

/// Checks that `body` holds a JSON object (serde would also take a struct
/// from an array); the parse itself is the caller's.
pub(crate) fn expect_object(body: &[u8]) -> Result<(), ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ApiError::MalformedJson("the body is empty".to_string())),
        Some(b'{') => Ok(()),
        Some(_) => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => Err(json_error(e)),
            Ok(_) => Err(ApiError::InvalidType(
                "the body must be a JSON object".to_string(),
            )),
        },
    }
}

/// Names what is wrong with a body that does not parse.
pub(crate) fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::InvalidType(format!(
            "the body does not match the request's shape: {}",
            clip(&e.to_string())
        )),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(clip(&e.to_string()).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: Vec<&'static [u8]>,
        pause: Duration,
    ) -> impl Stream<Item = Result<Bytes, warp::Error>> + Send + Unpin {
        Box::pin(futures_util::stream::iter(parts).then(move |p| async move {
            tokio::time::sleep(pause).await;
            Ok(Bytes::from_static(p))
        }))
    }

    fn client() -> Client {
        std::sync::Arc::from("ip:127.0.0.1")
    }

    #[tokio::test]
    async fn a_body_is_read_whole_within_its_bounds() {
        let reader = BodyReader::new(10, Duration::from_secs(1));
        let body = reader
            .read(
                &client(),
                None,
                chunks(vec![b"{\"a\"", b":1}"], Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_a_slow_one_408() {
        let reader = BodyReader::new(4, Duration::from_secs(1));
        let e = reader
            .read(&client(), None, chunks(vec![b"123", b"45"], Duration::ZERO))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_too_large", 413));
        let reader = BodyReader::new(100, Duration::from_millis(50));
        let e = reader
            .read(
                &client(),
                None,
                chunks(vec![b"1", b"2", b"3"], Duration::from_millis(30)),
            )
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_timeout", 408));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_drained_then_413() {
        let reader = BodyReader::new(4, Duration::from_secs(1));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = sent.clone();
        let body = Box::pin(
            futures_util::stream::iter(vec![b"12345678"; 3]).map(move |p| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, warp::Error>(Bytes::from_static(p))
            }),
        );
        let e = reader.read(&client(), Some(24), body).await.unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_too_large", 413));
        // Every chunk was read (and thrown away) before the answer.
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn one_client_holds_only_its_share_of_the_body_reads() {
        let reader = std::sync::Arc::new(BodyReader::new(100, Duration::from_secs(5)));
        let slow = |reader: std::sync::Arc<BodyReader>, who: &'static str| {
            tokio::spawn(async move {
                let who: Client = std::sync::Arc::from(who);
                reader
                    .read(
                        &who,
                        None,
                        chunks(vec![b"{", b"}"], Duration::from_millis(300)),
                    )
                    .await
                    .map(|_| ())
            })
        };
        let held: Vec<_> = (0..CLIENT_BODY_READS)
            .map(|_| slow(reader.clone(), "ip:10.0.0.1"))
            .collect();
        while reader.readers.lock().unwrap().get("ip:10.0.0.1").copied() != Some(CLIENT_BODY_READS)
        {
            tokio::task::yield_now().await;
        }
        let refused = slow(reader.clone(), "ip:10.0.0.1")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((refused.code(), refused.status().as_u16()), ("busy", 429));
        // Another client reads at once.
        let other: Client = std::sync::Arc::from("ip:10.0.0.2");
        let body = reader
            .read(&other, None, chunks(vec![b"{}"], Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(&body[..], b"{}");
        for h in held {
            assert!(h.await.unwrap().is_ok());
        }
        assert!(reader.readers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn when_every_permit_is_held_past_the_timeout_the_answer_is_429() {
        let reader = BodyReader::new(100, Duration::from_millis(50));
        let held: Vec<_> = (0..BODY_READS)
            .map(|_| reader.permits.try_acquire().unwrap())
            .collect();
        let e = reader
            .read(&client(), None, chunks(vec![b"{}"], Duration::ZERO))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("busy", 429));
        assert!(e.to_string().contains("request bodies"), "{e}");
        drop(held);
    }

    #[tokio::test]
    async fn a_connection_that_fails_mid_body_is_400_body_unreadable() {
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"{")),
            Err(std::io::Error::other("connection reset")),
        ];
        let e = read_bounded(
            &mut futures_util::stream::iter(parts),
            100,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_unreadable", 400));
        assert!(e.to_string().contains("connection reset"), "{e}");
    }

    #[test]
    fn only_an_object_is_a_request() {
        assert!(expect_object(b" {").is_ok());
        assert_eq!(expect_object(b"").unwrap_err().code(), "malformed_json");
        assert_eq!(expect_object(b"[1, 2]").unwrap_err().code(), "invalid_type");
        assert_eq!(expect_object(b"null").unwrap_err().code(), "invalid_type");
        assert_eq!(expect_object(b"[1,").unwrap_err().code(), "malformed_json");
        assert_eq!(expect_object(b"nope").unwrap_err().code(), "malformed_json");
    }
}
