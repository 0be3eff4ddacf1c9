//! `GET /api/v2/connect`: Piston's WebSocket protocol, as Piston's own
//! `api/src/api/v2.js` speaks it: `init` first (within 1 s: 4001
//! "Initialization Timeout"), then `data` (stdin) and `signal`; the server
//! answers `runtime`, then per stage `stage`, `data` and `exit`, and closes
//! with 4999 "Job Completed"; an `error` message comes before a 4002
//! "Notified Error" close. Where Piston's own server falls short, this one
//! does what its protocol says: a signal reaches the program (Piston's
//! never does), the `init`'s `stdin` is fed first (Piston drops it), and a
//! client that goes away ends its run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use warp::http::HeaderMap;
use warp::ws::{Message, WebSocket};

use super::{Dialect, Rx, Text, end, is_too_large, open, session};
use crate::api::answer::new_request_id;
use crate::api::error::ApiError;
use crate::api::gate::{PeerAddr, Route};
use crate::api::piston::{job_of, stage};
use crate::api::state::Api;
use crate::job::{Job, Stage};
use crate::live::{Control, Event};
use crate::outcome::{Outcome, Signal, StreamKind};
use crate::runner::{Report, Runner};

/// Piston's wait for `init` (`setTimeout(..., 1000)`).
const INIT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Serves one socket in Piston's words.
pub(crate) async fn serve<R: Runner>(
    api: Arc<Api<R>>,
    headers: HeaderMap,
    peer: Option<PeerAddr>,
    socket: WebSocket,
) {
    let request_id = new_request_id();
    let (mut tx, mut rx) = socket.split();
    let dialect = Piston::default();
    let init = match tokio::time::timeout(INIT_TIMEOUT, wait_for_init(&mut rx)).await {
        Err(_) => {
            end(
                &mut tx,
                &mut rx,
                vec![],
                close(4001, "Initialization Timeout"),
            )
            .await;
            return;
        }
        Ok(Err(Some(closing))) => {
            end(&mut tx, &mut rx, closing.0, closing.1).await;
            return;
        }
        Ok(Err(None)) => return,
        Ok(Ok(init)) => init,
    };
    match admit(&api, &headers, peer, &init) {
        Ok((job, ticket)) => {
            let runtime = json!({
                "type": "runtime",
                "language": job.language.name,
                "version": job.language.semver.to_string(),
            });
            if tx.send(Message::text(runtime.to_string())).await.is_err() {
                return;
            }
            tracing::info!(%request_id, dialect = "piston", language = %job.language.label(), "streamed run begins");
            session(api, job, ticket, (tx, rx), dialect, request_id).await;
        }
        Err(message) => {
            tracing::info!(%request_id, dialect = "piston", error = %message, "streamed run refused");
            let (frames, close) = dialect.error(&message);
            end(&mut tx, &mut rx, frames, close).await;
        }
    }
}

/// Reads frames until `init`: ignoring unknown types, as Piston does;
/// `Err(Some(..))` the frames and close of a frame Piston refuses,
/// `Err(None)` a socket closed or gone.
async fn wait_for_init(rx: &mut Rx) -> Result<Value, Option<(Vec<Message>, Message)>> {
    loop {
        let frame = match rx.next().await {
            Some(Ok(frame)) if !frame.is_close() => frame,
            Some(Err(e)) if is_too_large(&e) => {
                let close = Message::close_with(1009u16, "a frame is larger than the limit");
                return Err(Some((vec![], close)));
            }
            _ => return Err(None),
        };
        if !frame.is_text() {
            continue;
        }
        let message: Value = match serde_json::from_slice(frame.as_bytes()) {
            Ok(message) => message,
            Err(e) => return Err(Some(Piston::default().error(&e.to_string()))),
        };
        match message["type"].as_str() {
            Some("init") => return Ok(message),
            Some("data" | "signal") => {
                return Err(Some((vec![], close(4003, "Not yet initialized"))));
            }
            _ => {}
        }
    }
}

