//! A streamed run's two channels, beside its job: what the client sends
//! while the program runs ([`Control`]: stdin, its end, signals), and what
//! the run says as it goes ([`Event`]: stages starting and ending, output
//! as it is written). The sandbox feeds the one and fills the other; each
//! API dialect renders them in its own words.
//!
//! The event channel is unbounded on purpose: a sandbox's reading must
//! never wait on a slow client. What it can hold is bounded all the same,
//! by the output caps (a stage that passes its cap is ended), so a slow
//! reader costs at most the caps in memory.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::job::Stage;
use crate::outcome::{Signal, StageResult, StreamKind};

/// How many control messages may wait for the sandbox's stdin writer
/// before the client's reader waits (back-pressure, not a loss).
const CONTROL_QUEUE: usize = 64;

/// What a client sends to a streamed run's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// Bytes for its stdin.
    Stdin(Bytes),
    /// The end of its stdin.
    CloseStdin,
    /// A signal to it.
    Signal(Signal),
}

/// What a streamed run says as it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A stage began (for the run stage: its program is being started).
    Started(Stage),
    /// Output a stage's program wrote, kept under the stage's cap.
    Output {
        stage: Stage,
        stream: StreamKind,
        bytes: Bytes,
    },
    /// The compile stage ended (the run stage's end is the answer).
    Compiled(StageResult),
    /// The run stage's program started (the supervisor said so): its
    /// clock runs from now.
    Running,
}

/// A streamed run, as the executor holds it: where its events go, and the
/// client's controls, taken by the run stage's sandbox.
#[derive(Debug)]
pub(crate) struct Live {
    events: mpsc::UnboundedSender<Event>,
    input: Mutex<Option<mpsc::Receiver<Control>>>,
}

/// The client's ends of a [`Live`] run.
#[derive(Debug)]
pub(crate) struct Ends {
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
    pub(crate) control: mpsc::Sender<Control>,
}

impl Live {
    pub(crate) fn new() -> (Live, Ends) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (control, input) = mpsc::channel(CONTROL_QUEUE);
        let live = Live {
            events,
            input: Mutex::new(Some(input)),
        };
        let ends = Ends {
            events: events_rx,
            control,
        };
        (live, ends)
    }

    /// Says that `stage` begins.
    pub(crate) fn started(&self, stage: Stage) {
        let _ = self.events.send(Event::Started(stage));
    }

    /// Says how the compile stage ended.
    pub(crate) fn compiled(&self, result: &StageResult) {
        let _ = self.events.send(Event::Compiled(result.clone()));
    }

    /// What a sandbox of `stage` needs: where its output goes and, for the
    /// run stage, the client's controls (once: a run has one program).
    pub(crate) fn stage(&self, stage: Stage) -> Streamed {
        let input = match stage {
            Stage::Run => self.input.lock().expect("never poisoned").take(),
            Stage::Compile => None,
        };
        let input = input.map(|input| Arc::new(tokio::sync::Mutex::new(input)));
        Streamed {
            input,
            sink: Sink {
                stage,
                events: self.events.clone(),
            },
        }
    }
}

/// One stage's share of a streamed run. A clone shares the controls: a
/// sandbox that dies before its program starts leaves them to the one
/// that takes its place (its feed, aborted, lets go of them).
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    /// The client's controls, for the run stage.
    pub(crate) input: Option<Controls>,
    pub(crate) sink: Sink,
}

/// The client's controls, held by one sandbox's feed at a time.
pub(crate) type Controls = Arc<tokio::sync::Mutex<mpsc::Receiver<Control>>>;

/// Where a stage's output goes as it is read.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    stage: Stage,
    events: mpsc::UnboundedSender<Event>,
}

impl Sink {
    /// Says that the stage's program started.
    pub(crate) fn running(&self) {
        if self.stage == Stage::Run {
            let _ = self.events.send(Event::Running);
        }
    }

    /// Passes on `bytes` of `stream` (nothing when empty).
    pub(crate) fn output(&self, stream: StreamKind, bytes: &[u8]) {
        if !bytes.is_empty() {
            let _ = self.events.send(Event::Output {
                stage: self.stage,
                stream,
                bytes: Bytes::copy_from_slice(bytes),
            });
        }
    }
}

