//! The run pipeline's front: the one seam every API dialect depends on.
//!
//! A dialect parses its request into a [`Job`], hands it to a [`Runner`]
//! and renders the [`Report`] (or the [`RunError`]) in its own words.
//! [`DockerRunner`] is the real one: [`admission`] (run slots and a bounded
//! queue), then the executor. Tests of the HTTP contract use a double.

pub(crate) mod admission;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::executor::{Executor, Interacted, Ran, Turns};
use crate::job::{Client, Job, JobLimits};
use crate::language::{Language, Registry};
use crate::live::Live;
use crate::metrics::{LanguageLabel, Metrics, ResultLabel, RunLabels};
use crate::outcome::{Outcome, StageResult, Timing};
use crate::sandbox::SandboxError;
use admission::{Admission, Refusal, Slot};

/// What a [`Runner`] answers for a job that ran (whatever the program did):
/// its compile stage, if any, and one run per input.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The language version that ran.
    pub(crate) language: Arc<Language>,
    /// The limits it ran under.
    pub(crate) limits: JobLimits,
    pub(crate) outcome: Outcome,
    /// How it was served (for response headers and the log).
    pub(crate) timing: Timing,
}

/// How an interactive job went (see [`Runner::interact`]).
#[derive(Debug, Clone)]
pub(crate) enum Interaction {
    /// The interactor did not compile (its report says how): the solution
    /// did not run.
    InteractorFailed(Report),
    /// The solution did not compile.
    SolutionFailed(Report),
    /// Both ran, once per test.
    Ran {
        solution: Box<Report>,
        interactor: Box<Report>,
    },
}

/// Why a job did not run: the service's trouble, never the program's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum RunError {
    /// Every run slot is taken and the queue is full, or the wait for a
    /// slot passed its bound.
    #[error("every run slot is busy and the queue is full")]
    Busy,
    /// The client already has its share of the slots running and of the
    /// queue waiting.
    #[error("this client already has its share of the run slots and of the queue in use")]
    ClientBusy,
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The Docker engine cannot be reached.
    #[error("{0}")]
    DockerUnavailable(String),
    /// The language's image is not on the engine.
    #[error("the image `{image}` of `{language}` is missing")]
    ImageMissing { image: String, language: String },
    /// The language's OCI runtime is not registered with the engine.
    #[error("the runtime `{runtime}` of `{language}` is not registered")]
    RuntimeMissing { runtime: String, language: String },
    /// Anything else: a fault of the service (or an engine answer it did
    /// not expect), described for the log.
    #[error("{0}")]
    Internal(String),
}

/// Whether runs can be served, for `/ready`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Readiness {
    /// Sentences; empty when ready.
    pub(crate) problems: Vec<String>,
    pub(crate) missing_images: Vec<String>,
    /// The languages served.
    pub(crate) languages: Vec<String>,
    /// Sandboxes waiting in the pool, per language name.
    pub(crate) pool: HashMap<String, usize>,
    /// What each pool aims at now, per language name.
    pub(crate) pool_target: HashMap<String, usize>,
}

/// Runs jobs. The HTTP layer knows nothing else of the pipeline.
pub(crate) trait Runner: Send + Sync + 'static {
    /// The languages served now.
    fn registry(&self) -> Arc<Registry>;

    /// Admits `job` (waiting in the queue if need be) and runs it:
    /// compiled once if its language compiles, then each input in a fresh
    /// sandbox (a batch's several at once, within a fair share of the run
    /// slots).
    fn run(&self, job: Job) -> impl Future<Output = Result<Report, RunError>> + Send;

    /// Runs `job` (of one input) as [`Runner::run`] does, streamed: fed
    /// `live`'s controls while it runs, saying its stages and output as
    /// they come.
    fn stream(&self, job: Job, live: Live)
    -> impl Future<Output = Result<Report, RunError>> + Send;

    /// Admits `solution` and runs it against `interactor` (one input of
    /// each per test): each compiled once, then for each test both at
    /// once, each in its own sandbox, the one's stdout relayed to the
    /// other's stdin both ways; a test's pair takes one run slot.
    fn interact(
        &self,
        solution: Job,
        interactor: Job,
    ) -> impl Future<Output = Result<Interaction, RunError>> + Send;

    /// Whether runs can be served now.
    fn readiness(&self) -> impl Future<Output = Readiness> + Send;

    /// Brings the gauges of `metrics` up to date (before a scrape).
    fn observe(&self, metrics: &Metrics) {
        let _ = metrics;
    }
}

