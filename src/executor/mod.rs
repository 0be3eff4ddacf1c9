//! The executor: runs a `Job` in fresh, hardened containers and says how
//! each stage ended; owns everything it makes until it is removed.
//!
//! An interpreted language's run is one sandbox (`Sandbox`): created
//! (`spec`), attached before it starts (so no output is lost), fed the
//! files, arguments and stdin (`protocol`), read under its caps
//! (`output`) and its deadline, and judged (`verdict`). A compiled
//! language's run is two sandboxes sharing a tmpfs volume as their working
//! directory: the run container starts first and waits (holding the volume
//! mounted), the compile container writes the files and compiles them under
//! its own limits, and only then is the run container fed its arguments and
//! stdin, so that the run's limits count from the run's start. Everything a
//! run makes is in [`custody`] from its creation, which removes it in the
//! background once the answer is known, and on every other path. The
//! `pool` keeps sandboxes started ahead of demand.

mod batch;
pub mod custody;
mod launcher;
mod output;
mod pair;
pub mod pool;
mod protocol;
pub(crate) mod sandbox;
mod spec;
pub(crate) mod uids;
pub(crate) mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::EngineError;
use crate::job::{Job, Stage};
use crate::language::Registry;
use crate::limits::Limits;
pub use batch::Built;
use custody::{Custody, JANITOR_EVERY, Sweep};
use launcher::{Launch, Launcher};
use pair::Pair;
use pool::Pool;
pub use pool::PoolSettings;
use sandbox::{Payload, Phase, Phases, StageBounds};
use spec::Start;
use uids::Uids;
use verdict::{Outcome, Status};

/// How often the start-up sweep retries while Docker cannot be reached.
const SWEEP_RETRY: Duration = Duration::from_secs(2);
/// How long shutdown waits for removals still queued.
const FINAL_REMOVALS: Duration = Duration::from_secs(5);

/// A run that could not be carried out (not the program's failure).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the image `{image}` is not on the Docker engine")]
    ImageMissing { image: String },
    #[error("the OCI runtime `{runtime}` is not registered with the Docker engine")]
    RuntimeMissing { runtime: String },
    #[error("the engine weakened the sandbox, so the run was refused: {0}")]
    Weakened(String),
    #[error("the service is shutting down; the run was stopped")]
    Stopped,
    /// The sandbox ended before it started the program (its stderr).
    #[error("the sandbox ended before it started the program: {0}")]
    NeverStarted(String),
    /// A fault of the service's own.
    #[error("{0}")]
    Internal(String),
}

/// Whether a run's sandbox came from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolUse {
    /// A sandbox that was waiting.
    Hit,
    /// Started for the run (none was waiting, or the language has no pool).
    Miss,
}

/// How a run was served, for response headers and logs.
#[derive(Debug, Clone)]
pub struct Timing {
    pub pool: PoolUse,
    /// Where the run's time went (the run stage's, for a compiled
    /// language).
    pub phases: Phases,
    /// Everything from the claim (or the create) to the outcome: Engine API
    /// calls and waiting for the program.
    pub docker: Duration,
}

/// What [`Executor::run`] gives.
#[derive(Debug, Clone)]
pub struct Ran {
    pub outcome: Outcome,
    pub timing: Timing,
}

/// Where a run's problems with the engine stand, for `/ready`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readiness {
    /// Sentences; empty when runs can be served.
    pub problems: Vec<String>,
    pub missing_images: Vec<String>,
}

/// Runs jobs in fresh containers on one engine.
#[derive(Debug, Clone)]
pub struct Executor {
    custody: Arc<Custody>,
    launcher: Arc<Launcher>,
    pool: Arc<Pool>,
    /// Cancelled at shutdown, when the grace period is over.
    stop: CancellationToken,
    /// Cancelled at the very end of shutdown, once removals are flushed.
    removals: CancellationToken,
}

