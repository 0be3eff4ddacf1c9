//! The executor: fresh, hardened containers for each run, driven through
//! the Engine API, always removed.
//!
//! An interpreted language's run is one [`sandbox::Sandbox`]: created
//! ([`spec::container`]), attached before it starts (so no output is lost),
//! fed the files, arguments and stdin ([`input`]), read under its caps
//! ([`output`]) and its deadline, then removed. A compiled language's run
//! is two sandboxes sharing a tmpfs volume as their working directory: the
//! run container starts first and waits (holding the volume mounted), the
//! compile container writes the files and compiles them under its own
//! limits, and only then is the run container fed its arguments and stdin,
//! so that the run's limits count from the run's start. A deadline or an
//! output cap kills a container and keeps the output read so far; exit
//! codes and the out-of-memory flag come from the container's state. Guards
//! remove containers and volumes on every path (an error, a panic, a
//! dropped request).

pub mod input;
pub mod output;
pub mod sandbox;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError};
use crate::language::Language;
use crate::limits::Limits;
use input::SourceFile;
use sandbox::{Sandbox, StageBounds, VolumeGuard};
pub use spec::Owner;
use spec::{Stage, Work};

/// One run to execute, already validated.
#[derive(Debug, Clone)]
pub struct Job {
    pub language: Arc<Language>,
    /// Files for the working directory; the first is the main source file.
    pub files: Vec<SourceFile>,
    pub args: Vec<String>,
    pub stdin: Vec<u8>,
    /// The run's wall-clock limit: the language's, or lower if the request
    /// asked.
    pub wall_time: Duration,
}

/// How a stage (or, for `CompileError`, a whole run) ended.
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
    /// The compiler exited with an error, so nothing ran (a run's status
    /// only; the compile stage itself reports `runtime_error`).
    CompileError,
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
            Status::CompileError => "compile_error",
        }
    }
}

/// Which stream went over its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// What one stage (compile or run) did.
#[derive(Debug, Clone)]
pub struct StageOutcome {
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
    pub overflowed: Option<OutputStream>,
    /// From the moment the stage was fed to the end of the program.
    pub duration: Duration,
}

/// What a run did: its compile stage (compiled languages) and its run
/// (absent when the compile stage failed).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub compile: Option<StageOutcome>,
    pub run: Option<StageOutcome>,
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

    /// Runs one job (compiling it first if its language compiles) and
    /// removes everything it made.
    pub async fn run(&self, job: Job) -> Result<Outcome, ExecError> {
        if self.stop.is_cancelled() {
            return Err(ExecError::Stopped);
        }
        let result = if job.language.compile.is_some() {
            self.compiled(job).await
        } else {
            self.interpreted(job).await
        };
        if let Err(ExecError::Engine(e)) = &result {
            self.engine.note::<()>(Err(e.clone())).ok();
        }
        result
    }

    async fn interpreted(&self, job: Job) -> Result<Outcome, ExecError> {
        let language = &job.language;
        let body = spec::container(language, Stage::Run, &self.owner, &Work::Tmpfs);
        let sandbox = Sandbox::start(&self.engine, body, &language.image).await?;
        let payload = input::encode(&job.files, &job.args, &job.stdin);
        let bounds = bounds(&language.limits, job.wall_time);
        let run = sandbox.execute(payload, bounds, &self.stop).await?;
        Ok(Outcome {
            compile: None,
            run: Some(run),
        })
    }

    async fn compiled(&self, job: Job) -> Result<Outcome, ExecError> {
        let language = &job.language;
        let name = format!("code-runner-{}", uuid::Uuid::new_v4().simple());
        self.engine
            .create_tmpfs_volume(
                &name,
                &spec::volume_options(language),
                spec::labels(&self.owner, language),
            )
            .await?;
        let volume = VolumeGuard::new(self.engine.clone(), name);
        let work = Work::Volume(volume.name().to_string());
        // The run container starts first and waits for its payload: while it
        // runs, the volume's tmpfs stays mounted, with what the compile
        // container leaves in it.
        let body = spec::container(language, Stage::Run, &self.owner, &work);
        let runner = Sandbox::start(&self.engine, body, &language.image).await?;
        let body = spec::container(language, Stage::Compile, &self.owner, &work);
        let compiler = Sandbox::start(&self.engine, body, &language.image).await?;
        let limits = &language.compile_limits;
        let compile = compiler
            .execute(
                input::encode(&job.files, &[], b""),
                bounds(limits, limits.wall_time()),
                &self.stop,
            )
            .await?;
        let run = if compile.status == Status::Ok {
            let payload = input::encode(&[], &job.args, &job.stdin);
            let bounds = bounds(&language.limits, job.wall_time);
            Some(runner.execute(payload, bounds, &self.stop).await?)
        } else {
            runner.remove().await;
            None
        };
        volume.remove().await;
        Ok(Outcome {
            compile: Some(compile),
            run,
        })
    }
}

fn bounds(limits: &Limits, wall_time: Duration) -> StageBounds {
    StageBounds {
        wall_time,
        output_bytes: limits.output_bytes,
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