/// The real runner: admission, then fresh Docker sandboxes.
#[derive(Debug)]
pub(crate) struct DockerRunner {
    registry: watch::Receiver<Arc<Registry>>,
    admission: Admission,
    executor: Executor,
    metrics: Arc<Metrics>,
    /// The last readiness probe: when, what it found, for which languages.
    readiness: tokio::sync::Mutex<
        Option<(
            std::time::Instant,
            crate::executor::Readiness,
            Arc<Registry>,
        )>,
    >,
}

impl DockerRunner {
    pub(crate) fn new(
        registry: watch::Receiver<Arc<Registry>>,
        admission: Admission,
        executor: Executor,
        metrics: Arc<Metrics>,
    ) -> DockerRunner {
        DockerRunner {
            registry,
            admission,
            executor,
            metrics,
            readiness: tokio::sync::Mutex::new(None),
        }
    }

    /// Takes a run slot for `job`, counting the wait.
    async fn admit(&self, job: &Job) -> Result<Slot, RunError> {
        let asked = std::time::Instant::now();
        let slot = self.admission.acquire(&job.client).await.map_err(refused)?;
        self.metrics
            .queue_wait_seconds
            .observe(asked.elapsed().as_secs_f64());
        Ok(slot)
    }

    /// Counts a finished stage of `language`.
    fn count(&self, language: &str, stage: &StageResult, status: &str) {
        let m = &self.metrics;
        let language = language.to_string();
        m.runs
            .get_or_create(&RunLabels {
                language: language.clone(),
                status: status.to_string(),
            })
            .inc();
        let label = LanguageLabel { language };
        m.run_seconds
            .get_or_create(&label)
            .observe(stage.duration.as_secs_f64());
        if let Some(cpu) = stage.usage.cpu_time {
            m.cpu_seconds
                .get_or_create(&label)
                .observe(cpu.as_secs_f64());
        }
        if let Some(peak) = stage.usage.memory_peak {
            m.memory_bytes.get_or_create(&label).observe(peak as f64);
        }
    }

    /// Counts a job's stages, and whether its sandbox came from the pool.
    fn count_report(&self, report: &Report) {
        let language = &report.language.name;
        match &report.outcome {
            Outcome::CompileFailed { compile } => self.count(language, compile, "compile_error"),
            Outcome::Ran { runs, .. } => {
                for run in runs.iter() {
                    self.count(language, run, run.status().as_str());
                }
            }
        }
        let result = report.timing.pool.as_str().to_string();
        self.metrics
            .pool_claims
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Admits `job`, and its turns: one at a time for one input, a fair
    /// share of the slots for a batch.
    async fn turns(&self, job: &Job) -> Result<JobTurns<'_>, RunError> {
        let own = self.admit(job).await?;
        let width = match job.inputs.len() {
            1 => 1,
            _ => self.admission.batch_share(),
        };
        Ok(JobTurns {
            admission: &self.admission,
            client: job.client.clone(),
            own: Arc::new(tokio::sync::Mutex::new(own)),
            width,
        })
    }

    /// Admits `job` and runs it (streamed with `live`).
    async fn run_with(&self, job: Job, live: Option<&Live>) -> Result<Report, RunError> {
        let turns = self.turns(&job).await?;
        let ran = self
            .executor
            .run(&job, &turns, live)
            .await
            .map_err(|e| refusal(e, &job.language.name))?;
        Ok(self.report(job, ran))
    }