impl Executor {
    /// An executor whose sandboxes run as `uids`, and whose pool keeps
    /// Pools sized and refilled as `pool` says.
    pub fn new(custody: Arc<Custody>, uids: Arc<Uids>, pool: PoolSettings) -> Executor {
        let launcher = Arc::new(Launcher::new(custody.clone(), uids));
        Executor {
            pool: Pool::new(launcher.clone(), pool),
            launcher,
            custody,
            stop: CancellationToken::new(),
            removals: CancellationToken::new(),
        }
    }

    /// Starts the background work in `tasks`: the janitor, the start-up
    /// sweep, the pool's refills and the pulls of missing images (both
    /// following `registry`), until `cancel`; and the removal queue, until
    /// [`Executor::shutdown`] has flushed it.
    pub fn start(
        &self,
        tasks: &mut JoinSet<()>,
        registry: watch::Receiver<Arc<Registry>>,
        cancel: &CancellationToken,
    ) {
        tasks.spawn(self.custody.clone().run(self.removals.clone()));
        tasks.spawn(janitor(self.custody.clone(), cancel.clone()));
        tasks.spawn(prepare(
            self.custody.clone(),
            registry.clone(),
            cancel.clone(),
        ));
        tasks.spawn(self.pool.clone().run(registry, cancel.clone()));
    }

    /// Stops refilling the pool (shutdown begins).
    pub fn close(&self) {
        self.pool.close();
    }

    /// Stops the runs in flight (the grace period is over): each answers
    /// [`ExecError::Stopped`] and removes its containers.
    pub fn stop_runs(&self) {
        self.stop.cancel();
    }

