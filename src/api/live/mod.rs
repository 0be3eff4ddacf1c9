//! Streamed runs at the edge (docs/streaming.md): the service's own
//! WebSocket protocol ([`ws`], `GET /run-code/ws`), Piston's
//! ([`connect`], `GET /api/v2/connect`), Server-Sent Events ([`sse`],
//! `POST /run-code` with `Accept: text/event-stream`) and the playground
//! page ([`playground`]). What they share is here: the caps on streamed
//! runs open ([`Streams`]), output as text ([`Text`]), and the session
//! loop of both WebSocket protocols ([`session`]), each protocol saying
//! only how it reads frames and writes events ([`Dialect`]).

pub(crate) mod connect;
pub(crate) mod playground;
pub(crate) mod sse;
mod streams;
pub(crate) mod ws;

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use warp::ws::{Message, WebSocket};

use super::error::ApiError;
use super::gate::Caller;
use super::state::Api;
use crate::job::Job;
use crate::live::{Control, Event, Live};
use crate::runner::{Report, Runner};
pub(crate) use streams::{Open, Streams};

/// One WebSocket protocol's words.
pub(crate) trait Dialect: Send {
    /// The frames that say `event`.
    fn event(&mut self, event: Event) -> Vec<Message>;
    /// The frames that end a run that ran, and the close.
    fn answer(&mut self, report: &Report) -> (Vec<Message>, Message);
    /// The frames that end a run that could not run, and the close.
    fn refusal(&mut self, error: &ApiError) -> (Vec<Message>, Message);
    /// What a client's frame asks (`None`: nothing, as for a ping), or
    /// the close it gets.
    fn control(&mut self, frame: &Message) -> Result<Option<Control>, (Vec<Message>, Message)>;
}

/// A task that is aborted when its handle is dropped: a run whose client
/// went away is dropped with it, and its sandbox removed.
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many of a client's controls may wait in the session for the run's
/// queue (while the run waits for its slot or compiles); past them the
/// socket is refused.
const PENDING: usize = 1024;

/// How long, after its close, a socket is read for the client's own close
/// (so that frames still in flight do not reset the connection before the
/// client has read the close).
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `job`, streamed over a socket in `dialect`'s words: the run in a
/// task of its own (a slow reader never holds it up: its events wait,
/// bounded by the output caps), the client's frames read meanwhile (its
/// controls queued for the run, so that frames go on being read while the
/// run waits for a slot or compiles), and, once it ends, the rest of its
/// events, its answer and the close. A client that goes away ends the run.
/// The stdin a client sends, with the request's own, is held to
/// `requests.max_stdin_bytes`.
pub(crate) async fn session<R: Runner, D: Dialect>(
    api: Arc<Api<R>>,
    job: Job,
    open: Open,
    (mut tx, mut rx): (Tx, Rx),
    mut dialect: D,
    request_id: String,
) {
    let mut stdin = Stdin {
        sent: job.inputs.first().stdin.len(),
        max: api.bounds.max_stdin_bytes,
    };
    let (live, mut ends) = Live::new();
    let mut run = {
        let api = api.clone();
        Aborting(tokio::spawn(
            async move { api.runner.stream(job, live).await },
        ))
    };
    let mut pending = VecDeque::new();
    let ending = loop {
        tokio::select! {
            ended = &mut run.0 => break ended,
            Some(event) = ends.events.recv() => {
                if send_all(&mut tx, dialect.event(event)).await.is_err() {
                    return;
                }
            }
            permit = ends.control.reserve(), if !pending.is_empty() => match permit {
                Ok(permit) => permit.send(pending.pop_front().expect("not empty")),
                // The program's stdin is gone (the run is ending).
                Err(_) => pending.clear(),
            },
            frame = rx.next() => match read(frame, &mut dialect, &mut stdin, &mut pending) {
                Read::Go => {}
                Read::Gone => return,
                Read::TooLarge(e) => return too_large(&mut tx, &e).await.unwrap_or(()),
                Read::Refuse(frames, close) => return end(&mut tx, &mut rx, frames, close).await,
            },
        }
    };
    // Every event was sent before the run ended.
    while let Ok(event) = ends.events.try_recv() {
        if send_all(&mut tx, dialect.event(event)).await.is_err() {
            return;
        }
    }
    // The run is over: it no longer counts as open while the socket ends.
    drop(open);
    let (frames, close) = match ending {
        Ok(Ok(report)) => dialect.answer(&report),
        Ok(Err(e)) => dialect.refusal(&ApiError::from_run(e, &request_id)),
        Err(e) => {
            tracing::error!(%request_id, error = %e, "a streamed run's task failed");
            dialect.refusal(&ApiError::Internal { request_id })
        }
    };
    end(&mut tx, &mut rx, frames, close).await;
}

