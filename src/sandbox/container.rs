//! One sandbox container: created, attached and started, then — when its
//! payload arrives — fed, read under its caps and deadline, and handed back
//! for removal.
//!
//! A started sandbox waits, blocked in the bootstrap's first `read`, until
//! [`Sandbox::execute`] writes its payload; the stage's deadline counts from
//! that moment, not from the container's start. This is what lets a run
//! container start before the compile stage that fills its working
//! directory, and lets the pool start containers ahead of demand. The
//! attach and the wait are both under way before the payload arrives.
//!
//! [`Sandbox::execute`] is five steps: feed, read until the stage ends
//! ([`Transcript`] keeps the output under its caps and spots the trailers;
//! a [`CpuWatch`] holds the CPU-time limit from outside), halt what is
//! still running, observe the exit, and the pure [`verdict`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::SandboxError;
use super::output::CappedBuffer;
use super::protocol::{self, Frame, Framing, READY, Terms};
use super::verdict::{Observed, Reported, verdict};
use super::watch::{CpuBound, CpuWatch};
use crate::custody::uids::UidLease;
use crate::custody::{Custody, Held};
use crate::engine::{self, Chunk, Containers, EngineError, Input, Kind, Output, SandboxSpec};
use crate::job::Outputs;
use crate::live::{Control, Controls, Sink, Streamed};
use crate::outcome::{Phase, Phases, StageResult, StreamKind, Usage};

/// How long to wait for a killed container to stop, and for the rest of its
/// output once it has stopped.
const SETTLE: Duration = Duration::from_secs(5);
/// How long a container may take to stop once its trailers came, before
/// it is killed.
const STOP_AFTER_TRAILERS: Duration = Duration::from_millis(500);
/// How many times, and how far apart, an unexplained SIGKILL is checked
/// again for the engine's out-of-memory flag (up to 0.9 s: with 0.3 s, a
/// gVisor sandbox's memory bomb was once an internal error on a loaded
/// machine, as a flag that came later would make it).
const OOM_RECHECKS: u32 = 15;
const OOM_RECHECK_PAUSE: Duration = Duration::from_millis(60);
/// How long the sample of a stage's usage, taken before it is killed at a
/// limit, may delay the kill.
const SAMPLE_WITHIN: Duration = Duration::from_millis(250);
/// How long after its wall-time limit the service stops a stage itself,
/// should its supervisor not have (the supervisor's clock starts with the
/// program, after the sandbox's start; it stops the program there, relays
/// the rest of its output and reports).
const DEADLINE_BACKSTOP: Duration = Duration::from_secs(2);

/// What a sandbox is fed: the encoded files, arguments and stdin, with the
/// nonce of its trailers; for a streamed run, the client's controls (fed
/// as framed stdin after the payload) and where the output goes as it is
/// read.
#[derive(Debug)]
pub(crate) struct Payload {
    nonce: String,
    bytes: Vec<u8>,
    input: Option<Controls>,
    sink: Option<Sink>,
    /// The files it asks back.
    outputs: Option<Outputs>,
}

impl Payload {
    /// The payload of a stage with `files`, `args` and `stdin`, held to
    /// `terms` (and streamed, if `streamed`).
    pub(crate) fn new(
        terms: Terms,
        files: &[&crate::job::SourceFile],
        args: &[String],
        stdin: &[u8],
        streamed: Option<Streamed>,
    ) -> Payload {
        let nonce = protocol::nonce();
        let (input, sink) = match streamed {
            Some(streamed) => (streamed.input, Some(streamed.sink)),
            None => (None, None),
        };
        let encode = |stdin| protocol::encode(&nonce, terms, files, args, stdin);
        let bytes = match input {
            None => encode(Some(stdin)),
            // Framed: the request's own stdin is the first frame.
            Some(_) => {
                let mut bytes = encode(None);
                if !stdin.is_empty() {
                    bytes.extend(protocol::frame(Frame::Data(stdin)));
                }
                bytes
            }
        };
        Payload {
            nonce,
            bytes,
            input,
            sink,
            outputs: terms.outputs.cloned(),
        }
    }
}

