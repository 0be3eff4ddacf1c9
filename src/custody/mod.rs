//! Custody: the one owner of every container and volume this process makes,
//! from its creation to its removal.
//!
//! Each one is registered in the ledger when it is created, as a [`Held`]
//! handle; dropping the handle (on success, error, timeout, a dropped
//! request, shutdown) hands it to the one removal queue. The queue removes
//! in the background, off the response path: while runs are in flight a
//! removal waits (a stopped container holds no memory or CPU, and removing
//! one costs the host CPU that the runs would otherwise have), for at most
//! [`MAX_DEFER`], or until more than [`BACKLOG`] wait; [`PARALLEL`] go at
//! once. A run's containers go before its volume, which the engine refuses
//! to remove while a container uses it.
//!
//! [`Custody::reconcile`] is the one path for what the ledger does not
//! hold, by the labels every resource carries ([`LABEL`]: the instance,
//! [`BOOT_LABEL`]: the process): at start-up, what earlier processes of the
//! instance left ([`Sweep::EarlierBoots`]); every [`JANITOR_EVERY`], what
//! this process made and no longer holds, seen twice (a removal that
//! failed; [`Sweep::Unheld`]); and at shutdown, everything of this process
//! ([`Sweep::ThisBoot`]).
//!
//! Each sandbox's uid comes from [`uids`], leased before its container is
//! created and held by its [`Held`] handle until the container is gone, so
//! that no two live sandboxes share one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::engine::{Containers, EngineError, Kind};
use uids::UidLease;

pub(crate) mod uids;

/// Label key carried by every container and volume; its value is the
/// service's instance name.
pub(crate) const LABEL: &str = "code-runner";
/// Label naming the process (boot) that made a container or volume.
pub(crate) const BOOT_LABEL: &str = "code-runner.boot";
/// Label naming the language of a container or volume.
pub(crate) const LANGUAGE_LABEL: &str = "code-runner.language";
/// Label naming the stage (`compile` or `run`) of a container.
pub(crate) const STAGE_LABEL: &str = "code-runner.stage";

/// Longest a removal is put off while runs are in flight.
pub(crate) const MAX_DEFER: Duration = Duration::from_secs(2);
/// How long after the last run ended a removal waits, so that a request
/// following another at once does not share the engine with it.
pub(crate) const REMOVAL_QUIET: Duration = Duration::from_millis(150);
/// Removals waiting beyond which they are done at once, runs or not.
pub(crate) const BACKLOG: usize = 32;
/// Removals under way at once.
pub(crate) const PARALLEL: usize = 4;
/// How often the janitor reconciles what this process holds.
pub(crate) const JANITOR_EVERY: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// How long a volume's removal is retried while a container being removed
/// still uses it.
const VOLUME_PATIENCE: Duration = Duration::from_secs(5);

/// Who the resources belong to: the deployment and the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The deployment's instance name (value of [`LABEL`]).
    pub(crate) instance: String,
    /// This process's id, different on every start (value of [`BOOT_LABEL`]).
    pub(crate) boot: String,
}

impl Owner {
    /// The labels that mark a resource as this process's.
    pub(crate) fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL.to_string(), self.instance.clone()),
            (BOOT_LABEL.to_string(), self.boot.clone()),
        ])
    }
}

/// Which resources [`Custody::reconcile`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Those of the instance made by earlier processes (at start-up).
    EarlierBoots,
    /// Those of this process it no longer holds, seen so twice in a row
    /// (so that one whose create is still in flight is spared).
    Unheld,
    /// Every one of this process (at shutdown).
    ThisBoot,
}

/// One resource to remove, with the uid it holds (given back once it is
/// gone).
#[derive(Debug)]
struct Removal {
    kind: Kind,
    id: String,
    uid: Option<Arc<UidLease>>,
}

type Batch = Vec<Removal>;

