//! One sandbox container: created, attached and started, then — when its
//! payload arrives — fed, read under its caps and deadline, and removed.
//!
//! A started sandbox waits, blocked in the bootstrap's first `read`, until
//! [`Sandbox::execute`] writes its payload; the stage's deadline counts from
//! that moment, not from the container's start. This is what lets a run
//! container start before the compile stage that fills its working
//! directory.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, ContainerState};
use bollard::query_parameters::{AttachContainerOptionsBuilder, KillContainerOptionsBuilder};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::output::CappedBuffer;
use super::{ExecError, OutputStream, StageOutcome, Status, signal_of_exit_code};
use crate::engine::{Engine, EngineError};

/// How long to wait for a killed container to stop, and for the rest of its
/// output once it has stopped.
const SETTLE: Duration = Duration::from_secs(5);

/// How many times, and how far apart, an unexplained SIGKILL is checked
/// again for the out-of-memory flag.
const OOM_RECHECKS: u32 = 5;
const OOM_RECHECK_PAUSE: Duration = Duration::from_millis(60);

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A started container waiting for its payload.
pub struct Sandbox {
    docker: Docker,
    guard: ContainerGuard,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
}

/// The bounds of one stage.
#[derive(Debug, Clone, Copy)]
pub struct StageBounds {
    pub wall_time: Duration,
    pub output_bytes: usize,
}

/// Why the read loop stopped.
enum Ending {
    Exited,
    Deadline,
    Overflow(OutputStream),
    Stopped,
}

impl Sandbox {
    /// Creates, attaches and starts a container. `image` names the image in
    /// the error when the engine does not have it.
    pub async fn start(
        engine: &Arc<Engine>,
        body: ContainerCreateBody,
        image: &str,
    ) -> Result<Sandbox, ExecError> {
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
        docker
            .start_container(guard.id(), None)
            .await
            .map_err(EngineError::from)?;
        Ok(Sandbox {
            docker,
            guard,
            input: attach.input,
            output: attach.output,
        })
    }

    /// Feeds `payload` to the waiting bootstrap, then reads the program's
    /// output under `bounds` until it exits, the deadline passes, a stream
    /// goes over its cap or `stop` is cancelled; reads the exit status, and
    /// removes the container.
    pub async fn execute(
        self,
        payload: Vec<u8>,
        bounds: StageBounds,
        stop: &CancellationToken,
    ) -> Result<StageOutcome, ExecError> {
        let Sandbox {
            docker,
            guard,
            input,
            mut output,
        } = self;
        let id = guard.id();
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + bounds.wall_time);
        let mut writer = input;
        let feeder = tokio::spawn(async move {
            // The program may exit without reading: a broken pipe is fine.
            if writer.write_all(&payload).await.is_ok() {
                let _ = writer.shutdown().await;
            }
        });
        let _feeder = AbortOnDrop(feeder);