/// The bounds of one stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageBounds {
    pub(crate) wall_time: Duration,
    pub(crate) output_bytes: usize,
    /// The CPU-time limit the service holds from outside, if any.
    pub(crate) cpu: Option<CpuBound>,
}

/// A started container waiting for its payload.
pub(crate) struct Sandbox {
    engine: Arc<dyn Containers>,
    container: Held,
    /// The stdin to write the payload to, until it is written.
    input: Option<Input>,
    /// The payload written before the start, if it was.
    fed: Option<Fed>,
    output: Output,
    exited: Stop,
    /// Where the start's time went.
    pub(crate) start_phases: Phases,
}

/// A payload on its way: its nonce, the task writing it, and when it began
/// (the program's clock starts then).
struct Fed {
    nonce: String,
    _writer: AbortOnDrop,
    at: Instant,
    sink: Option<Sink>,
    outputs: Option<Outputs>,
}

/// What [`Sandbox::execute`] gives back: the stage's result, and the
/// container, to be removed when the caller sees fit (off the response
/// path).
pub(crate) struct Executed {
    pub(crate) result: StageResult,
    pub(crate) container: Held,
    /// From the payload to the result: the program, then what followed.
    pub(crate) phases: Phases,
}

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The bootstrap's trailers came on both streams.
    Finished(Reported),
    /// The container stopped with no trailers (the bootstrap was killed).
    Exited,
    Deadline,
    /// The service saw the CPU time past the limit.
    CpuLimit,
    Capped(StreamKind),
    /// The service is shutting down.
    Stopped,
}

impl Sandbox {
    /// Creates, attaches and starts a container, writing `payload` (when
    /// given) to its stdin before the start, so that the program starts
    /// with its process; the program's clock counts from that write.
    /// Without one it waits for [`Sandbox::execute`]'s.
    pub(crate) async fn start(
        custody: &Arc<Custody>,
        spec: SandboxSpec,
        uid: Arc<UidLease>,
        payload: Option<Payload>,
    ) -> Result<Sandbox, SandboxError> {
        let began = Instant::now();
        let engine = custody.engine().clone();
        let container = create(custody, spec, uid).await?;
        let created = began.elapsed();
        let (input, output) = engine.attach(container.id()).await?;
        let attached = began.elapsed();
        let mut input = Some(input);
        let fed = payload.map(|payload| Fed::new(input.take().expect("stdin"), payload));
        engine.start(container.id()).await?;
        let exited = Stop::watch(engine.clone(), container.id().to_string());
        Ok(Sandbox {
            engine,
            container,
            input,
            fed,
            // Read again after it ended (the rest of a killed stage's output).
            output: Box::pin(output.fuse()),
            exited,
            start_phases: vec![
                (Phase::Create, created),
                (Phase::Attach, attached - created),
                (Phase::Start, began.elapsed() - attached),
            ],
        })
    }

    /// Waits until the bootstrap says its warm-up is over (the line
    /// [`READY`] on stdout), for at most `within`; whether it did.
    pub(crate) async fn warmed(&mut self, within: Duration) -> bool {
        let read = async {
            let mut seen = Vec::new();
            while let Some(Ok(chunk)) = self.output.next().await {
                if chunk.stream == StreamKind::Stdout {
                    seen.extend_from_slice(&chunk.bytes);
                    if seen.ends_with(READY.as_bytes()) {
                        return true;
                    }
                }
            }
            false
        };
        tokio::time::timeout(within, read).await.unwrap_or(false)
    }

    /// Whether the container still runs, waiting for its payload (a pooled
    /// container killed from outside is not).
    pub(crate) fn is_waiting(&mut self) -> bool {
        self.exited.pending() && !self.exited.arrived()
    }

