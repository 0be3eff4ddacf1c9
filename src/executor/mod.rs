//! The executor: one fresh, hardened container per run, driven through the
//! Engine API, always removed.
//!
//! A run creates the container ([`spec::container`]), attaches to it before
//! starting it (so no output is lost), starts it, streams the files,
//! arguments and stdin in ([`input`]) while reading stdout and stderr under
//! their caps ([`output`]), and waits for it under the service's own
//! deadline. A deadline or an output cap kills the container and keeps the
//! output read so far. The exit code and the out-of-memory flag are read
//! from the container's state; then the container is removed. A
//! [`ContainerGuard`] removes it on every other path (an error, a panic, a
//! dropped request).

pub mod input;
pub mod output;
pub mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{AttachContainerOptionsBuilder, KillContainerOptionsBuilder};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError};
use crate::language::Language;
use input::SourceFile;
use output::CappedBuffer;
pub use spec::Owner;

/// How long to wait for a killed container to stop, and for the rest of its
/// output once it has stopped.
const SETTLE: Duration = Duration::from_secs(5);

/// One run to execute, already validated.
#[derive(Debug, Clone)]
pub struct Job {
    pub language: Arc<Language>,
    /// Files for the working directory; the first is the main source file.
    pub files: Vec<SourceFile>,
    pub args: Vec<String>,
    pub stdin: Vec<u8>,
    /// The wall-clock limit: the language's, or lower if the request asked.
    pub wall_time: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exited with code 0.
    Ok,
    /// Exited with another code, or was killed by a signal of its own.
    RuntimeError,
    /// Still running at the deadline; killed.
    Timeout,
    /// Killed by the kernel for going over the memory limit.
    MemoryLimit,
    /// Wrote more than the cap to stdout or stderr; killed.
    OutputLimit,
}

impl Status {
    /// The status as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RuntimeError => "runtime_error",
            Status::Timeout => "timeout",
            Status::MemoryLimit => "memory_limit",
            Status::OutputLimit => "output_limit",
        }
    }
}

/// Which stream went over its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The container's exit status; 128+N when signal N ended it.
    pub exit_code: Option<i64>,
    /// The name of the signal that ended the program, if one did.
    pub signal: Option<&'static str>,
    pub stdout: String,
    pub stderr: String,
    /// Whether either stream was cut at its cap.
    pub truncated: bool,
    /// The stream that went over its cap, if one did.
    pub overflowed: Option<Stream>,
    /// From the start of the container to the end of the program.
    pub duration: Duration,
}

/// A run that could not be carried out (not the program's failure).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the image `{image}` is not on the Docker engine")]
    ImageMissing { image: String },
    #[error("the engine weakened the sandbox, so the run was refused: {0}")]
    Weakened(String),
    #[error("the service is shutting down; the run was stopped")]
    Stopped,
}

/// Runs jobs in fresh containers on one engine.
#[derive(Debug, Clone)]
pub struct Executor {
    engine: Arc<Engine>,
    owner: Owner,
    /// Cancelled at shutdown, when the grace period is over.
    stop: CancellationToken,
}

/// Why the read loop stopped.
enum Ending {
    Exited,
    Deadline,
    Overflow(Stream),
    Stopped,
}

impl Executor {
    pub fn new(engine: Arc<Engine>, owner: Owner, stop: CancellationToken) -> Self {
        Executor {
            engine,
            owner,
            stop,
        }
    }

    /// Who this executor's containers belong to.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// Runs one job to its end and removes its container.
    pub async fn run(&self, job: Job) -> Result<Outcome, ExecError> {
        let result = self.run_inner(job).await;
        if let Err(ExecError::Engine(e)) = &result {
            self.engine.note::<()>(Err(e.clone())).ok();
        }
        result
    }

