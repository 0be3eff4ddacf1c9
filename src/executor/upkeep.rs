//! The executor's upkeep, beside the runs: the janitor (what this process
//! no longer holds), the start-up sweep (what earlier processes left),
//! pulls of the images the languages need, and readiness.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::custody::{Custody, JANITOR_EVERY, Sweep};
use crate::engine::Containers;
use crate::language::Registry;

/// How often the start-up sweep retries while Docker cannot be reached.
const SWEEP_RETRY: Duration = Duration::from_secs(2);

/// Where a run's problems with the engine stand, for `/ready`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Readiness {
    /// Sentences; empty when runs can be served.
    pub(crate) problems: Vec<String>,
    pub(crate) missing_images: Vec<String>,
}

/// Whether runs of `registry`'s languages can be served by `engine`: it
/// answers, every runtime is registered and every image is present.
pub(crate) async fn readiness(engine: &dyn Containers, registry: &Registry) -> Readiness {
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

/// Every [`JANITOR_EVERY`], removes what this process made and no longer
/// holds: a container or volume whose removal failed (the engine was away,
/// say) does not outlive the next pass or two.
pub(super) async fn janitor(custody: Arc<Custody>, cancel: CancellationToken) {
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
pub(super) async fn prepare(
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
            () = pull_missing_images(custody.engine().as_ref(), &languages) => {}
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
async fn pull_missing_images(engine: &dyn Containers, registry: &Registry) {
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