    /// Feeds `payload` to the waiting bootstrap (unless it was fed at the
    /// start), reads the program's output under `bounds` until it ends,
    /// the deadline passes, a stream goes over its cap or `stop` is
    /// cancelled, and decides how it ended. The container is handed back
    /// for removal.
    pub(crate) async fn execute(
        mut self,
        payload: Option<Payload>,
        bounds: StageBounds,
        stop: &CancellationToken,
    ) -> Result<Executed, SandboxError> {
        let fed = match (self.fed.take(), self.input.take(), payload) {
            (Some(fed), _, _) => fed,
            (None, Some(input), Some(payload)) => Fed::new(input, payload),
            _ => {
                return Err(SandboxError::Internal(
                    "a sandbox was run with no payload".into(),
                ));
            }
        };
        let deadline = fed.at + bounds.wall_time + DEADLINE_BACKSTOP;
        let watch = bounds.cpu.map(|bound| CpuWatch::new(bound, fed.at));
        let mut transcript = Transcript::new(&fed.nonce, bounds.output_bytes, fed.outputs.as_ref());
        transcript.sink = fed.sink.clone();
        let ending = self
            .read_until_ending(&mut transcript, deadline, watch, stop)
            .await?;
        let ended = Instant::now();
        let sampled = self.halt(ending, &mut transcript).await?;
        if ending == Ending::Stopped {
            self.container.remove_now().await;
            return Err(SandboxError::Stopped);
        }
        if ending == Ending::Exited && !transcript.started() {
            let (_, stderr, _) = transcript.into_texts();
            return Err(SandboxError::NeverStarted(stderr));
        }
        let mut observed = self.observe(ending, &transcript).await?;
        observed.cpu_limit = bounds.cpu.map(|bound| bound.limit);
        let (exit, limit) = verdict(&observed).map_err(SandboxError::Unreported)?;
        let usage = usage(observed.reported, sampled, transcript.cpu_at_start());
        let files = transcript.stdout.0.take_files().map(Box::new);
        let (stdout, stderr, output) = transcript.into_texts();
        let phases = vec![
            (Phase::Run, ended - fed.at),
            (Phase::State, ended.elapsed()),
        ];
        Ok(Executed {
            result: StageResult {
                exit,
                limit,
                stdout,
                stderr,
                output,
                duration: ended - fed.at,
                usage,
                files,
            },
            container: self.container,

            phases,
        })
    }

    /// Reads output until the trailers come, the container stops, a stream
    /// goes over its cap, the deadline passes, `watch` sees the CPU time
    /// past its limit or `stop` is cancelled.
    async fn read_until_ending(
        &mut self,
        transcript: &mut Transcript,
        deadline: tokio::time::Instant,
        mut watch: Option<CpuWatch>,
        stop: &CancellationToken,
    ) -> Result<Ending, SandboxError> {
        let mut output_open = true;
        let mut look = self.look(watch.as_ref().map(CpuWatch::due));
        loop {
            tokio::select! {
                cpu_ns = &mut look => {
                    // Counted from the program's start when the supervisor
                    // said what the sandbox had used then, else from the
                    // container's (more, never less).
                    let start_us = transcript.cpu_at_start().unwrap_or(0);
                    let used = cpu_ns.map(|ns| Duration::from_micros((ns / 1000).saturating_sub(start_us)));
                    let Some(armed) = watch.as_mut() else { continue };
                    if armed.over(used, Instant::now()) {
                        return Ok(Ending::CpuLimit);
                    }
                    look = self.look(Some(armed.due()));
                }
                chunk = self.output.next(), if output_open => match chunk {
                    Some(Ok(chunk)) => {
                        if let Some(stream) = transcript.take(&chunk) {
                            return Ok(Ending::Capped(stream));
                        }
                        if let Some(reported) = transcript.reported() {
                            return Ok(Ending::Finished(reported));
                        }
                    }
                    // The stream may end (or fail) while the program still
                    // runs (it closed its stdout and stderr): the wait decides.
                    Some(Err(_)) | None => output_open = false,
                },
                exit = self.exited.next(), if self.exited.pending() => {
                    exit?;
                    return Ok(Ending::Exited);
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(Ending::Deadline),
                _ = stop.cancelled() => return Ok(Ending::Stopped),
            }
        }
    }

    /// The sandbox's CPU time (ns, as the engine reads its cgroup) at
    /// `due`; never, without one.
    fn look(&self, due: Option<Instant>) -> BoxFuture<'static, Option<u64>> {
        let Some(due) = due else {
            return std::future::pending().boxed();
        };
        let (engine, id) = (self.engine.clone(), self.container.id().to_string());
        async move {
            tokio::time::sleep_until(due).await;
            let sample = tokio::time::timeout(SAMPLE_WITHIN, engine.usage(&id)).await;
            sample
                .ok()
                .and_then(Result::ok)
                .and_then(|usage| usage.cpu_ns)
        }
        .boxed()
    }