/// The ledger and the removal queue.
#[derive(Debug)]
pub(crate) struct Custody {
    engine: Arc<dyn Containers>,
    owner: Owner,
    /// What this process holds now.
    held: Mutex<HashSet<String>>,
    /// What the last [`Sweep::Unheld`] pass found unheld.
    unheld_before: Mutex<HashSet<String>>,
    /// The uids of containers whose removal failed, kept from reuse until
    /// a sweep removes them.
    quarantined: Mutex<HashMap<String, Arc<UidLease>>>,
    queue: mpsc::UnboundedSender<(Instant, Batch)>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<(Instant, Batch)>>>,
    /// Batches queued or being removed.
    pending: AtomicUsize,
    /// Runs in flight.
    runs: Arc<AtomicUsize>,
    /// When the last run in flight ended.
    last_run: Arc<Mutex<Instant>>,
}

/// A container or volume in custody: queued for removal when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    custody: Arc<Custody>,
    kind: Kind,
    id: Option<String>,
    /// The uid its sandbox runs as, held until it is removed.
    uid: Option<Arc<UidLease>>,
}

/// Counts a run in flight while it lives (removals wait for none).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>, Arc<Mutex<Instant>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.1.lock().expect("last run") = Instant::now();
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Custody {
    pub(crate) fn new(engine: Arc<dyn Containers>, owner: Owner) -> Arc<Custody> {
        let (queue, receiver) = mpsc::unbounded_channel();
        Arc::new(Custody {
            engine,
            owner,
            held: Mutex::new(HashSet::new()),
            unheld_before: Mutex::new(HashSet::new()),
            quarantined: Mutex::new(HashMap::new()),
            queue,
            receiver: Mutex::new(Some(receiver)),
            pending: AtomicUsize::new(0),
            runs: Arc::new(AtomicUsize::new(0)),
            last_run: Arc::new(Mutex::new(Instant::now())),
        })
    }

    /// Whose resources these are.
    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The engine the resources live on.
    pub(crate) fn engine(&self) -> &Arc<dyn Containers> {
        &self.engine
    }

    /// Takes `id` into custody (call it before its create can finish, so
    /// that it is never without an owner), with the uid its sandbox runs
    /// as, if it is a container.
    pub(crate) fn hold(
        self: &Arc<Self>,
        kind: Kind,
        id: String,
        uid: Option<Arc<UidLease>>,
    ) -> Held {
        self.held.lock().expect("ledger").insert(id.clone());
        Held {
            custody: self.clone(),
            kind,
            id: Some(id),
            uid,
        }
    }

    /// Marks a run as in flight until the returned value is dropped.
    pub(crate) fn run_in_flight(&self) -> InFlight {
        self.runs.fetch_add(1, Ordering::AcqRel);
        InFlight(self.runs.clone(), self.last_run.clone())
    }

    /// Runs in flight now.
    pub(crate) fn runs(&self) -> usize {
        self.runs.load(Ordering::Acquire)
    }

    /// Resources held now.
    pub(crate) fn held(&self) -> usize {
        self.held.lock().expect("ledger").len()
    }

    /// Queues `items` for removal, in order, as one batch.
    pub(crate) fn release(&self, items: Vec<Held>) {
        let batch: Batch = items.into_iter().filter_map(|mut h| h.removal()).collect();
        self.enqueue(batch);
    }

    fn enqueue(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.queue.send((Instant::now(), batch)).is_err() {
            // The worker is gone (shutdown is over): the last sweep, or the
            // next start's, removes them.
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The removal worker: removes queued batches until `cancel`.
    pub(crate) async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let Some(mut receiver) = self.receiver.lock().expect("receiver").take() else {
            return;
        };
        let slots = Arc::new(Semaphore::new(PARALLEL));
        loop {
            let (queued, batch) = tokio::select! {
                next = receiver.recv() => match next {
                    Some(next) => next,
                    None => return,
                },
                () = cancel.cancelled() => return,
            };
            while (self.runs.load(Ordering::Acquire) > 0
                || self.last_run.lock().expect("last run").elapsed() < REMOVAL_QUIET)
                && self.pending.load(Ordering::Acquire) <= BACKLOG
                && queued.elapsed() < MAX_DEFER
                && !cancel.is_cancelled()
            {
                tokio::time::sleep(POLL).await;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let custody = self.clone();
            tokio::spawn(async move {
                for removal in batch {
                    custody.remove(removal).await;
                }
                custody.pending.fetch_sub(1, Ordering::AcqRel);
                drop(slot);
            });
        }
    }

    /// Waits (up to `within`) until every queued removal is done.
    pub(crate) async fn flush(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Removes one resource now and lets go of it, whatever the outcome: a
    /// failure is logged, its uid kept from reuse, and the janitor's next
    /// passes find it unheld.
    async fn remove(&self, removal: Removal) {
        let Removal { kind, id, uid } = removal;
        match self.remove_any(kind, &id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::warn!(
                    resource = %id, error = %e,
                    "could not remove a sandbox resource; the janitor will"
                );
                if let Some(uid) = uid {
                    self.quarantined
                        .lock()
                        .expect("ledger")
                        .insert(id.clone(), uid);
                }
            }
        }
        self.held.lock().expect("ledger").remove(&id);
    }

    /// Removes a container, or a volume (retrying while a container being
    /// removed still uses it: the engine answers 409).
    async fn remove_any(&self, kind: Kind, id: &str) -> Result<(), EngineError> {
        if kind == Kind::Container {
            return self.engine.remove_container(id).await;
        }
        let deadline = Instant::now() + VOLUME_PATIENCE;
        loop {
            match self.engine.remove_volume(id).await {
                Err(e) if e.is_conflict() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// Removes what `sweep` selects of this instance's resources
    /// (containers first: a volume in use cannot go); returns how many.
    pub(crate) async fn reconcile(&self, sweep: Sweep) -> Result<usize, EngineError> {
        let found = self
            .engine
            .list(&[format!("{LABEL}={}", self.owner.instance)])
            .await?;
        let mine =
            |labels: &HashMap<String, String>| labels.get(BOOT_LABEL) == Some(&self.owner.boot);
        let chosen: Vec<(Kind, String)> = match sweep {
            Sweep::EarlierBoots => found
                .into_iter()
                .filter(|r| !mine(&r.labels))
                .map(|r| (r.kind, r.id))
                .collect(),
            Sweep::ThisBoot => found
                .into_iter()
                .filter(|r| mine(&r.labels))
                .map(|r| (r.kind, r.id))
                .collect(),
            Sweep::Unheld => {
                let held = self.held.lock().expect("ledger").clone();
                let unheld: Vec<(Kind, String)> = found
                    .into_iter()
                    .filter(|r| mine(&r.labels) && !held.contains(&r.id))
                    .map(|r| (r.kind, r.id))
                    .collect();
                let now: HashSet<String> = unheld.iter().map(|(_, id)| id.clone()).collect();
                let before =
                    std::mem::replace(&mut *self.unheld_before.lock().expect("ledger"), now);
                unheld
                    .into_iter()
                    .filter(|(_, id)| before.contains(id))
                    .collect()
            }
        };
        let mut removed = 0;
        for (kind, id) in chosen {
            match self.remove_any(kind, &id).await {
                Ok(()) => removed += 1,
                // Gone already, or its removal is under way.
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e),
            }
            self.quarantined.lock().expect("ledger").remove(&id);
        }
        Ok(removed)
    }
}

impl Held {
    /// The container's id, or the volume's name.
    pub(crate) fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Removes it now, not in the background (a run stopped at shutdown).
    pub(crate) async fn remove_now(mut self) {
        if let Some(removal) = self.removal() {
            self.custody.remove(removal).await;
        }
    }

    /// What removing it takes, once (a handle is removed once).
    fn removal(&mut self) -> Option<Removal> {
        Some(Removal {
            kind: self.kind,
            id: self.id.take()?,
            uid: self.uid.take(),
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(removal) = self.removal() {
            self.custody.enqueue(vec![removal]);
        }
    }
}

#[cfg(test)]
mod tests;
