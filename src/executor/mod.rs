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

pub mod custody;
mod launcher;
mod output;
mod pair;
pub mod pool;
mod protocol;
mod runs;
pub(crate) mod sandbox;
mod spec;
pub(crate) mod uids;
pub(crate) mod verdict;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::EngineError;
use crate::language::Registry;
use custody::{Custody, JANITOR_EVERY, Sweep};
use launcher::Launcher;
use pool::Pool;
pub use pool::PoolSettings;
pub use runs::{Ran, Turns};
use uids::Uids;

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