    /// Stops what may still run. After the trailers the bootstrap is
    /// exiting; one that has not stopped shortly after (a program that
    /// forged them) is killed, off the response path. Otherwise the
    /// container is killed while the rest of its output is read (the engine
    /// stalls a kill while its writes to an unread attach stream block).
    /// A stage stopped at a limit has its usage sampled first (a stopped
    /// container's cgroup is gone).
    async fn halt(
        &mut self,
        ending: Ending,
        transcript: &mut Transcript,
    ) -> Result<Option<engine::Usage>, SandboxError> {
        if let Ending::Finished(_) = ending {
            let engine = self.engine.clone();
            let id = self.container.id().to_string();
            let mut exited = std::mem::replace(&mut self.exited, Stop::none());
            tokio::spawn(async move {
                exited.within(STOP_AFTER_TRAILERS).await;
                if exited.pending() {
                    let _ = engine.kill(&id).await;
                }
            });
            return Ok(None);
        }
        let sampled = match ending {
            Ending::Deadline | Ending::Capped(_) | Ending::CpuLimit => {
                let sample = self.engine.usage(self.container.id());
                tokio::time::timeout(SAMPLE_WITHIN, sample)
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            _ => None,
        };
        let output = &mut self.output;
        let drain = async {
            while let Some(Ok(chunk)) = output.next().await {
                transcript.take(&chunk);
            }
        };
        let (engine, id, exited) = (&self.engine, self.container.id(), &mut self.exited);
        let kill = async {
            if ending != Ending::Exited {
                engine.kill(id).await?;
                exited.within(SETTLE).await;
            }
            Ok::<_, EngineError>(())
        };
        let (killed, _) = tokio::join!(kill, tokio::time::timeout(SETTLE, drain));
        transcript.finish();
        killed?;
        Ok(sampled)
    }

    /// What is known of the stage's end: the trailer, or the engine's
    /// account of the container (asked again, for a while, after an
    /// unexplained SIGKILL: the engine may handle the kernel's
    /// out-of-memory event just after the exit).
    async fn observe(
        &mut self,
        ending: Ending,
        transcript: &Transcript,
    ) -> Result<Observed, SandboxError> {
        let mut observed = Observed {
            capped: transcript.capped(),
            deadline_passed: ending == Ending::Deadline,
            cpu_stopped: ending == Ending::CpuLimit,
            cpu_at_start: transcript.cpu_at_start().is_some(),
            ..Observed::default()
        };
        if let Ending::Finished(reported) = ending {
            observed.reported = Some(reported);
            if reported.oom_kills.is_some() {
                return Ok(observed);
            }
        }
        let id = self.container.id();
        let mut state = self.engine.inspect(id).await?;
        let status = observed
            .reported
            .map(|r| r.exit.status())
            .or(state.exit_code);
        let ended_itself = matches!(ending, Ending::Finished(_) | Ending::Exited);
        if status == Some(137) && !state.oom_killed && ended_itself {
            self.exited.within(SETTLE).await;
            for _ in 0..OOM_RECHECKS {
                state = self.engine.inspect(id).await?;
                if state.oom_killed {
                    break;
                }
                tokio::time::sleep(OOM_RECHECK_PAUSE).await;
            }
        }
        observed.engine_exit = state.exit_code;
        observed.engine_oom = state.oom_killed;
        Ok(observed)
    }

    /// The container, for removal, without running anything in it.
    pub(crate) fn into_container(self) -> Held {
        self.container
    }
}

/// What a stage used: the supervisor's figures when it reported them,
/// else a sample taken before the stage was stopped at a limit (its CPU
/// time counted from the program's start).
fn usage(
    reported: Option<Reported>,
    sampled: Option<engine::Usage>,
    cpu_at_start: Option<u64>,
) -> Usage {
    match (reported, sampled) {
        (Some(r), _) => Usage {
            cpu_time: r.cpu_time,
            memory_peak: r.memory_peak,
        },
        (None, Some(sample)) => Usage {
            cpu_time: sample
                .cpu_ns
                .zip(cpu_at_start)
                .map(|(now, start)| Duration::from_micros((now / 1000).saturating_sub(start))),
            memory_peak: sample.memory_peak,
        },
        (None, None) => Usage::default(),
    }
}

/// Creates the container in a task of its own: if the run is dropped (its
/// client went away) while the engine creates it, the task still receives
/// the id and takes it into custody (with its uid), and custody removes it.
async fn create(
    custody: &Arc<Custody>,
    spec: SandboxSpec,
    uid: Arc<UidLease>,
) -> Result<Held, SandboxError> {
    let runtime = spec.runtime.clone();
    let task = {
        let custody = custody.clone();

        tokio::spawn(async move {
            let created = custody.engine().create(&spec).await?;
            let held = custody.hold(Kind::Container, created.id, Some(uid));
            Ok::<_, EngineError>((held, created.warnings))
        })
    };
    let created = task
        .await
        .map_err(|e| SandboxError::Internal(format!("the create task failed: {e}")))?;
    let (container, warnings) = match created {
        Err(e) if e.is_not_found() => return Err(SandboxError::ImageMissing { image: e.target }),
        Err(e) if e.message().starts_with("Unknown runtime specified") => {
            return Err(SandboxError::RuntimeMissing {
                runtime: runtime.unwrap_or_default(),
            });
        }
        other => other?,
    };
    if !warnings.is_empty() {
        // A warning can mean a limit was silently dropped: fail closed
        // (the container is removed with its handle).
        return Err(SandboxError::Weakened(warnings.join("; ")));
    }
    Ok(container)
}

impl Fed {
    /// Starts writing `payload` to `input`: the program's clock starts.
    fn new(input: Input, payload: Payload) -> Fed {
        Fed {
            _writer: feed(input, payload.bytes, payload.input),
            nonce: payload.nonce,
            at: Instant::now(),
            sink: payload.sink,
            outputs: payload.outputs,
        }
    }
}

/// Writes `bytes` to a container's stdin, then, for a streamed run, each
/// of the client's controls as a frame while they come, and closes it, in
/// a task of its own (the program may read slowly while its output must be
/// read).
fn feed(mut writer: Input, bytes: Vec<u8>, controls: Option<Controls>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        // The program may exit without reading: a broken pipe is fine.
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
        if let Some(controls) = controls {
            let mut controls = controls.lock().await;
            let _ = writer.flush().await;
            while let Some(control) = controls.recv().await {
                let frame = match &control {
                    Control::Stdin(bytes) => protocol::frame(Frame::Data(bytes)),
                    Control::CloseStdin => protocol::frame(Frame::End),
                    Control::Signal(signal) => protocol::frame(Frame::Signal(signal.0)),
                };
                if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
            // The client is done (or gone): the program's stdin ends.
            let _ = writer.write_all(&protocol::frame(Frame::End)).await;
        }
        let _ = writer.shutdown().await;
    }))
}