        let mut wait = Box::pin(docker.wait_container(id, None));
        let mut stdout = CappedBuffer::new(bounds.output_bytes);
        let mut stderr = CappedBuffer::new(bounds.output_bytes);
        let mut output_open = true;
        let ending = loop {
            tokio::select! {
                chunk = output.next(), if output_open => match chunk {
                    Some(Ok(chunk)) => {
                        if let Some(stream) = collect(chunk, &mut stdout, &mut stderr) {
                            break Ending::Overflow(stream);
                        }
                    }
                    // The stream may end (or fail) while the program still
                    // runs (it closed its stdout and stderr): the wait decides.
                    Some(Err(_)) | None => output_open = false,
                },
                exit = wait.next() => match exit {
                    // A non-zero exit comes as an error carrying the code.
                    Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {
                        break Ending::Exited
                    }
                    Some(Err(e)) => return Err(EngineError::from(e).into()),
                    None => {
                        return Err(EngineError::Unavailable("the wait stream ended without an exit".into()).into())
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break Ending::Deadline,
                _ = stop.cancelled() => break Ending::Stopped,
            }
        };
        let ended = Instant::now();

        // Whatever the program wrote before it ended is still in the stream.
        // It is read while the container is killed: the engine stalls a
        // kill while its writes to an unread attach stream are blocked.
        let drain = async {
            if output_open {
                while let Some(Ok(chunk)) = output.next().await {
                    collect(chunk, &mut stdout, &mut stderr);
                }
            }
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
            let _ = tokio::time::timeout(SETTLE, wait.next()).await;
            Ok(())
        };
        let (halted, _) = tokio::join!(halt, tokio::time::timeout(SETTLE, drain));
        halted?;
        if matches!(ending, Ending::Stopped) {
            guard.remove().await;
            return Err(ExecError::Stopped);
        }

        let mut state = inspect_state(&docker, id).await?;
        // The engine may handle the kernel's out-of-memory event just after
        // the exit: a SIGKILL the service did not send is checked again.
        let mut rechecks = 0;
        while matches!(ending, Ending::Exited)
            && state.exit_code == Some(137)
            && state.oom_killed != Some(true)
            && rechecks < OOM_RECHECKS
        {
            tokio::time::sleep(OOM_RECHECK_PAUSE).await;
            state = inspect_state(&docker, id).await?;
            rechecks += 1;
        }
        guard.remove().await;

        let exit_code = state.exit_code;
        let overflowed = match ending {
            Ending::Overflow(stream) => Some(stream),
            _ if stdout.overflowed() => Some(OutputStream::Stdout),
            _ if stderr.overflowed() => Some(OutputStream::Stderr),
            _ => None,
        };
        let status = if overflowed.is_some() {
            Status::OutputLimit
        } else if state.oom_killed.unwrap_or(false) {
            Status::MemoryLimit
        } else if matches!(ending, Ending::Deadline) {
            Status::Timeout
        } else if exit_code == Some(0) {
            Status::Ok
        } else {
            Status::RuntimeError
        };
        let truncated = stdout.overflowed() || stderr.overflowed();
        Ok(StageOutcome {
            status,
            exit_code,
            signal: exit_code.and_then(signal_of_exit_code),
            stdout: stdout.into_text(),
            stderr: stderr.into_text(),
            truncated,
            overflowed,
            duration: ended - started,
        })
    }

    /// Removes the container without running anything in it.
    pub async fn remove(self) {
        self.guard.remove().await;
    }
}

async fn inspect_state(docker: &Docker, id: &str) -> Result<ContainerState, ExecError> {
    Ok(docker
        .inspect_container(id, None)
        .await
        .map_err(EngineError::from)?
        .state
        .unwrap_or_default())
}

/// Adds an output chunk to its stream; returns the stream if it overflowed.
fn collect(
    chunk: LogOutput,
    stdout: &mut CappedBuffer,
    stderr: &mut CappedBuffer,
) -> Option<OutputStream> {
    match chunk {
        LogOutput::StdOut { message } => stdout.push(&message).then_some(OutputStream::Stdout),
        LogOutput::StdErr { message } => stderr.push(&message).then_some(OutputStream::Stderr),
        LogOutput::StdIn { .. } | LogOutput::Console { .. } => None,
    }
}

/// Removes its container when dropped, whatever path the run took.
struct ContainerGuard {
    engine: Arc<Engine>,
    id: Option<String>,
}

impl ContainerGuard {
    fn new(engine: Arc<Engine>, id: String) -> Self {
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
    async fn remove(mut self) {
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
    pub fn new(engine: Arc<Engine>, name: String) -> Self {
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
            tracing::warn!(container = %id, error = %e, "could not remove a sandbox container")
        }
    }
}

/// Removes a volume, retrying for a few seconds while a container being
/// removed still uses it (the engine answers 409).
async fn remove_volume_patiently(engine: &Engine, name: &str) {
    for _ in 0..50 {
        match engine.remove_volume(name).await {
            Ok(()) => return,
            Err(e) if e.is_not_found() => return,
            Err(EngineError::Api { status: 409, .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => {
                tracing::warn!(volume = %name, error = %e, "could not remove a scratch volume");
                return;
            }
        }
    }
    tracing::warn!(volume = %name, "a scratch volume stayed in use; the next sweep will remove it");
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
