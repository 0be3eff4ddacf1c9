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

/// Runs `job` for `caller`, streamed over `socket` in `dialect`'s words:
/// the run in a task of its own (a slow reader never holds it up: its
/// events wait, bounded by the output caps), the client's frames read
/// meanwhile, and, once it ends, the rest of its events, its answer and
/// the close. A client that goes away ends the run. The stdin a client
/// sends is held to `max_stdin` bytes in all.
pub(crate) async fn session<R: Runner, D: Dialect>(
    api: Arc<Api<R>>,
    job: Job,
    _open: Open,
    (mut tx, mut rx): (Tx, Rx),
    mut dialect: D,
    request_id: String,
) {
    let (live, mut ends) = Live::new();
    let run = {
        let api = api.clone();
        Aborting(tokio::spawn(
            async move { api.runner.stream(job, live).await },
        ))
    };
    let mut run = run;
    let max_stdin = api.bounds.max_stdin_bytes;
    let mut sent_stdin = 0usize;
    let ending = loop {
        tokio::select! {
            ended = &mut run.0 => break ended,
            Some(event) = ends.events.recv() => {
                if send_all(&mut tx, dialect.event(event)).await.is_err() {
                    return;
                }
            }
            frame = rx.next() => {
                let frame = match frame {
                    Some(Ok(frame)) if !frame.is_close() => frame,
                    Some(Err(e)) => {
                        let _ = too_large(&mut tx, &e).await;
                        return;
                    }
                    // Closed or gone: the run ends with the socket.
                    _ => return,
                };
                match dialect.control(&frame) {
                    Ok(None) => {}
                    Ok(Some(control)) => {
                        if let Control::Stdin(bytes) = &control {
                            sent_stdin += bytes.len();
                            if sent_stdin > max_stdin {
                                let refused = ApiError::FieldTooLarge {
                                    field: "stdin".into(),
                                    message: format!("is larger than the limit of {max_stdin} bytes, sent in all"),
                                };
                                let (frames, close) = dialect.refusal(&refused);
                                let _ = finish(&mut tx, frames, close).await;
                                return;
                            }
                        }
                        // The run may be over already: its answer comes.
                        let _ = ends.control.send(control).await;
                    }
                    Err((frames, close)) => {
                        let _ = finish(&mut tx, frames, close).await;
                        return;
                    }
                }
            }
        }
    };
    // Every event was sent before the run ended.
    while let Ok(event) = ends.events.try_recv() {
        if send_all(&mut tx, dialect.event(event)).await.is_err() {
            return;
        }
    }
    let (frames, close) = match ending {
        Ok(Ok(report)) => dialect.answer(&report),
        Ok(Err(e)) => dialect.refusal(&ApiError::from_run(e, &request_id)),
        Err(e) => {
            tracing::error!(%request_id, error = %e, "a streamed run's task failed");
            dialect.refusal(&ApiError::Internal { request_id })
        }
    };
    let _ = finish(&mut tx, frames, close).await;
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
    if error.to_string().contains("Space limit exceeded") {
        let close = Message::close_with(1009u16, "a frame is larger than the limit");
        return finish(tx, vec![], close).await;
    }
    Ok(())
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

/// The client a streamed run is counted against, and its ticket: refused
/// when the caps are reached.
pub(crate) fn open<R: Runner>(api: &Api<R>, caller: &Caller) -> Result<Open, ApiError> {
    api.streams.open(&caller.client)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