    async fn run_inner(&self, job: Job) -> Result<Outcome, ExecError> {
        if self.stop.is_cancelled() {
            return Err(ExecError::Stopped);
        }
        let docker = self.engine.client().await?;
        let language = &job.language;
        let body = spec::container(language, &self.owner);
        // Created in a task of its own: if this run is dropped (its client
        // went away) while the engine creates the container, the task still
        // receives the id, and the guard it returns removes the container.
        let create = {
            let docker = docker.clone();
            let engine = self.engine.clone();
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
                    image: language.image.clone(),
                },
                e => ExecError::Engine(e),
            })?;
        let id = guard.id().to_string();
        let id = id.as_str();
        if !warnings.is_empty() {
            // A warning can mean a limit was silently dropped: fail closed.
            return Err(ExecError::Weakened(warnings.join("; ")));
        }

        let attach = docker
            .attach_container(
                id,
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
            .start_container(id, None)
            .await
            .map_err(EngineError::from)?;
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + job.wall_time);

        let payload = input::encode(&job.files, &job.args, &job.stdin);
        let mut writer = attach.input;
        let feeder = tokio::spawn(async move {
            // The program may exit without reading: a broken pipe is fine.
            if writer.write_all(&payload).await.is_ok() {
                let _ = writer.shutdown().await;
            }
        });
        let _feeder = AbortOnDrop(feeder);

        let mut output = attach.output;
        let mut wait = Box::pin(docker.wait_container(id, None));
        let mut stdout = CappedBuffer::new(language.limits.output_bytes);
        let mut stderr = CappedBuffer::new(language.limits.output_bytes);
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
                _ = self.stop.cancelled() => break Ending::Stopped,
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
        let stop = async {
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
        let (stopped, _) = tokio::join!(stop, tokio::time::timeout(SETTLE, drain));
        stopped?;
        if matches!(ending, Ending::Stopped) {
            guard.remove().await;
            return Err(ExecError::Stopped);
        }

        let state = docker
            .inspect_container(id, None)
            .await
            .map_err(EngineError::from)?
            .state
            .unwrap_or_default();
        guard.remove().await;

        let exit_code = state.exit_code;
        let oom_killed = state.oom_killed.unwrap_or(false);
        let overflowed = match ending {
            Ending::Overflow(stream) => Some(stream),
            _ if stdout.overflowed() => Some(Stream::Stdout),
            _ if stderr.overflowed() => Some(Stream::Stderr),
            _ => None,
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
        let truncated = stdout.overflowed() || stderr.overflowed();
        Ok(Outcome {
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
}

/// Adds an output chunk to its stream; returns the stream if it overflowed.
fn collect(
    chunk: LogOutput,
    stdout: &mut CappedBuffer,
    stderr: &mut CappedBuffer,
) -> Option<Stream> {
    match chunk {
        LogOutput::StdOut { message } => stdout.push(&message).then_some(Stream::Stdout),
        LogOutput::StdErr { message } => stderr.push(&message).then_some(Stream::Stderr),
        LogOutput::StdIn { .. } | LogOutput::Console { .. } => None,
    }
}

/// The signal behind an exit status of 128+N, as the init process and the
/// shell report a program killed by signal N.
pub fn signal_of_exit_code(code: i64) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match code {
        129..=159 => Some(NAMES[(code - 129) as usize]),
        _ => None,
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
            remove_logged(&self.engine, &id).await;
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let engine = self.engine.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { remove_logged(&engine, &id).await });
            } else {
                tracing::warn!(container = %id, "no runtime to remove the container; the next sweep will");
            }
        }
    }
}

async fn remove_logged(engine: &Engine, id: &str) {
    match engine.remove_container(id).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "could not remove a sandbox container")
        }
    }
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

    #[test]
    fn exit_statuses_above_128_name_their_signal() {
        assert_eq!(signal_of_exit_code(137), Some("SIGKILL"));
        assert_eq!(signal_of_exit_code(139), Some("SIGSEGV"));
        assert_eq!(signal_of_exit_code(153), Some("SIGXFSZ"));
        assert_eq!(signal_of_exit_code(1), None);
        assert_eq!(signal_of_exit_code(0), None);
        assert_eq!(signal_of_exit_code(128), None);
        assert_eq!(signal_of_exit_code(255), None);
    }
}