/// The program's two output streams, as read so far: markers stripped,
/// each capped.
struct Transcript {
    stdout: (Framing, CappedBuffer),
    stderr: (Framing, CappedBuffer),
    /// What both streams kept, in the order it came.
    both: CappedBuffer,
    /// The first stream that went over its cap.
    capped: Option<StreamKind>,
    /// Where what each stream keeps goes as it comes (a streamed run).
    sink: Option<Sink>,
}

impl Transcript {
    fn new(nonce: &str, cap: usize, outputs: Option<&Outputs>) -> Transcript {
        Transcript {
            stdout: (Framing::stdout(nonce, outputs), CappedBuffer::new(cap)),
            stderr: (Framing::stderr(nonce), CappedBuffer::new(cap)),
            both: CappedBuffer::new(cap.saturating_mul(2)),
            capped: None,
            sink: None,
        }
    }

    /// Whether the program was started (the supervisor said so).
    fn started(&self) -> bool {
        self.stdout.0.started()
    }

    /// The sandbox's CPU time (µs) when the program started, if known.
    fn cpu_at_start(&self) -> Option<u64> {
        self.stdout.0.cpu_at_start()
    }

    /// Takes a chunk of output; returns its stream if that went over its cap.
    fn take(&mut self, chunk: &Chunk) -> Option<StreamKind> {
        let (trailer, buffer) = match chunk.stream {
            StreamKind::Stdout => &mut self.stdout,
            StreamKind::Stderr => &mut self.stderr,
        };
        let was_started = trailer.started();
        let bytes = trailer.push(&chunk.bytes);
        let kept = &bytes[..bytes.len().min(buffer.room())];
        self.both.push(kept);
        if let Some(sink) = &self.sink {
            // The start line comes on stdout, before the program's output.
            if chunk.stream == StreamKind::Stdout && !was_started && trailer.started() {
                sink.running();
            }
            sink.output(chunk.stream, kept);
        }
        let over = buffer.push(&bytes);
        if over && self.capped.is_none() {
            self.capped = Some(chunk.stream);
        }
        over.then_some(chunk.stream)
    }

