//! Request bodies: read a few at a time, bounded in size and time, and
//! parsed as JSON objects.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Request bodies read at once (each up to `max_body_bytes`).
pub const BODY_READS: usize = 16;

/// Reads request bodies under the service's bounds.
#[derive(Debug)]
pub struct BodyReader {
    /// Largest body, in bytes.
    pub max_bytes: u64,
    /// Longest a body may take to arrive.
    pub timeout: Duration,
    permits: Semaphore,
}

impl BodyReader {
    pub fn new(max_bytes: u64, timeout: Duration) -> BodyReader {
        BodyReader {
            max_bytes,
            timeout,
            permits: Semaphore::new(BODY_READS),
        }
    }

    /// Reads a whole body: [`BODY_READS`] at a time, so that many clients
    /// cannot make the service hold many large bodies at once; each at most
    /// `max_bytes` and within `timeout`.
    pub async fn read(
        &self,
        body: impl Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
    ) -> Result<Bytes, ApiError> {
        let _reading = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| ApiError::BodiesBusy)?
            .expect("the body permits are never closed");
        read_bounded(body, self.max_bytes, self.timeout).await
    }
}

/// Reads the whole of `body`, refusing more than `limit` bytes or longer
/// than `timeout`.
async fn read_bounded<E: std::fmt::Display>(
    mut body: impl Stream<Item = Result<impl Buf, E>> + Send + Unpin,
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
pub fn expect_object(body: &[u8]) -> Result<(), ApiError> {
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
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            ApiError::InvalidType(format!("the body does not match the request's shape: {e}"))
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(e.to_string()),
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

    #[tokio::test]
    async fn a_body_is_read_whole_within_its_bounds() {
        let reader = BodyReader::new(10, Duration::from_secs(1));
        let body = reader
            .read(chunks(vec![b"{\"a\"", b":1}"], Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_a_slow_one_408() {
        let reader = BodyReader::new(4, Duration::from_secs(1));
        let e = reader
            .read(chunks(vec![b"123", b"45"], Duration::ZERO))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_too_large", 413));
        let reader = BodyReader::new(100, Duration::from_millis(50));
        let e = reader
            .read(chunks(vec![b"1", b"2", b"3"], Duration::from_millis(30)))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), ("body_timeout", 408));
    }

    #[tokio::test]
    async fn when_every_permit_is_held_past_the_timeout_the_answer_is_429() {
        let reader = BodyReader::new(100, Duration::from_millis(50));
        let held: Vec<_> = (0..BODY_READS)
            .map(|_| reader.permits.try_acquire().unwrap())
            .collect();
        let e = reader
            .read(chunks(vec![b"{}"], Duration::ZERO))
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
            futures_util::stream::iter(parts),
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
