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
//! codes and out-of-memory kills come from the bootstrap's trailers (the
//! latter counted by the container's memory cgroup), or else from the
//! container's state. Once the answer is known,
//! the [`reaper`] removes containers and volumes in the background; guards
//! remove them on every other path (an error, a panic, a dropped request).
//! The [`pool`] keeps containers started ahead of demand.

pub mod input;
pub mod output;
pub mod pool;
pub mod reaper;
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
use pool::Pool;
use reaper::{Leftovers, Reaper};
use sandbox::{Executed, Payload, Sandbox, StageBounds, VolumeGuard};
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exited with code 0.
    #[default]
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
    /// Whether the run's container came from the pool.
    pub pooled: bool,
    /// Time spent in Engine API calls and waiting for the program.
    pub docker_time: Duration,
    /// That time in phases (create, attach, start, run, state), where known.
    pub phases: Vec<(&'static str, Duration)>,
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
    pool: Arc<Pool>,
    reaper: Arc<Reaper>,
}

impl Executor {
    pub fn new(
        engine: Arc<Engine>,
        owner: Owner,
        stop: CancellationToken,
        pool: Arc<Pool>,
    ) -> Self {
        Executor {
            engine,
            owner,
            stop,
            pool,
            reaper: Arc::new(Reaper::new()),
        }
    }

    /// The queue of removals.
    pub fn reaper(&self) -> &Arc<Reaper> {
        &self.reaper
    }

    /// The pool of started containers.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
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
        let _in_flight = self.reaper.in_flight();
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
        let payload = Payload::new(&job.files, &job.args, &job.stdin);
        let began = std::time::Instant::now();
        let (sandbox, payload, pooled, mut phases) = match self.pool.claim(language) {
            Some(sandbox) => (sandbox, Some(payload), true, Vec::new()),
            None => {
                // A cold container gets its payload before it starts, so the
                // program starts with its process.
                let uid = spec::next_uid();
                let body =
                    spec::container(language, Stage::Run, &self.owner, &Work::Tmpfs, uid, false);
                let sandbox =
                    Sandbox::start_fed(&self.engine, body, &language.image, Some(payload)).await?;
                let phases = sandbox.start_phases.to_vec();
                (sandbox, None, false, phases)
            }
        };
        let bounds = bounds(&language.limits, job.wall_time);
        let Executed {
            outcome,
            container,
            run_phases,
            ..
        } = sandbox.execute(payload, bounds, &self.stop).await?;
        // From the claim (or the create) to the outcome: all of it is Engine
        // API calls and waiting for the program.
        let docker_time = began.elapsed();
        phases.extend(run_phases);
        self.reaper.remove(Leftovers {
            containers: vec![container],
            volume: None,
        });
        Ok(Outcome {
            compile: None,
            run: Some(outcome),
            pooled,
            docker_time,
            phases,
        })
    }

    async fn compiled(&self, job: Job) -> Result<Outcome, ExecError> {
        let language = &job.language;
        let name = format!("code-runner-{}", uuid::Uuid::new_v4().simple());
        let began = std::time::Instant::now();
        // The guard first: if this run is dropped while the volume is being
        // created, the guard still removes it.
        let volume = VolumeGuard::new(self.engine.clone(), name);
        // One user for the run: the compile container writes what the run
        // container reads.
        let uid = spec::next_uid();
        self.engine
            .create_tmpfs_volume(
                volume.name(),
                &spec::volume_options(language, uid),
                spec::labels(&self.owner, language),
            )
            .await?;
        let work = Work::Volume(volume.name().to_string());
        // The run container starts first and waits for its payload: while it
        // runs, the volume's tmpfs stays mounted, with what the compile
        // container leaves in it.
        let body = spec::container(language, Stage::Run, &self.owner, &work, uid, false);
        let runner = Sandbox::start(&self.engine, body, &language.image).await?;
        let body = spec::container(language, Stage::Compile, &self.owner, &work, uid, false);
        let compiler = Sandbox::start(&self.engine, body, &language.image).await?;
        let limits = &language.compile_limits;
        let compiled = compiler
            .execute(
                Some(Payload::new(&job.files, &[], b"")),
                bounds(limits, limits.wall_time()),
                &self.stop,
            )
            .await?;
        let mut leftovers = Leftovers {
            containers: vec![compiled.container],
            volume: None,
        };
        let run = if compiled.outcome.status == Status::Ok {
            let bounds = bounds(&language.limits, job.wall_time);
            let payload = Payload::new(&[], &job.args, &job.stdin);
            let ran = runner.execute(Some(payload), bounds, &self.stop).await?;
            leftovers.containers.push(ran.container);
            Some(ran.outcome)
        } else {
            leftovers.containers.push(runner.into_container());
            None
        };
        leftovers.volume = Some(volume);
        self.reaper.remove(leftovers);
        Ok(Outcome {
            compile: Some(compiled.outcome),
            run,
            pooled: false,
            docker_time: began.elapsed(),
            phases: Vec::new(),
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