    /// What the bootstrap said, once the trailers of both streams came.
    fn reported(&self) -> Option<Reported> {
        self.stdout.0.ending().and(self.stderr.0.ending())
    }

    /// Passes on what the trailers held back (the streams ended without
    /// them: the bootstrap was killed, or the program outlived a limit).
    fn finish(&mut self) {
        for stream in [StreamKind::Stdout, StreamKind::Stderr] {
            let (trailer, buffer) = match stream {
                StreamKind::Stdout => &mut self.stdout,
                StreamKind::Stderr => &mut self.stderr,
            };
            let rest = trailer.finish();
            let kept = &rest[..rest.len().min(buffer.room())];
            self.both.push(kept);
            if let Some(sink) = &self.sink {
                sink.output(stream, kept);
            }
            if buffer.push(&rest) && self.capped.is_none() {
                self.capped = Some(stream);
            }
        }
    }

    fn capped(&self) -> Option<StreamKind> {
        self.capped
    }

    /// stdout, stderr, and both in the order they came.
    fn into_texts(self) -> (String, String, String) {
        (
            self.stdout.1.into_text(),
            self.stderr.1.into_text(),
            self.both.into_text(),
        )
    }
}

/// The container's stop, as the wait task reports it (once).
struct Stop {
    receiver: Option<oneshot::Receiver<Result<(), EngineError>>>,
    /// A report taken by [`Stop::arrived`], not yet given by [`Stop::next`].
    early: Option<Result<(), EngineError>>,
}

impl Stop {
    /// Sends the wait request now, so that it is ready before any payload.
    fn watch(engine: Arc<dyn Containers>, id: String) -> Stop {
        let (tx, receiver) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(engine.wait(&id).await);
        });
        Stop {
            receiver: Some(receiver),
            early: None,
        }
    }

    fn none() -> Stop {
        Stop {
            receiver: None,
            early: None,
        }
    }

    fn pending(&self) -> bool {
        self.receiver.is_some() || self.early.is_some()
    }

    /// Whether the stop has been reported already (without waiting).
    fn arrived(&mut self) -> bool {
        if self.early.is_some() {
            return true;
        }
        let Some(receiver) = self.receiver.as_mut() else {
            return false;
        };
        match receiver.try_recv() {
            Ok(result) => {
                self.early = Some(result);
                true
            }
            Err(oneshot::error::TryRecvError::Empty) => false,
            Err(oneshot::error::TryRecvError::Closed) => {
                self.early = Some(Err(lost_wait()));
                true
            }
        }
    }

    /// The stop; pending for ever once reported.
    async fn next(&mut self) -> Result<(), EngineError> {
        if let Some(result) = self.early.take() {
            self.receiver = None;
            return result;
        }
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        let result = receiver.await.unwrap_or_else(|_| Err(lost_wait()));
        self.receiver = None;
        result
    }

    /// Waits up to `limit` for the stop, if it has not come yet.
    async fn within(&mut self, limit: Duration) {
        if self.pending() {
            let _ = tokio::time::timeout(limit, self.next()).await;
        }
    }
}