/// Relays two streamed runs into each other, as a pipe would: what the
/// one's run stage writes on stdout goes to the other's stdin, both ways
/// at once, and the end of one (its events' end: its run ended and let
/// go of its [`Live`]) closes the other's stdin. Ends when both have.
/// `b_running` is told when `b`'s program has started (dropped untold
/// when it ends before). Each way is bounded by the writer's output cap,
/// as any streamed run's output is; a reader that does not read holds its
/// writer's output in the writer's events, never the other way.
pub(crate) async fn pipe(a: Ends, b: Ends, b_running: oneshot::Sender<()>) {
    tokio::join!(
        forward(a.events, b.control, None),
        forward(b.events, a.control, Some(b_running))
    );
}

/// One way of [`pipe`].
async fn forward(
    mut from: mpsc::UnboundedReceiver<Event>,
    to: mpsc::Sender<Control>,
    mut running: Option<oneshot::Sender<()>>,
) {
    let mut open = true;
    while let Some(event) = from.recv().await {
        match event {
            Event::Output {
                stage: Stage::Run,
                stream: StreamKind::Stdout,
                bytes,
            } => {
                // A reader that has ended takes no more; the writer's
                // output is still read to its end.
                open = open && to.send(Control::Stdin(bytes)).await.is_ok();
            }
            Event::Running => {
                if let Some(running) = running.take() {
                    let _ = running.send(());
                }
            }
            _ => {}
        }
    }
    if open {
        let _ = to.send(Control::CloseStdin).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipe_relays_stdout_both_ways_and_an_end_closes_the_other_stdin() {
        let (a, a_ends) = Live::new();
        let (b, b_ends) = Live::new();
        let (running, b_started) = oneshot::channel();
        let relay = tokio::spawn(pipe(a_ends, b_ends, running));
        let (a_run, b_run) = (a.stage(Stage::Run), b.stage(Stage::Run));
        a_run.sink.running();
        b_run.sink.running();
        b_started.await.expect("b's start is told");
        let (a_in, b_in) = (a_run.input.clone().unwrap(), b_run.input.clone().unwrap());
        let stdin = |text: &'static str| Some(Control::Stdin(Bytes::from_static(text.as_bytes())));
        a_run.sink.output(StreamKind::Stdout, b"guess 5\n");
        a_run.sink.output(StreamKind::Stderr, b"not relayed\n");
        a_run.sink.output(StreamKind::Stdout, b"guess 7\n");
        assert_eq!(b_in.lock().await.recv().await, stdin("guess 5\n"));
        assert_eq!(b_in.lock().await.recv().await, stdin("guess 7\n"));
        b_run.sink.output(StreamKind::Stdout, b"lower\n");
        assert_eq!(a_in.lock().await.recv().await, stdin("lower\n"));
        // b ends (and lets go of its stdin): a's stdin is closed; what a
        // still writes is read, and goes nowhere.
        drop((b, b_run, b_in));
        assert_eq!(a_in.lock().await.recv().await, Some(Control::CloseStdin));
        a_run.sink.output(StreamKind::Stdout, b"late\n");
        tokio::task::yield_now().await;
        assert!(!relay.is_finished(), "a has not ended");
        drop((a, a_run));
        tokio::time::timeout(std::time::Duration::from_secs(1), relay)
            .await
            .expect("the pipe ends with both")
            .unwrap();
    }

    #[test]
    fn the_run_stage_takes_the_controls_once_and_every_stage_gets_a_sink() {
        let (live, mut ends) = Live::new();
        assert!(live.stage(Stage::Compile).input.is_none());
        live.started(Stage::Run);
        let run = live.stage(Stage::Run);
        assert!(run.input.is_some());
        assert!(live.stage(Stage::Run).input.is_none(), "taken once");
        run.sink.output(StreamKind::Stdout, b"");
        run.sink.output(StreamKind::Stderr, b"oops");
        assert_eq!(ends.events.try_recv().unwrap(), Event::Started(Stage::Run));
        assert_eq!(
            ends.events.try_recv().unwrap(),
            Event::Output {
                stage: Stage::Run,
                stream: StreamKind::Stderr,
                bytes: Bytes::from_static(b"oops"),
            }
        );
        assert!(ends.events.try_recv().is_err(), "nothing for empty output");
    }
}
