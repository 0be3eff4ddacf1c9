//! The executor: runs a `Job` in fresh, hardened sandboxes and says how it
//! went (an `Outcome`), and keeps the service's sandboxes in order.
//!
//! - [`runs`]: one path for one run or many: compile once, then each input
//!   in a fresh sandbox of its own.
//! - [`interact`]: an interactive job: a solution and an interactor
//!   side by side for each test, relayed by the service.
//! - [`pair`]: a compiled language's compile and run sandboxes, side by
//!   side on one scratch volume.
//! - [`pool`]: sandboxes (and pairs) started ahead of demand, sized by it.
//! - [`upkeep`]: the janitor, the start-up sweep, image pulls, readiness.
//!
//! Everything it makes is in custody (`crate::custody`) from its creation,
//! which removes it in the background once the answer is known, and on
//! every other path; a sandbox's own life is `crate::sandbox`'s.

mod interact;
mod pair;
mod pool;
mod runs;
#[cfg(test)]
mod tests;
mod upkeep;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::PoolSettings;
use crate::custody::uids::Uids;
use crate::custody::{Custody, Sweep};
use crate::job::Job;
use crate::language::Registry;
use crate::live::Live;
use crate::sandbox::{Launcher, SandboxError};
pub(crate) use interact::Interacted;
use pool::Pool;
pub(crate) use pool::most_waiting;
use runs::Runs;
pub(crate) use runs::{Ran, Turns};
pub(crate) use upkeep::Readiness;

/// How long shutdown waits for removals still queued.
const FINAL_REMOVALS: Duration = Duration::from_secs(5);

/// Runs jobs in fresh sandboxes on one engine.
#[derive(Debug, Clone)]
pub(crate) struct Executor {
    runs: Runs,
    /// Cancelled at the very end of shutdown, once removals are flushed.
    removals: CancellationToken,
}

impl Executor {
    /// An executor whose sandboxes run as `uids`, with pools sized and
    /// refilled as `pool` says.
    pub(crate) fn new(custody: Arc<Custody>, uids: Arc<Uids>, pool: PoolSettings) -> Executor {
        let launcher = Arc::new(Launcher::new(custody.clone(), uids));
        let runs = Runs {
            pool: Pool::new(launcher.clone(), pool),
            launcher,
            custody,
            stop: CancellationToken::new(),
        };
        Executor {
            runs,
            removals: CancellationToken::new(),
        }
    }

    /// Runs `job`: compiles it once if its language compiles, then runs
    /// each of its inputs in a fresh sandbox as `turns` allows (see
    /// [`runs`]); what it made is removed in the background. A `live`
    /// run (of one input) is fed the client's stdin and signals while it
    /// runs, and says its stages and output as they come.
    pub(crate) async fn run(
        &self,
        job: &Job,
        turns: &impl Turns,
        live: Option<&Live>,
    ) -> Result<Ran, SandboxError> {
        self.runs.run(job, turns, live).await
    }

    /// Runs `solution` against `interactor` (one input each per test),
    /// each compiled once, each test's pair at once in one turn (see
    /// [`interact`]).
    pub(crate) async fn interact(
        &self,
        solution: &Job,
        interactor: &Job,
        turns: &impl Turns,
    ) -> Result<Interacted, SandboxError> {
        self.runs.interact(solution, interactor, turns).await
    }

    /// Starts the background work in `tasks`: the janitor, the start-up
    /// sweep, the pool's refills and the pulls of missing images (both
    /// following `registry`), until `cancel`; and the removal queue, until
    /// [`Executor::shutdown`] has flushed it.
    pub(crate) fn start(
        &self,
        tasks: &mut JoinSet<()>,
        registry: watch::Receiver<Arc<Registry>>,
        cancel: &CancellationToken,
    ) {
        tasks.spawn(self.runs.custody.clone().run(self.removals.clone()));
        tasks.spawn(upkeep::janitor(self.runs.custody.clone(), cancel.clone()));
        tasks.spawn(upkeep::prepare(
            self.runs.custody.clone(),
            registry.clone(),
            cancel.clone(),
        ));
        tasks.spawn(self.runs.pool.clone().run(registry, cancel.clone()));
    }

    /// Stops refilling the pool (shutdown begins).
    pub(crate) fn close(&self) {
        self.runs.pool.close();
    }

    /// Stops the runs in flight (the grace period is over): each answers
    /// `SandboxError::Stopped` and removes its sandboxes.
    pub(crate) fn stop_runs(&self) {
        self.runs.stop.cancel();
    }

    /// Ends the executor's work: the pool's sandboxes and every queued
    /// removal go, and then whatever this process made that is left.
    pub(crate) async fn shutdown(&self) {
        self.runs.pool.shutdown().await;
        self.runs.custody.flush(FINAL_REMOVALS).await;
        self.runs.launcher.release_tools().await;
        self.runs.custody.flush(FINAL_REMOVALS).await;
        match self.runs.custody.reconcile(Sweep::ThisBoot).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed this process's remaining containers"),
            Err(e) => tracing::warn!(error = %e, "could not sweep this process's containers"),
        }
        self.removals.cancel();
    }

    /// Sandboxes waiting in the pool, per language name.
    pub(crate) fn pooled(&self) -> HashMap<String, usize> {
        self.runs.pool.ready()
    }

    /// What each language's pool aims at now.
    pub(crate) fn pool_targets(&self) -> HashMap<String, usize> {
        self.runs.pool.targets()
    }

    /// Containers and volumes held now (pooled, running, being removed).
    pub(crate) fn held(&self) -> usize {
        self.runs.custody.held()
    }

    /// Whether runs of `registry`'s languages can be served: the engine
    /// answers, every image is present and every runtime registered.
    pub(crate) async fn readiness(&self, registry: &Registry) -> Readiness {
        upkeep::readiness(self.runs.custody.engine().as_ref(), registry).await
    }
}