/// The `init` let in: a job and its ticket, or Piston's sentence.
fn admit<R: Runner>(
    api: &Api<R>,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    init: &Value,
) -> Result<(Job, super::Open), String> {
    let caller = (api.gate)
        .enter(Route::Piston, true, headers, peer)
        .map_err(|refused| refused.to_string())?;
    let mut job = job_of(init, &api.runner.registry(), &api.bounds, &caller)?;
    // `execute` ends its stdin with a newline; here the stdin is live, and
    // the `init`'s is fed as it is (Piston itself drops it).
    let (mut input, rest) = job.inputs.into_parts();
    input.stdin = init["stdin"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    job.inputs = crate::nonempty::NonEmpty::one(input);
    debug_assert!(rest.is_empty(), "a Piston request runs once");
    let ticket = open(api, &caller).map_err(|e| e.to_string())?;
    Ok((job, ticket))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::close_with(code, reason)
}

/// The number of a signal name of Piston's list (`globals.SIGNALS`: 1–31,
/// `SIGRTMIN`…`SIGRTMIN+15`, `SIGRTMAX-14`…`SIGRTMAX`).
fn signal_number(name: &str) -> Option<i32> {
    if let Some(n) = (1..=31).find(|&n| Signal(n).name() == Some(name)) {
        return Some(n);
    }
    let offset = |rest: &str| -> Option<i32> {
        match rest {
            "" => Some(0),
            _ => rest.parse().ok(),
        }
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let n = offset(rest.strip_prefix('+').unwrap_or(rest))?;
        return (rest.is_empty() || rest.starts_with('+'))
            .then_some(34 + n)
            .filter(|_| (0..=15).contains(&n));
    }
    let rest = name.strip_prefix("SIGRTMAX")?;
    let n = offset(rest.strip_prefix('-').unwrap_or(rest))?;
    (rest.is_empty() || rest.starts_with('-'))
        .then_some(64 - n)
        .filter(|_| (0..=14).contains(&n))
}

/// Piston's words, with each stream's text decoder.
#[derive(Debug, Default)]
struct Piston {
    texts: [Text; 2],
}

impl Piston {
    /// What the stage's output still holds, at its end (the next stage's
    /// begins whole).
    fn rest(&mut self) -> Vec<Message> {
        ["stdout", "stderr"]
            .into_iter()
            .zip(&mut self.texts)
            .map(|(name, text)| (name, text.finish()))
            .filter(|(_, data)| !data.is_empty())
            .map(|(name, data)| {
                let frame = json!({"type": "data", "stream": name, "data": data});
                Message::text(frame.to_string())
            })
            .collect()
    }

    fn error(&self, message: &str) -> (Vec<Message>, Message) {
        let error = json!({"type": "error", "message": message});
        (
            vec![Message::text(error.to_string())],
            close(4002, "Notified Error"),
        )
    }
}

fn exit(stage_name: &str, result: &crate::outcome::StageResult) -> Message {
    let answer = stage(result);
    let frame =
        json!({"type": "exit", "stage": stage_name, "code": answer.code, "signal": answer.signal});
    Message::text(frame.to_string())
}

impl Dialect for Piston {
    fn event(&mut self, event: Event) -> Vec<Message> {
        match event {
            Event::Started(stage) => {
                let frame = json!({"type": "stage", "stage": stage.as_str()});
                vec![Message::text(frame.to_string())]
            }
            Event::Output { stream, bytes, .. } => {
                let (name, at) = match stream {
                    StreamKind::Stdout => ("stdout", 0),
                    StreamKind::Stderr => ("stderr", 1),
                };
                let data = self.texts[at].push(&bytes);
                if data.is_empty() {
                    return vec![];
                }
                let frame = json!({"type": "data", "stream": name, "data": data});
                vec![Message::text(frame.to_string())]
            }
            Event::Compiled(result) => {
                let mut frames = self.rest();
                frames.push(exit(Stage::Compile.as_str(), &result));
                frames
            }
            // Piston's protocol has no frame for it.
            Event::Running => vec![],
        }
    }

    fn answer(&mut self, report: &Report) -> (Vec<Message>, Message) {
        let frames = match &report.outcome {
            Outcome::Ran { runs, .. } => {
                let mut frames = self.rest();
                frames.push(exit(Stage::Run.as_str(), runs.first()));
                frames
            }
            // Its `exit` was the compile's.
            Outcome::CompileFailed { .. } => vec![],
        };
        (frames, close(4999, "Job Completed"))
    }

    fn refusal(&mut self, error: &ApiError) -> (Vec<Message>, Message) {
        self.error(&error.to_string())
    }

    fn control(&mut self, frame: &Message) -> Result<Option<Control>, (Vec<Message>, Message)> {
        if !frame.is_text() {
            return Ok(None);
        }
        let message: Value = match serde_json::from_slice(frame.as_bytes()) {
            Ok(message) => message,
            Err(e) => return Err(self.error(&e.to_string())),
        };
        match message["type"].as_str() {
            Some("init") => Err((vec![], close(4000, "Already Initialized"))),
            Some("data") if message["stream"] == "stdin" => {
                // Piston writes what it is given (`proc.stdin.write(data)`).
                let data = match &message["data"] {
                    Value::String(data) => data.clone(),
                    other => other.to_string(),
                };
                Ok(Some(Control::Stdin(Bytes::from(data))))
            }
            Some("data") => Err((vec![], close(4004, "Can only write to stdin"))),
            Some("signal") => match message["signal"].as_str().and_then(signal_number) {
                Some(number) => Ok(Some(Control::Signal(Signal(number)))),
                None => Err((vec![], close(4005, "Invalid signal"))),
            },
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pistons_signal_names_are_its_list_of_62() {
        assert_eq!(signal_number("SIGINT"), Some(2));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("SIGSYS"), Some(31));
        assert_eq!(signal_number("SIGRTMIN"), Some(34));
        assert_eq!(signal_number("SIGRTMIN+15"), Some(49));
        assert_eq!(signal_number("SIGRTMAX-14"), Some(50));
        assert_eq!(signal_number("SIGRTMAX"), Some(64));
        for refused in [
            "SIGRTMIN+16",
            "SIGRTMAX-15",
            "sigint",
            "SIGIOT",
            "SIGRTMIN-1",
            "",
            "SIGRTMAX+1",
        ] {
            assert_eq!(signal_number(refused), None, "{refused}");
        }
        let names = (1..=31)
            .filter_map(|n| Signal(n).name())
            .chain(["SIGRTMIN", "SIGRTMAX"])
            .count()
            + 15
            + 14;
        assert_eq!(names, 62);
    }
}
