//! `POST /run-code` with `Accept: text/event-stream`: the run's events as
//! Server-Sent Events (`stage`, `stdout`, `stderr`, each with the
//! WebSocket frame's JSON as its data), then `result` with the answer, or
//! `error` with the error body. No stdin: the request's own is all.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use warp::Reply;
use warp::reply::Response;
use warp::sse::Event as Sse;

use super::ws::Ours;
use super::{Aborting, Open};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::native::response::RunResponse;
use crate::api::state::Api;
use crate::job::Job;
use crate::live::{Ends, Live};
use crate::runner::{Report, RunError, Runner};

/// Whether an `Accept` header asks for Server-Sent Events.
pub(crate) fn wanted(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept
            .split(',')
            .any(|kind| kind.split(';').next().map(str::trim) == Some("text/event-stream"))
    })
}

/// The answer that streams `job`'s run: it runs in a task of its own,
/// dropped (and its sandbox removed) when the client goes away.
pub(crate) fn reply<R: Runner>(
    api: Arc<Api<R>>,
    job: Job,
    ticket: Open,
    request_id: String,
) -> Response {
    let (live, ends) = Live::new();
    // No stdin but the request's: the program reads its end at once.
    let Ends { events, control } = ends;
    drop(control);
    let run = Aborting(tokio::spawn(
        async move { api.runner.stream(job, live).await },
    ));
    let events = Events {
        run,
        events,
        ours: Ours::default(),
        pending: VecDeque::new(),
        done: false,
        request_id,
        _ticket: ticket,
    };
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let next = events.next().await?;
        Some((Ok::<_, Infallible>(next), events))
    });
    warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
}

/// A streamed run's events on their way to the client.
struct Events {
    run: Aborting<Result<Report, RunError>>,
    events: tokio::sync::mpsc::UnboundedReceiver<crate::live::Event>,
    ours: Ours,
    pending: VecDeque<Sse>,
    done: bool,
    request_id: String,
    _ticket: Open,
}

impl Events {
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                ended = &mut self.run.0 => {
                    while let Ok(event) = self.events.try_recv() {
                        self.say(event);
                    }
                    self.done = true;
                    let rest = self.ours.rest(crate::job::Stage::Run);
                    self.push(rest);
                    let last = self.last(ended);
                    self.pending.push_back(last);
                }
                Some(event) = self.events.recv() => self.say(event),
            }
        }
    }

    fn say(&mut self, event: crate::live::Event) {
        let frames = self.ours.frames(event);
        self.push(frames);
    }

    fn push(&mut self, frames: Vec<serde_json::Value>) {
        for frame in frames {
            let name = frame["type"].as_str().unwrap_or("stage").to_string();
            self.pending
                .push_back(Sse::default().event(name).data(frame.to_string()));
        }
    }

    fn last(&self, ended: Result<Result<Report, RunError>, tokio::task::JoinError>) -> Sse {
        let error = |e: ApiError| {
            let body = serde_json::to_string(&ErrorBody::from(&e)).expect("serialises");
            Sse::default().event("error").data(body)
        };
        match ended {
            Ok(Ok(report)) => {
                let answer = serde_json::to_string(&RunResponse::new(&report)).expect("serialises");
                Sse::default().event("result").data(answer)
            }
            Ok(Err(e)) => error(ApiError::from_run(e, &self.request_id)),
            Err(e) => {
                tracing::error!(request_id = %self.request_id, error = %e, "a streamed run's task failed");
                error(ApiError::Internal {
                    request_id: self.request_id.clone(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accept_that_names_event_streams_asks_for_them() {
        assert!(wanted(Some("text/event-stream")));
        assert!(wanted(Some("application/json, text/event-stream;q=0.9")));
        assert!(!wanted(Some("application/json")));
        assert!(!wanted(Some("*/*")));
        assert!(!wanted(None));
    }
}