    /// The report of `job` that `ran`, counted.
    fn report(&self, job: Job, ran: Ran) -> Report {
        let report = Report {
            language: job.language,
            limits: job.limits,
            outcome: ran.outcome,
            timing: ran.timing,
        };
        self.count_report(&report);
        report
    }

    /// Refuses every waiting and future job; runs holding a slot go on.
    pub(crate) fn close(&self) {
        self.admission.close();
        self.executor.close();
    }

    /// Runs executing now.
    pub(crate) fn running(&self) -> usize {
        self.admission.running()
    }

    /// Starts the executor's background work in `tasks` (see
    /// [`Executor::start`]), following `registry`, until `cancel`.
    pub(crate) fn start(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        registry: watch::Receiver<Arc<Registry>>,
        cancel: &tokio_util::sync::CancellationToken,
    ) {
        self.executor.start(tasks, registry, cancel);
    }

    /// Stops the runs in flight (the grace period is over).
    pub(crate) fn stop_runs(&self) {
        self.executor.stop_runs();
    }

    /// Removes everything the executor holds (the last step of shutdown).
    pub(crate) async fn shutdown(&self) {
        self.executor.shutdown().await;
    }
}

impl Runner for DockerRunner {
    fn registry(&self) -> Arc<Registry> {
        self.registry.borrow().clone()
    }

    async fn run(&self, job: Job) -> Result<Report, RunError> {
        self.run_with(job, None).await
    }

    async fn stream(&self, job: Job, live: Live) -> Result<Report, RunError> {
        self.run_with(job, Some(&live)).await
    }

    async fn interact(&self, solution: Job, interactor: Job) -> Result<Interaction, RunError> {
        let turns = self.turns(&solution).await?;
        let interacted = self
            .executor
            .interact(&solution, &interactor, &turns)
            .await
            .map_err(|e| refusal(e, &solution.language.name))?;
        drop(turns);
        Ok(match interacted {
            Interacted::InteractorFailed(ran) => {
                Interaction::InteractorFailed(self.report(interactor, ran))
            }
            Interacted::SolutionFailed(ran) => {
                Interaction::SolutionFailed(self.report(solution, ran))
            }
            Interacted::Ran {
                solution: ours,
                interactor: theirs,
            } => Interaction::Ran {
                solution: Box::new(self.report(solution, *ours)),
                interactor: Box::new(self.report(interactor, *theirs)),
            },
        })
    }

    /// Probes the engine at most once a second ([`READINESS_EVERY`]);
    /// callers in between get the last answer (and concurrent callers wait
    /// for one probe).
    async fn readiness(&self) -> Readiness {
        let mut last = self.readiness.lock().await;
        let registry = self.registry();
        let fresh = last.as_ref().is_some_and(|(at, _, of)| {
            at.elapsed() < READINESS_EVERY && Arc::ptr_eq(of, &registry)
        });
        if !fresh {
            self.metrics.readiness_probes.inc();
            let found = self.executor.readiness(&registry).await;
            *last = Some((std::time::Instant::now(), found, registry.clone()));
        }
        let (_, found, _) = last.as_ref().expect("just probed");
        Readiness {
            problems: found.problems.clone(),
            missing_images: found.missing_images.clone(),
            languages: registry.names(),
            pool: self.executor.pooled(),
            pool_target: self.executor.pool_targets(),
        }
    }

    fn observe(&self, metrics: &Metrics) {
        let (pooled, targets) = (self.executor.pooled(), self.executor.pool_targets());
        for name in self.registry().names() {
            let ready = pooled.get(&name).copied().unwrap_or(0);
            let target = targets.get(&name).copied().unwrap_or(0);
            let label = LanguageLabel { language: name };
            metrics.pool_ready.get_or_create(&label).set(ready as i64);
            metrics.pool_target.get_or_create(&label).set(target as i64);
        }
        metrics.containers_alive.set(self.executor.held() as i64);
        metrics.runs_in_flight.set(self.admission.running() as i64);
    }
}

