//! `GET /run-code/ws`: the service's own WebSocket protocol
//! (docs/streaming.md). The first frame is `POST /run-code`'s body (with,
//! for browsers, an `api_key`); then stdin, its end and signals go in,
//! stage events and output come out, and last `POST /run-code`'s answer.
//! A refusal is the error body `POST /run-code` would answer, then a close
//! of 4000 plus its HTTP status, with its code as the reason.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::http::HeaderMap;
use warp::http::header::HeaderValue;
use warp::ws::{Message, WebSocket};

use super::{Dialect, Text, end, open, session};
use crate::api::answer::new_request_id;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::gate::{PeerAddr, Route};
use crate::api::native::request::RunRequest;
use crate::api::native::response::{RunResponse, StageReport};
use crate::api::state::Api;
use crate::job::{Job, Stage};
use crate::live::{Control, Event};
use crate::outcome::{Signal, StreamKind};
use crate::runner::{Report, Runner};

/// The signals a client may send.
const SIGNALS: [(&str, i32); 3] = [("SIGINT", 2), ("SIGTERM", 15), ("SIGKILL", 9)];

/// `GET /run-code/ws`: a streamed run over a WebSocket (docs/streaming.md).
/// The first frame is `POST /run-code`'s body (with `api_key` for
/// browsers); then `{"type":"stdin","data"|"base64"}`, binary stdin,
/// `{"type":"close_stdin"}` and `{"type":"signal","signal"}` go in; stage
/// events, `stdout` and `stderr` frames come out, and last `POST
/// /run-code`'s answer, then close 1000. A refusal is the error body, then
/// close 4000 + the HTTP status with the error's code as the reason.
#[utoipa::path(get, path = "/run-code/ws", tag = "native", operation_id = "run_code_ws",
    responses(
        (status = 101, description = "The WebSocket of one streamed run"),
        (status = 426, description = "Not a WebSocket upgrade", body = ErrorBody),
    ))]
pub(crate) fn upgrade_required() -> warp::reply::Response {
    use warp::Reply;
    ApiError::UpgradeRequired.into_response()
}

/// Serves one socket: its first frame read within the bound, checked as
/// `POST /run-code` checks its body, let in by the front door, then run.
pub(crate) async fn serve<R: Runner>(
    api: Arc<Api<R>>,
    headers: HeaderMap,
    peer: Option<PeerAddr>,
    socket: WebSocket,
) {
    let request_id = new_request_id();
    let (mut tx, mut rx) = socket.split();
    let mut dialect = Ours::default();
    let settings = api.streams.settings();
    let first = tokio::time::timeout(settings.first_frame_timeout(), rx.next()).await;
    let admitted = match first {
        Err(_) => Err(ApiError::FirstFrameTimeout {
            ms: settings.first_frame_timeout_ms,
        }),
        Ok(Some(Ok(frame))) if frame.is_text() => admit(&api, headers, peer, frame.as_bytes()),
        Ok(Some(Ok(frame))) if frame.is_close() => return,
        Ok(Some(Err(e))) => {
            let _ = super::too_large(&mut tx, &e).await;
            return;
        }
        Ok(Some(Ok(_))) => Err(ApiError::MalformedFrame(
            "the first frame must be a text frame holding a run request".into(),
        )),
        Ok(_) => return,
    };
    match admitted {
        Ok((job, ticket)) => {
            tracing::info!(%request_id, language = %job.language.label(), "streamed run begins");
            session(api, job, ticket, (tx, rx), dialect, request_id).await;
        }
        Err(e) => {
            tracing::info!(%request_id, code = e.code(), error = %e, "streamed run refused");
            let (frames, close) = dialect.refusal(&e);
            end(&mut tx, &mut rx, frames, close).await;
        }
    }
}

/// The first frame's run request, let in: a job and its ticket.
fn admit<R: Runner>(
    api: &Api<R>,
    mut headers: HeaderMap,
    peer: Option<PeerAddr>,
    frame: &[u8],
) -> Result<(Job, super::Open), ApiError> {
    let mut request: Value =
        serde_json::from_slice(frame).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    // A browser's key, as the header would carry it.
    if let Some(key) = request.as_object_mut().and_then(|o| o.remove("api_key")) {
        let key = key.as_str().and_then(|k| HeaderValue::from_str(k).ok());
        let key = key.ok_or_else(|| ApiError::InvalidField {
            field: "api_key".into(),
            message: "must be a key, as a string".into(),
        })?;
        headers.insert("x-api-key", key);
    }
    let caller = api.gate.enter(Route::Run, true, &headers, peer)?;
    let body = serde_json::to_vec(&request).expect("a JSON value serialises");
    let registry = api.runner.registry();
    let (job, checks) = RunRequest::parse(&body)?.into_judged_job(
        &registry,
        &api.bounds,
        &api.catalogue,
        caller.client.clone(),
    )?;
    if checks.is_some() {
        return Err(ApiError::InvalidField {
            field: "tests".into(),
            message: "cannot be streamed: a batch runs with POST /run-code".into(),
        });
    }
    let ticket = open(api, &caller)?;
    Ok((job, ticket))
}