    /// Ends the executor's work: the pool's sandboxes and every queued
    /// removal go, and then whatever this process made that is left.
    pub async fn shutdown(&self) {
        self.pool.shutdown().await;
        self.custody.flush(FINAL_REMOVALS).await;
        self.launcher.release_tools().await;
        self.custody.flush(FINAL_REMOVALS).await;
        match self.custody.reconcile(Sweep::ThisBoot).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed this process's remaining containers"),
            Err(e) => tracing::warn!(error = %e, "could not sweep this process's containers"),
        }
        self.removals.cancel();
    }

    /// Sandboxes waiting in the pool, per language name.
    pub fn pooled(&self) -> std::collections::HashMap<String, usize> {
        self.pool.ready()
    }

    /// What each language's pool aims at now.
    pub fn pool_targets(&self) -> std::collections::HashMap<String, usize> {
        self.pool.targets()
    }

    /// Containers and volumes held now (pooled, running, being removed).
    pub fn held(&self) -> usize {
        self.custody.held()
    }

    /// Whether runs of `registry`'s languages can be served: the engine
    /// answers and every image is present.
    pub async fn readiness(&self, registry: &Registry) -> Readiness {
        let engine = self.custody.engine();
        let mut readiness = Readiness::default();
        let runtimes = match engine.runtimes().await {
            Ok(runtimes) => runtimes,
            Err(e) => {
                readiness.problems.push(e.to_string());
                return readiness;
            }
        };
        for language in registry.languages() {
            if let Some(runtime) = language.runtime.as_ref().filter(|r| !runtimes.contains(r)) {
                readiness.problems.push(format!(
                    "the OCI runtime `{runtime}` (for {}) is not registered with the engine",
                    language.label()
                ));
            }
        }

        for image in registry.images() {
            match engine.image_present(&image).await {
                Ok(true) => {}
                Ok(false) => {
                    readiness.problems.push(format!(
                        "the image `{image}` (for {}) is missing",
                        registry.users_of(&image).join(", ")
                    ));
                    readiness.missing_images.push(image);
                }
                Err(e) => readiness.problems.push(e.to_string()),
            }
        }
        readiness
    }

    /// Runs one job (compiling it first if its language compiles); what it
    /// made is removed in the background.
    pub async fn run(&self, job: &Job) -> Result<Ran, ExecError> {
        if self.stop.is_cancelled() {
            return Err(ExecError::Stopped);
        }
        let _in_flight = self.custody.run_in_flight();
        match &job.limits.compile {
            Some(compile) => self.compiled(job, compile).await,
            None => self.interpreted(job).await,
        }
    }

    async fn interpreted(&self, job: &Job) -> Result<Ran, ExecError> {
        let began = Instant::now();
        let payload = || {
            let files: Vec<_> = job.files.all().collect();
            Payload::new(
                Some(job.limits.run.cpu_time()),
                &files,
                &job.args,
                &job.stdin,
            )
        };
        let bounds = bounds(&job.limits.run);
        // A pooled sandbox holds the language's own limits: a job that
        // lowers one the container holds gets a sandbox of its own.
        let pooled = job
            .limits
            .run
            .same_sandbox(&job.language.limits)
            .then(|| self.pool.claim(&job.language))
            .flatten();
        if let Some(sandbox) = pooled {
            // Its creation and start were the pool's, before this request.
            let mut phases = Phases::new();
            match sandbox.execute(Some(payload()), bounds, &self.stop).await {
                Ok(ran) => {
                    phases.extend(ran.phases);
                    return Ok(ran_alone(ran.result, PoolUse::Hit, phases, began));
                }
                // It died while waiting, after the claim: the program never
                // ran, so it runs in a sandbox of its own.
                Err(ExecError::NeverStarted(_)) => {
                    tracing::warn!(language = %job.language.label(), "a pooled sandbox died before its program started; running it cold");
                }
                Err(e) => return Err(e),
            }
        }
        // A cold sandbox gets its payload before it starts, so that the
        // program starts with its process.
        let uid = self.launcher.lease().await;
        let launch = self.launch(job, Stage::Run, &job.limits.run, None);
        let sandbox = self.launcher.launch(launch, &uid, Some(payload())).await?;
        let mut phases = sandbox.start_phases.clone();
        let ran = sandbox.execute(None, bounds, &self.stop).await?;
        phases.extend(ran.phases);
        Ok(ran_alone(ran.result, PoolUse::Miss, phases, began))
    }

    /// A compiled language's run: a pair of sandboxes from the pool when
    /// one waits (and the job keeps the language's own limits, which the
    /// pair was made with), else made now; the compile, then the run.
    async fn compiled(&self, job: &Job, compile: &Limits) -> Result<Ran, ExecError> {
        let began = Instant::now();
        let language = &job.language;
        let own_limits = language
            .compile
            .as_ref()
            .is_some_and(|c| c.limits.same_sandbox(compile))
            && job.limits.run.same_sandbox(&language.limits);
        let pooled = if own_limits {
            self.pool.claim_pair(language)
        } else {
            None
        };
        if let Some(pair) = pooled {
            match self.run_pair(job, compile, pair, began, PoolUse::Hit).await {
                // A pooled sandbox died after the claim: the program never
                // ran, so it runs in a pair of its own.
                Err(ExecError::NeverStarted(_)) => {
                    tracing::warn!(language = %language.label(), "a pooled compile sandbox died before its compiler started; compiling cold");
                }
                other => return other,
            }
        }
        let pair = Pair::make(&self.launcher, language, compile, &job.limits.run, false).await?;
        self.run_pair(job, compile, pair, began, PoolUse::Miss)
            .await
    }

    async fn run_pair(
        &self,
        job: &Job,
        compile: &Limits,
        pair: Pair,
        began: Instant,
        pool: PoolUse,
    ) -> Result<Ran, ExecError> {
        let (compiler, runner, volume) = pair.take();
        let files: Vec<_> = job.files.all().collect();
        let payload = Payload::new(Some(compile.cpu_time()), &files, &job.compile_args, b"");
        let compiled = match compiler
            .execute(Some(payload), bounds(compile), &self.stop)
            .await
        {
            Ok(compiled) => compiled,
            Err(e) => {
                self.custody.release(vec![runner.into_container(), volume]);
                return Err(e);
            }
        };
        let mut leftovers = vec![compiled.container];
        // The compile's own phases, as one: the compiler's time.
        let compile_time = compiled.phases.iter().map(|(_, d)| *d).sum();
        let mut phases = vec![(Phase::Compile, compile_time)];
        let (outcome, run_phases) = if compiled.result.status() == Status::Ok {
            let cpu = Some(job.limits.run.cpu_time());
            let payload = Payload::new(cpu, &[], &job.args, &job.stdin);
            let ran = match runner
                .execute(Some(payload), bounds(&job.limits.run), &self.stop)
                .await
            {
                Ok(ran) => ran,
                Err(e) => {
                    leftovers.push(volume);
                    self.custody.release(leftovers);
                    return Err(e);
                }
            };
            leftovers.push(ran.container);
            let outcome = Outcome::Ran {
                compile: Some(compiled.result),
                run: ran.result,
            };
            (outcome, ran.phases)
        } else {
            leftovers.push(runner.into_container());
            let outcome = Outcome::CompileFailed {
                compile: compiled.result,
            };
            (outcome, Vec::new())
        };
        leftovers.push(volume);
        self.custody.release(leftovers);
        phases.extend(run_phases);
        Ok(Ran {
            outcome,
            timing: Timing {
                pool,
                phases,
                docker: began.elapsed(),
            },
        })
    }

    /// A sandbox of `job` for `stage`.
    fn launch<'a>(
        &self,
        job: &'a Job,
        stage: Stage,
        limits: &'a Limits,
        volume: Option<&'a str>,
    ) -> Launch<'a> {
        Launch {
            language: &job.language,
            stage,
            limits,
            volume,
            build: None,
            start: Start::Cold,
        }
    }
}