/// The stdin a client has sent (with the request's own), and its bound.
struct Stdin {
    sent: usize,
    max: usize,
}

/// What a client's frame leads to.
enum Read {
    Go,
    /// Closed or gone: the run ends with the socket.
    Gone,
    TooLarge(warp::Error),
    Refuse(Vec<Message>, Message),
}

/// Reads a client's frame in `dialect`'s words, queueing its control.
fn read<D: Dialect>(
    frame: Option<Result<Message, warp::Error>>,
    dialect: &mut D,
    stdin: &mut Stdin,
    pending: &mut VecDeque<Control>,
) -> Read {
    let frame = match frame {
        Some(Ok(frame)) if !frame.is_close() => frame,
        Some(Err(e)) => return Read::TooLarge(e),
        _ => return Read::Gone,
    };
    let control = match dialect.control(&frame) {
        Ok(None) => return Read::Go,
        Ok(Some(control)) => control,
        Err((frames, close)) => return Read::Refuse(frames, close),
    };
    let refuse = |dialect: &mut D, e: ApiError| {
        let (frames, close) = dialect.refusal(&e);
        Read::Refuse(frames, close)
    };
    if let Control::Stdin(bytes) = &control {
        stdin.sent += bytes.len();
        if stdin.sent > stdin.max {
            let message = format!(
                "is larger than the limit of {} bytes, sent in all with the request's",
                stdin.max
            );
            let field = "stdin".into();
            return refuse(dialect, ApiError::FieldTooLarge { field, message });
        }
    }
    if pending.len() >= PENDING {
        let message = format!("more than {PENDING} frames wait for the program to start");
        return refuse(dialect, ApiError::MalformedFrame(message));
    }
    pending.push_back(control);
    Read::Go
}

/// Sends `frames` and `close`, and reads the socket a moment for the
/// client's own close.
pub(crate) async fn end(tx: &mut Tx, rx: &mut Rx, frames: Vec<Message>, close: Message) {
    if finish(tx, frames, close).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        while let Some(Ok(frame)) = rx.next().await {
            if frame.is_close() {
                return;
            }
        }
    })
    .await;
}

pub(crate) type Tx = futures_util::stream::SplitSink<WebSocket, Message>;
pub(crate) type Rx = futures_util::stream::SplitStream<WebSocket>;

async fn send_all(tx: &mut Tx, frames: Vec<Message>) -> Result<(), warp::Error> {
    for frame in frames {
        tx.feed(frame).await?;
    }
    tx.flush().await
}

/// Sends `frames` and `close`, then lets the socket go.
pub(crate) async fn finish(
    tx: &mut Tx,
    frames: Vec<Message>,
    close: Message,
) -> Result<(), warp::Error> {
    send_all(tx, frames).await?;
    tx.send(close).await?;
    tx.close().await
}

/// Closes with 1009 (message too big) when `error` is the WebSocket
/// layer's refusal of a frame past `streams.max_frame_bytes`; a socket
/// that failed otherwise is gone.
pub(crate) async fn too_large(tx: &mut Tx, error: &warp::Error) -> Result<(), warp::Error> {
    if is_too_large(error) {
        let close = Message::close_with(1009u16, "a frame is larger than the limit");
        return finish(tx, vec![], close).await;
    }
    Ok(())
}