/// The service's own words, with each stream's text decoder.
#[derive(Debug, Default)]
pub(crate) struct Ours {
    texts: [[Text; 2]; 2],
}

/// A client's frame after the first.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Stdin {
        data: Option<String>,
        base64: Option<String>,
    },
    CloseStdin,
    Signal {
        signal: String,
    },
}

fn text(value: Value) -> Message {
    Message::text(value.to_string())
}

impl Ours {
    /// The frames that say `event` (none for output whose character is
    /// not whole yet: it waits for its rest). A compile's end says first
    /// what its output still held.
    pub(crate) fn frames(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::Started(stage) => {
                vec![json!({"type": "stage", "stage": stage.as_str(), "event": "started"})]
            }
            // The run stage's `started` frame already said it.
            Event::Running => vec![],
            Event::Compiled(result) => {
                let mut frames = self.rest(Stage::Compile);
                frames.push(json!({
                    "type": "stage",
                    "stage": "compile",
                    "event": "ended",
                    "result": StageReport::from(&result),
                }));
                frames
            }
            Event::Output {
                stage,
                stream,
                bytes,
            } => {
                let data = self.text(stage, stream).push(&bytes);
                output(stage, stream, data).into_iter().collect()
            }
        }
    }

    /// What `stage`'s output still holds, at its end.
    pub(crate) fn rest(&mut self, stage: Stage) -> Vec<Value> {
        [StreamKind::Stdout, StreamKind::Stderr]
            .into_iter()
            .filter_map(|stream| {
                let data = self.text(stage, stream).finish();
                output(stage, stream, data)
            })
            .collect()
    }

    fn text(&mut self, stage: Stage, stream: StreamKind) -> &mut Text {
        let at = usize::from(stage == Stage::Run);
        let s = usize::from(stream == StreamKind::Stderr);
        &mut self.texts[at][s]
    }
}

/// An output frame, unless `data` is empty.
fn output(stage: Stage, stream: StreamKind, data: String) -> Option<Value> {
    let kind = match stream {
        StreamKind::Stdout => "stdout",
        StreamKind::Stderr => "stderr",
    };
    (!data.is_empty()).then(|| json!({"type": kind, "stage": stage.as_str(), "data": data}))
}

impl Dialect for Ours {
    fn event(&mut self, event: Event) -> Vec<Message> {
        self.frames(event).into_iter().map(text).collect()
    }

    fn answer(&mut self, report: &Report) -> (Vec<Message>, Message) {
        let answer = serde_json::to_string(&RunResponse::new(report)).expect("serialises");
        let mut frames: Vec<Message> = self.rest(Stage::Run).into_iter().map(text).collect();
        frames.push(Message::text(answer));
        (frames, Message::close_with(1000u16, "done"))
    }

    fn refusal(&mut self, error: &ApiError) -> (Vec<Message>, Message) {
        let body = serde_json::to_string(&ErrorBody::from(error)).expect("serialises");
        let code = 4000 + error.status().as_u16();
        (
            vec![Message::text(body)],
            Message::close_with(code, error.code()),
        )
    }

    fn control(&mut self, frame: &Message) -> Result<Option<Control>, (Vec<Message>, Message)> {
        if frame.is_binary() {
            return Ok(Some(Control::Stdin(Bytes::copy_from_slice(
                frame.as_bytes(),
            ))));
        }
        if !frame.is_text() {
            return Ok(None);
        }
        let refuse = |this: &mut Self, message: String| {
            Err(this.refusal(&ApiError::MalformedFrame(message)))
        };
        let parsed: ClientFrame = match serde_json::from_slice(frame.as_bytes()) {
            Ok(parsed) => parsed,
            Err(e) => {
                return refuse(
                    self,
                    format!(
                        "not a frame of this protocol ({e}): send stdin, close_stdin or signal"
                    ),
                );
            }
        };
        match parsed {
            ClientFrame::Stdin {
                data: Some(data),
                base64: None,
            } => Ok(Some(Control::Stdin(Bytes::from(data)))),
            ClientFrame::Stdin {
                data: None,
                base64: Some(encoded),
            } => match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(bytes) => Ok(Some(Control::Stdin(Bytes::from(bytes)))),
                Err(e) => refuse(self, format!("a stdin frame's `base64` is not base64: {e}")),
            },
            ClientFrame::Stdin { .. } => {
                refuse(self, "a stdin frame holds one of `data` or `base64`".into())
            }
            ClientFrame::CloseStdin => Ok(Some(Control::CloseStdin)),
            ClientFrame::Signal { signal } => {
                match SIGNALS.iter().find(|(name, _)| *name == signal) {
                    Some((_, number)) => Ok(Some(Control::Signal(Signal(*number)))),
                    None => refuse(
                        self,
                        format!(
                            "`{}` is not a signal a client may send: SIGINT, SIGTERM or SIGKILL",
                            crate::text::clip(&signal)
                        ),
                    ),
                }
            }
        }
    }
}