/// What an interpreted language's run gives.
fn ran_alone(result: verdict::StageResult, pool: PoolUse, phases: Phases, began: Instant) -> Ran {
    Ran {
        outcome: Outcome::Ran {
            compile: None,
            run: result,
        },
        timing: Timing {
            pool,
            phases,
            docker: began.elapsed(),
        },
    }
}

fn bounds(limits: &Limits) -> StageBounds {
    StageBounds {
        wall_time: limits.wall_time(),
        output_bytes: limits.output_cap(),
    }
}

/// Every [`JANITOR_EVERY`], removes what this process made and no longer
/// holds: a container or volume whose removal failed (the engine was away,
/// say) does not outlive the next pass or two.
async fn janitor(custody: Arc<Custody>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(JANITOR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        match custody.reconcile(Sweep::Unheld).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                removed = n,
                "removed containers or volumes whose removal had failed"
            ),
            Err(e) => tracing::debug!(error = %e, "the janitor could not look"),
        }
    }
}

/// At start: removes what earlier processes of this instance left behind
/// (retrying until Docker answers); then, now and whenever the languages
/// change, pulls the images they need that the engine lacks.
async fn prepare(
    custody: Arc<Custody>,
    mut registry: watch::Receiver<Arc<Registry>>,
    cancel: CancellationToken,
) {
    loop {
        match custody.reconcile(Sweep::EarlierBoots).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(removed = n, "removed containers left by an earlier process");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "cannot sweep leftover containers yet; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(SWEEP_RETRY) => {}
            () = cancel.cancelled() => return,
        }
    }
    loop {
        let languages = registry.borrow_and_update().clone();
        tokio::select! {
            () = pull_missing_images(&custody, &languages) => {}
            () = cancel.cancelled() => return,
        }
        tokio::select! {
            changed = registry.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
    }
}

/// Pulls, one after the other, every image of `registry` the engine lacks.
/// A failed pull (no registry reachable, say) is logged, and `/ready` keeps
/// naming the image as missing.
async fn pull_missing_images(custody: &Custody, registry: &Registry) {
    let engine = custody.engine();
    for image in registry.images() {
        match engine.image_present(&image).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(%image, "image missing; pulling it");
                match engine.pull(&image).await {
                    Ok(()) => tracing::info!(%image, "image pulled"),
                    Err(e) => tracing::warn!(%image, error = %e, "could not pull the image"),
                }
            }
            Err(e) => tracing::warn!(%image, error = %e, "cannot check the image"),
        }
    }
}