/// Whether `error` is the WebSocket layer's refusal of a frame past the cap.
pub(crate) fn is_too_large(error: &warp::Error) -> bool {
    error.to_string().contains("Space limit exceeded")
}

/// A stream of output bytes as text: whole characters only (a character
/// split between two writes waits for its rest), bytes that are not
/// UTF-8 as U+FFFD, as the answer holds them.
#[derive(Debug, Default)]
pub(crate) struct Text {
    held: Vec<u8>,
}

impl Text {
    /// The text of `bytes`, after what was held.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.held.extend_from_slice(bytes);
        let cut = self.held.len() - incomplete_end(&self.held);
        let rest = self.held.split_off(cut);
        let text = String::from_utf8_lossy(&self.held).into_owned();
        self.held = rest;
        text
    }

    /// What is still held, at the stream's end (a character never whole:
    /// U+FFFD, as the answer holds it).
    pub(crate) fn finish(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.held)).into_owned()
    }
}

/// How many bytes at the end of `bytes` begin a character not whole yet.
fn incomplete_end(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needs = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if back < needs { back } else { 0 };
    }
    0
}

/// Lets in a WebSocket whose page, if a browser's, is this service's own:
/// a browser sends the page's `Origin`, and a socket carries no CORS
/// check, so another site's page could otherwise run code here from a
/// visitor's browser (and from inside the visitor's network). A client
/// that is not a browser sends no `Origin`.
pub(crate) fn same_origin(headers: &warp::http::HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get("origin") else {
        return Ok(());
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "a WebSocket from a page of another origin ({}) is refused: open it from this service's own pages, or from a client that is not a browser",
            crate::text::clip(origin.to_str().unwrap_or("?"))
        ))),
    }
}

/// The client a streamed run is counted against, and its ticket: refused
/// when the caps are reached.
pub(crate) fn open<R: Runner>(api: &Api<R>, caller: &Caller) -> Result<Open, ApiError> {
    api.streams.open(&caller.client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browsers_socket_is_let_in_from_this_services_own_pages_only() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = warp::http::HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, warp::http::HeaderValue::from_static(v));
            }
            map
        };
        assert!(same_origin(&headers(&[("host", "localhost:8001")])).is_ok());
        let own = [
            ("host", "localhost:8001"),
            ("origin", "http://localhost:8001"),
        ];
        assert!(same_origin(&headers(&own)).is_ok());
        let other = [
            ("host", "localhost:8001"),
            ("origin", "https://evil.example"),
        ];
        let refused = same_origin(&headers(&other)).unwrap_err();
        assert_eq!(refused.code(), "forbidden");
        assert!(refused.to_string().contains("evil.example"), "{refused}");
        let port = [
            ("host", "localhost:8001"),
            ("origin", "http://localhost:9000"),
        ];
        assert!(same_origin(&headers(&port)).is_err());
    }

    #[test]
    fn text_keeps_a_split_character_whole_and_marks_what_is_not_utf8() {
        let mut text = Text::default();
        let snow = "☃".as_bytes();
        assert_eq!(text.push(b"a"), "a");
        assert_eq!(text.push(&snow[..1]), "");
        assert_eq!(text.push(&snow[1..2]), "");
        assert_eq!(text.push(&[snow[2], b'b']), "☃b");
        assert_eq!(text.push(b"\xff!"), "\u{fffd}!");
        assert_eq!(text.push("é".as_bytes()), "é");
        // A lead byte followed by a byte that cannot continue it.
        assert_eq!(text.push(b"\xe2"), "");
        assert_eq!(text.push(b"x"), "\u{fffd}x");
        assert_eq!(text.push(b"\xe2\x98"), "");
        assert_eq!(text.finish(), "\u{fffd}");
        assert_eq!(text.finish(), "");
    }
}
