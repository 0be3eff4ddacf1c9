//! One sandbox container: created, attached and started, then — when its
//! payload arrives — fed, read under its caps and deadline, and removed.
//!
//! A started sandbox waits, blocked in the bootstrap's first `read`, until
//! [`Sandbox::execute`] writes its payload; the stage's deadline counts from
//! that moment, not from the container's start. This is what lets a run
//! container start before the compile stage that fills its working
//! directory, and lets the pool start containers ahead of demand. The
//! attach and the wait are both under way before the payload arrives.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, ContainerState};
use bollard::query_parameters::{AttachContainerOptionsBuilder, KillContainerOptionsBuilder};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::input::{self, SourceFile, Trailer};
use super::output::CappedBuffer;
use super::{ExecError, OutputStream, StageOutcome, Status, signal_of_exit_code};
use crate::engine::{Engine, EngineError};

/// How long to wait for a killed container to stop, and for the rest of its
/// output once it has stopped.
const SETTLE: Duration = Duration::from_secs(5);

/// How long a container may take to stop once its trailers came, before
/// it is killed.
const STOP_AFTER_TRAILERS: Duration = Duration::from_millis(500);
/// How many times, and how far apart, an unexplained SIGKILL is checked
/// again for the out-of-memory flag.
const OOM_RECHECKS: u32 = 5;
const OOM_RECHECK_PAUSE: Duration = Duration::from_millis(60);

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A started container waiting for its payload.
pub struct Sandbox {
    docker: Docker,
    guard: ContainerGuard,
    /// The stdin to write the payload to, until it is written.
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The nonce of the payload written before the start, if it was, and
    /// when (the program's clock starts then).
    fed: Option<(String, AbortOnDrop, Instant)>,
    output: Output,
    /// Resolves when the container stops: the wait request is sent as soon
    /// as the container starts, so that it is ready before any payload.
    exited: oneshot::Receiver<Result<(), EngineError>>,
    /// The same, per Engine API call: create, attach, start.
    pub start_phases: [(&'static str, Duration); 3],
}

/// What [`Sandbox::execute`] gives back: the outcome, and the container,
/// to be removed when the caller sees fit (off the response path).
pub struct Executed {
    pub outcome: StageOutcome,
    pub container: ContainerGuard,
    /// From the payload to the outcome, in two: the program (fed to ended),
    /// then what followed (stopping it if a limit did, reading its state).
    pub run_phases: [(&'static str, Duration); 2],
}

/// The bounds of one stage.
#[derive(Debug, Clone, Copy)]
pub struct StageBounds {
    pub wall_time: Duration,
    pub output_bytes: usize,
}

/// Why the read loop stopped.
enum Ending {
    /// The bootstrap's trailers gave the program's exit status.
    Finished(input::Ending),
    /// The container stopped with no trailers (the bootstrap was killed).
    Exited,
    Deadline,
    Overflow(OutputStream),
    Stopped,
}

impl Sandbox {
    /// Creates, attaches and starts a container, to wait for its payload.
    /// `image` names the image in the error when the engine does not have it.
    pub async fn start(
        engine: &Arc<Engine>,
        body: ContainerCreateBody,
        image: &str,
    ) -> Result<Sandbox, ExecError> {
        Sandbox::start_fed(engine, body, image, None).await
    }

    /// Creates and attaches a container, writes `payload` (when given) to
    /// its stdin, and starts it: the program starts as soon as its process
    /// does, while the engine finishes the start. Its deadline and duration
    /// count from that write.
    pub async fn start_fed(
        engine: &Arc<Engine>,
        body: ContainerCreateBody,
        image: &str,
        payload: Option<Payload>,
    ) -> Result<Sandbox, ExecError> {
        let began = Instant::now();
        let docker = engine.client().await?;
        // Created in a task of its own: if the run is dropped (its client went
        // away) while the engine creates the container, the task still
        // receives the id, and the guard it returns removes the container.
        let create = {
            let docker = docker.clone();
            let engine = engine.clone();
            tokio::spawn(async move {
                let created = docker.create_container(None, body).await?;
                Ok::<_, bollard::errors::Error>((
                    ContainerGuard::new(engine, created.id),
                    created.warnings,
                ))
            })
        };
        let (guard, warnings) = create
            .await
            .map_err(|e| EngineError::Unavailable(format!("the create task failed: {e}")))?
            .map_err(EngineError::from)
            .map_err(|e| match e {
                e if e.is_not_found() => ExecError::ImageMissing {
                    image: image.to_string(),
                },
                e => ExecError::Engine(e),
            })?;
        if !warnings.is_empty() {
            // A warning can mean a limit was silently dropped: fail closed.
            return Err(ExecError::Weakened(warnings.join("; ")));
        }
        let created = began.elapsed();
        let attach = docker
            .attach_container(
                guard.id(),
                Some(
                    AttachContainerOptionsBuilder::default()
                        .stdin(true)
                        .stdout(true)
                        .stderr(true)
                        .stream(true)
                        .build(),
                ),
            )
            .await
            .map_err(EngineError::from)?;
        let attached = began.elapsed();
        let mut input = Some(attach.input);
        let fed = payload.map(|payload| {
            let feeder = feed(input.take().expect("stdin"), payload.bytes);
            (payload.nonce, feeder, Instant::now())
        });
        docker
            .start_container(guard.id(), None)
            .await
            .map_err(EngineError::from)?;
        let (exit_tx, exited) = oneshot::channel();
        let waiter = docker.clone();
        let id = guard.id().to_string();
        tokio::spawn(async move {
            let mut wait = std::pin::pin!(waiter.wait_container(&id, None));
            let result = match wait.next().await {
                // A non-zero exit comes as an error carrying the code.
                Some(Ok(_))
                | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
                Some(Err(e)) => Err(EngineError::from(e)),
                None => Err(EngineError::Unavailable(
                    "the wait stream ended without an exit".into(),
                )),
            };
            let _ = exit_tx.send(result);
        });
        Ok(Sandbox {
            docker,
            guard,
            input,
            fed,
            output: attach.output,
            exited,
            start_phases: [
                ("create", created),
                ("attach", attached - created),
                ("start", began.elapsed() - attached),
            ],
        })
    }

    /// Waits until the bootstrap says its warm-up is over (the line
    /// [`input::READY`] on stdout), for at most `within`; whether it did.
    pub async fn warmed(&mut self, within: Duration) -> bool {
        let read = async {
            let mut seen = Vec::new();
            while let Some(Ok(chunk)) = self.output.next().await {
                if let LogOutput::StdOut { message } = chunk {
                    seen.extend_from_slice(&message);
                    if seen.ends_with(input::READY.as_bytes()) {
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
    pub fn is_waiting(&mut self) -> bool {
        matches!(
            self.exited.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }

    /// Feeds `payload` to the waiting bootstrap (unless it was fed at the
    /// start), then reads the program's output under `bounds` until the
    /// bootstrap's trailers say it ended (or the container stops), the
    /// deadline passes, a stream goes over its cap or `stop` is cancelled,
    /// and reads the container's state. The container is handed back for
    /// removal.
    pub async fn execute(
        self,
        payload: Option<Payload>,
        bounds: StageBounds,
        stop: &CancellationToken,
    ) -> Result<Executed, ExecError> {
        let Sandbox {
            docker,
            guard,
            input,
            fed,
            mut output,
            exited,
            ..
        } = self;
        let id = guard.id();
        let (nonce, _feeder, started) = match (fed, input, payload) {
            (Some(fed), _, _) => fed,
            (None, Some(input), Some(payload)) => {
                (payload.nonce, feed(input, payload.bytes), Instant::now())
            }
            _ => {
                return Err(ExecError::Engine(EngineError::Unavailable(
                    "a sandbox was run with no payload".into(),
                )));
            }
        };
        let deadline = tokio::time::Instant::from_std(started + bounds.wall_time);
        let nonce = nonce.as_str();

        let mut exited = Exit(Some(exited));
        let mut streams = Streams::new(nonce, bounds.output_bytes);
        let mut output_open = true;
        let ending = loop {
            tokio::select! {
                chunk = output.next(), if output_open => match chunk {
                    Some(Ok(chunk)) => {
                        if let Some(stream) = streams.take(chunk) {
                            break Ending::Overflow(stream);
                        }
                        if let Some(ending) = streams.ending() {
                            break Ending::Finished(ending);
                        }
                    }
                    // The stream may end (or fail) while the program still
                    // runs (it closed its stdout and stderr): the wait decides.
                    Some(Err(_)) | None => output_open = false,
                },
                exit = exited.next(), if exited.pending() => match exit {
                    Ok(()) => break Ending::Exited,
                    Err(e) => return Err(e.into()),
                },
                _ = tokio::time::sleep_until(deadline) => break Ending::Deadline,
                _ = stop.cancelled() => break Ending::Stopped,
            }
        };
        let ended = Instant::now();

        if matches!(ending, Ending::Finished(_)) {
            // The bootstrap is exiting, and the container with it. One that
            // has not stopped shortly after (a program that forged the
            // trailers to look done) is killed, off the response path.
            let docker = docker.clone();
            let id = id.to_string();
            let exited = std::mem::replace(&mut exited, Exit(None));
            tokio::spawn(async move {
                let mut exited = exited;
                exited.within(STOP_AFTER_TRAILERS).await;
                if exited.pending() {
                    let kill = KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build();
                    let _ = docker.kill_container(&id, Some(kill)).await;
                }
            });
        } else {
            // Whatever the program wrote before it ended is still in the
            // stream. It is read while the container is killed: the engine
            // stalls a kill while its writes to an unread attach stream are
            // blocked.
            let drain = async {
                if output_open {
                    while let Some(Ok(chunk)) = output.next().await {
                        streams.take(chunk);
                    }
                }
                streams.finish();
            };
            let halt = async {
                if matches!(ending, Ending::Exited) {
                    return Ok(());
                }
                let kill = KillContainerOptionsBuilder::default()
                    .signal("SIGKILL")
                    .build();
                match docker
                    .kill_container(id, Some(kill))
                    .await
                    .map_err(EngineError::from)
                {
                    // 409: it stopped on its own meanwhile.
                    Ok(()) | Err(EngineError::Api { status: 409, .. }) => {}
                    Err(e) => return Err(e),
                }
                exited.within(SETTLE).await;
                Ok(())
            };
            let (halted, _) = tokio::join!(halt, tokio::time::timeout(SETTLE, drain));
            halted?;
        }
        if matches!(ending, Ending::Stopped) {
            guard.remove().await;
            return Err(ExecError::Stopped);
        }
        // (The guard is dropped on the error paths below, which removes it.)

        let (exit_code, oom_killed) = match ending {
            // The bootstrap counted the kernel's out-of-memory kills.
            Ending::Finished(input::Ending {
                status,
                oom_kills: Some(kills),
            }) => (Some(status), kills > 0),
            Ending::Finished(input::Ending { status, .. }) => (
                Some(status),
                self::oom_killed(&docker, id, status, &mut exited).await?,
            ),
            _ => {
                let state = inspect_state(&docker, id).await?;
                let code = state.exit_code;
                let oom = match (state.oom_killed, code, &ending) {
                    (Some(true), _, _) => true,
                    (_, Some(code), Ending::Exited) => {
                        self::oom_killed(&docker, id, code, &mut exited).await?
                    }
                    _ => false,
                };
                (code, oom)
            }
        };
        let docker_time = started.elapsed();
        let run_phases = [
            ("run", ended - started),
            ("state", docker_time - (ended - started)),
        ];

        let overflowed = match ending {
            Ending::Overflow(stream) => Some(stream),
            _ => streams.overflowed(),
        };
        let status = if overflowed.is_some() {
            Status::OutputLimit
        } else if oom_killed {
            Status::MemoryLimit
        } else if matches!(ending, Ending::Deadline) {
            Status::Timeout
        } else if exit_code == Some(0) {
            Status::Ok
        } else {
            Status::RuntimeError
        };
        let (stdout, stderr, truncated) = streams.into_texts();
        let outcome = StageOutcome {
            status,
            exit_code,
            signal: exit_code.and_then(signal_of_exit_code),
            stdout,
            stderr,
            truncated,
            overflowed,
            duration: ended - started,
        };
        Ok(Executed {
            outcome,
            container: guard,
            run_phases,
        })
    }

    /// The container, for removal, without running anything in it.
    pub fn into_container(self) -> ContainerGuard {
        self.guard
    }

    /// Removes the container without running anything in it.
    pub async fn remove(self) {
        self.guard.remove().await;
    }
}

/// Whether the engine says the container was killed for memory. For an
/// unexplained SIGKILL, the engine may handle the kernel's out-of-memory
/// event only just after the exit: let the container stop, and ask again.
async fn oom_killed(
    docker: &Docker,
    id: &str,
    status: i64,
    exited: &mut Exit,
) -> Result<bool, ExecError> {
    let mut state = inspect_state(docker, id).await?;
    if status == 137 && state.oom_killed != Some(true) {
        exited.within(SETTLE).await;
        for _ in 0..OOM_RECHECKS {
            state = inspect_state(docker, id).await?;
            if state.oom_killed == Some(true) {
                break;
            }
            tokio::time::sleep(OOM_RECHECK_PAUSE).await;
        }
    }
    Ok(state.oom_killed == Some(true))
}

async fn inspect_state(docker: &Docker, id: &str) -> Result<ContainerState, ExecError> {
    Ok(docker
        .inspect_container(id, None)
        .await
        .map_err(EngineError::from)?
        .state
        .unwrap_or_default())
}

/// The container's stop, as the wait task reports it (once).
struct Exit(Option<oneshot::Receiver<Result<(), EngineError>>>);

impl Exit {
    fn pending(&self) -> bool {
        self.0.is_some()
    }

    /// The stop; pending for ever once reported.
    async fn next(&mut self) -> Result<(), EngineError> {
        let Some(receiver) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        let result = receiver.await.unwrap_or_else(|_| {
            Err(EngineError::Unavailable(
                "the wait task ended without an exit".into(),
            ))
        });
        self.0 = None;
        result
    }

    /// Waits up to `limit` for the stop, if it has not come yet.
    async fn within(&mut self, limit: Duration) {
        if self.pending() {
            let _ = tokio::time::timeout(limit, self.next()).await;
        }
    }
}

/// What a sandbox is fed: the encoded files, arguments and stdin, with the
/// nonce of its trailers.
#[derive(Debug, Clone)]
pub struct Payload {
    nonce: String,
    bytes: Vec<u8>,
}

impl Payload {
    pub fn new(files: &[SourceFile], args: &[String], stdin: &[u8]) -> Payload {
        let nonce = input::nonce();
        let bytes = input::encode(&nonce, files, args, stdin);
        Payload { nonce, bytes }
    }
}

/// Writes `bytes` to a container's stdin and closes it, in a task of its
/// own (the program may read slowly while its output must be read).
fn feed(mut writer: Pin<Box<dyn AsyncWrite + Send>>, bytes: Vec<u8>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        // The program may exit without reading: a broken pipe is fine.
        if writer.write_all(&bytes).await.is_ok() {
            let _ = writer.shutdown().await;
        }
    }))
}

/// The program's two output streams: trailers stripped, capped.
struct Streams {
    stdout: (Trailer, CappedBuffer),
    stderr: (Trailer, CappedBuffer),
}

impl Streams {
    fn new(nonce: &str, cap: usize) -> Streams {
        Streams {
            stdout: (Trailer::new(nonce), CappedBuffer::new(cap)),
            stderr: (Trailer::new(nonce), CappedBuffer::new(cap)),
        }
    }

    /// Takes a chunk of output; returns the stream if it went over its cap.
    fn take(&mut self, chunk: LogOutput) -> Option<OutputStream> {
        let (stream, (trailer, buffer)) = match &chunk {
            LogOutput::StdOut { .. } => (OutputStream::Stdout, &mut self.stdout),
            LogOutput::StdErr { .. } => (OutputStream::Stderr, &mut self.stderr),
            LogOutput::StdIn { .. } | LogOutput::Console { .. } => return None,
        };
        let bytes = trailer.push(chunk.as_ref());
        buffer.push(&bytes).then_some(stream)
    }

    /// What the bootstrap said, once the trailers of both streams have come.
    fn ending(&self) -> Option<input::Ending> {
        self.stdout.0.ending().and(self.stderr.0.ending())
    }

    /// Passes on what the trailers held back (the streams ended without
    /// them: the bootstrap was killed, or the program outlived a limit).
    fn finish(&mut self) {
        for (trailer, buffer) in [&mut self.stdout, &mut self.stderr] {
            let rest = trailer.finish();
            buffer.push(&rest);
        }
    }

    fn overflowed(&self) -> Option<OutputStream> {
        if self.stdout.1.overflowed() {
            Some(OutputStream::Stdout)
        } else if self.stderr.1.overflowed() {
            Some(OutputStream::Stderr)
        } else {
            None
        }
    }

    /// stdout, stderr, and whether either was cut.
    fn into_texts(self) -> (String, String, bool) {
        let truncated = self.stdout.1.overflowed() || self.stderr.1.overflowed();
        (
            self.stdout.1.into_text(),
            self.stderr.1.into_text(),
            truncated,
        )
    }
}

/// Removes its container when dropped, whatever path the run took.
pub struct ContainerGuard {
    engine: Arc<Engine>,
    id: Option<String>,
}

impl ContainerGuard {
    fn new(engine: Arc<Engine>, id: String) -> Self {
        engine.hold(&id);
        ContainerGuard {
            engine,
            id: Some(id),
        }
    }

    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Removes the container now; a failure is logged, and the start-up
    /// and shutdown sweeps catch what is left.
    pub async fn remove(mut self) {
        if let Some(id) = self.id.take() {
            remove_container_logged(&self.engine, &id).await;
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let engine = self.engine.clone();
            spawn_cleanup(async move { remove_container_logged(&engine, &id).await });
        }
    }
}

/// A per-run scratch volume, removed when dropped (after the containers
/// using it, which are removed first or are being removed).
pub struct VolumeGuard {
    engine: Arc<Engine>,
    name: Option<String>,
}

impl VolumeGuard {
    /// Guards the volume `name`, which is about to be created (so that a
    /// volume is never without its guard).
    pub fn new(engine: Arc<Engine>, name: String) -> Self {
        engine.hold(&name);
        VolumeGuard {
            engine,
            name: Some(name),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// Removes the volume now (its containers must be gone).
    pub async fn remove(mut self) {
        if let Some(name) = self.name.take() {
            remove_volume_patiently(&self.engine, &name).await;
        }
    }
}

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let engine = self.engine.clone();
            spawn_cleanup(async move { remove_volume_patiently(&engine, &name).await });
        }
    }
}

/// Runs a clean-up on the current runtime, if there still is one; the
/// sweeps at start-up and shutdown catch anything a missing runtime left.
fn spawn_cleanup(task: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => tracing::warn!("no runtime to clean up a sandbox; the next sweep will"),
    }
}

async fn remove_container_logged(engine: &Engine, id: &str) {
    match engine.remove_container(id).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "could not remove a sandbox container; the janitor will")
        }
    }
    engine.release(id);
}

async fn remove_volume_patiently(engine: &Engine, name: &str) {
    match engine.remove_volume_retrying(name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            tracing::warn!(volume = %name, error = %e, "could not remove a scratch volume; the janitor will")
        }
    }
    engine.release(name);
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