/// How long a readiness probe's answer is reused.
pub(crate) const READINESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The turns of one job's runs: the slot the job was admitted with when
/// it is free, else one more, taken in turn with other clients' requests
/// (so that they come between a batch's runs).
struct JobTurns<'a> {
    admission: &'a Admission,
    client: Client,
    own: Arc<tokio::sync::Mutex<Slot>>,
    width: usize,
}

/// A held turn: the job's own slot, or one more (held, never read).
struct Turn {
    _own: Option<tokio::sync::OwnedMutexGuard<Slot>>,
    _more: Option<Slot>,
}

impl Turns for JobTurns<'_> {
    type Turn = Turn;

    fn width(&self) -> usize {
        self.width
    }

    async fn take(&self) -> Result<Turn, SandboxError> {
        tokio::select! {
            biased;
            own = self.own.clone().lock_owned() => Ok(Turn { _own: Some(own), _more: None }),
            more = self.admission.acquire_more(&self.client) => match more {
                Ok(slot) => Ok(Turn { _own: None, _more: Some(slot) }),
                // Only a closed admission refuses one more.
                Err(_) => Err(SandboxError::Stopped),
            },
        }
    }
}

/// Why admission refused.
fn refused(refusal: Refusal) -> RunError {
    match refusal {
        Refusal::QueueFull | Refusal::QueueTimeout => RunError::Busy,
        Refusal::ClientQueueFull => RunError::ClientBusy,
        Refusal::Closed => RunError::ShuttingDown,
    }
}

/// Why a job of `language` did not run, from the executor's account: only
/// an engine that cannot be reached is "Docker unavailable"; any other
/// failure (an engine answer not expected, a fault of the service's own)
/// is internal.
fn refusal(e: SandboxError, language: &str) -> RunError {
    match e {
        SandboxError::Engine(e) if e.is_unreachable() => RunError::DockerUnavailable(e.to_string()),
        SandboxError::ImageMissing { image } => RunError::ImageMissing {
            image,
            language: language.to_string(),
        },
        SandboxError::RuntimeMissing { runtime } => RunError::RuntimeMissing {
            runtime,
            language: language.to_string(),
        },
        SandboxError::Stopped => RunError::ShuttingDown,

        e @ (SandboxError::Engine(_)
        | SandboxError::Weakened(_)
        | SandboxError::NeverStarted(_)
        | SandboxError::Unreported(_)
        | SandboxError::Internal(_)) => RunError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineError, Step};

    #[test]
    fn only_an_unreachable_engine_is_docker_unavailable() {
        let unreachable = EngineError::unreachable(Step::Start, "connection refused");
        assert!(matches!(
            refusal(SandboxError::Engine(unreachable), "python"),
            RunError::DockerUnavailable(_)
        ));
        let refused = EngineError::answered(
            Step::Create,
            "python:3.13-slim",
            Some(400),
            "Range of CPUs is from 0.01 to 2.00",
        );
        match refusal(SandboxError::Engine(refused), "python") {
            RunError::Internal(cause) => {
                assert!(
                    cause.starts_with("container create python:3.13-slim"),
                    "{cause}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            refusal(SandboxError::Internal("a bug".into()), "python"),
            RunError::Internal(_)
        ));
        assert!(matches!(
            refusal(SandboxError::Weakened("memory".into()), "python"),
            RunError::Internal(_)
        ));
        assert_eq!(
            refusal(SandboxError::Stopped, "python"),
            RunError::ShuttingDown
        );
        assert_eq!(
            refusal(
                SandboxError::ImageMissing {
                    image: "x:1".into()
                },
                "lua"
            ),
            RunError::ImageMissing {
                image: "x:1".into(),
                language: "lua".into()
            }
        );
    }
}