fn lost_wait() -> EngineError {
    let message = "the wait task ended without an exit";
    EngineError::answered(crate::engine::Step::Wait, "", None, message)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunk(stream: StreamKind, bytes: &'static [u8]) -> Chunk {
        Chunk {
            stream,
            bytes: Bytes::from_static(bytes),
        }
    }

    #[test]
    fn a_transcript_strips_the_markers_and_reports_once_both_trailers_came() {
        let mut t = Transcript::new("N", 100, None);
        assert!(!t.started());
        let stdout = b"N:start:7\nout\nN:x0:0:10:4096:-\n";
        assert_eq!(t.take(&chunk(StreamKind::Stdout, stdout)), None);
        assert!(t.started());
        assert_eq!(t.cpu_at_start(), Some(7));
        assert!(t.reported().is_none(), "stderr's trailer is still to come");
        t.take(&chunk(StreamKind::Stderr, b"err\nN:x0:0:10:4096:-\n"));
        let reported = t.reported().unwrap();
        assert_eq!(reported.oom_kills, Some(0));
        assert_eq!(reported.memory_peak, Some(4096));
        assert_eq!(
            t.into_texts(),
            (
                "out\n".to_string(),
                "err\n".to_string(),
                "out\nerr\n".to_string()
            )
        );
    }

    #[test]
    fn usage_comes_from_the_trailer_else_from_a_sample_counted_from_the_start() {
        let reported = Reported {
            exit: crate::outcome::Exit::Code(0),
            oom_kills: Some(0),
            cpu_time: Some(Duration::from_millis(3)),
            memory_peak: Some(10),
            cpu_limit: false,
            wall_limit: false,
        };
        let sample = engine::Usage {
            cpu_ns: Some(5_000_000),
            memory_peak: Some(20),
        };
        let from_trailer = usage(Some(reported), Some(sample), Some(1000));
        assert_eq!(from_trailer.cpu_time, Some(Duration::from_millis(3)));
        let sampled = usage(None, Some(sample), Some(1000));
        assert_eq!(sampled.cpu_time, Some(Duration::from_millis(4)));
        assert_eq!(sampled.memory_peak, Some(20));
        assert_eq!(usage(None, Some(sample), None).cpu_time, None);
        assert_eq!(usage(None, None, Some(1)), Usage::default());
    }

    #[test]
    fn a_transcript_names_the_first_stream_over_its_cap() {
        // A framing holds back the last 97 bytes (its nonce and 96 more):
        // what it passes on is capped.
        let many = &[b'x'; 200];
        let mut t = Transcript::new("N", 4, None);
        assert_eq!(
            t.take(&chunk(StreamKind::Stderr, many)),
            Some(StreamKind::Stderr)
        );
        t.take(&chunk(StreamKind::Stdout, b"N:start:-\n"));
        t.take(&chunk(StreamKind::Stdout, many));

        assert_eq!(t.capped(), Some(StreamKind::Stderr));
        // What a trailer held back counts too, once the stream ends.
        let mut t = Transcript::new("NONCE-LONG", 4, None);
        t.take(&chunk(StreamKind::Stderr, b"abc"));
        assert_eq!(t.capped(), None);
        t.take(&chunk(StreamKind::Stderr, b"NONCE-LONG"));
        t.finish();
        assert_eq!(t.capped(), Some(StreamKind::Stderr));
    }
}
