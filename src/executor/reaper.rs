//! The reaper: removes what finished runs leave (their containers, already
//! killed or stopping, then their volumes) in the background, off the
//! response path, and while runs are in flight only when it must.
//!
//! Removing a container costs the host CPU, which the runs in flight would
//! otherwise have. So a removal waits until no run is in flight, for at
//! most [`MAX_DEFER`], or until more than [`BACKLOG`] removals are waiting;
//! a stopped container holds no memory and no CPU meanwhile, only its small
//! writable layer. Up to [`PARALLEL`] removals run at once. Shutdown flushes
//! the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore, mpsc};

use super::sandbox::{ContainerGuard, VolumeGuard};

/// Longest a removal is put off while runs are in flight.
pub const MAX_DEFER: Duration = Duration::from_secs(2);
/// Removals waiting beyond which they are done at once, runs or not.
pub const BACKLOG: usize = 32;
/// Removals under way at once.
pub const PARALLEL: usize = 4;
const POLL: Duration = Duration::from_millis(20);

/// What a run leaves to remove: its containers, then its volume.
pub struct Leftovers {
    pub containers: Vec<ContainerGuard>,
    pub volume: Option<VolumeGuard>,
}

impl Leftovers {
    async fn remove(self) {
        for container in self.containers {
            container.remove().await;
        }
        if let Some(volume) = self.volume {
            volume.remove().await;
        }
    }
}

/// The removal queue and its worker.
#[derive(Debug)]
pub struct Reaper {
    queue: mpsc::UnboundedSender<(Instant, Leftovers)>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<(Instant, Leftovers)>>>,
    waiting: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leftovers({} containers)", self.containers.len())
    }
}

/// Counts a run in flight while it lives.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Reaper {
    pub fn new() -> Reaper {
        let (queue, receiver) = mpsc::unbounded_channel();
        Reaper {
            queue,
            receiver: Mutex::new(Some(receiver)),
            waiting: Arc::new(AtomicUsize::new(0)),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Marks a run as in flight until the returned value is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.active.fetch_add(1, Ordering::AcqRel);
        InFlight(self.active.clone())
    }

    /// Queues what a run left. (If the worker is gone, shutdown is under
    /// way: the leftovers are dropped, and their guards remove them.)
    pub fn remove(&self, leftovers: Leftovers) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        if self.queue.send((Instant::now(), leftovers)).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Removals waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Removes queued leftovers, [`PARALLEL`] at a time, for as long as it
    /// runs.
    pub async fn run(&self) {
        let Some(mut receiver) = self.receiver.lock().await.take() else {
            return;
        };
        let slots = Arc::new(Semaphore::new(PARALLEL));
        while let Some((queued, leftovers)) = receiver.recv().await {
            while self.active.load(Ordering::Acquire) > 0
                && self.waiting.load(Ordering::Acquire) <= BACKLOG
                && queued.elapsed() < MAX_DEFER
            {
                tokio::time::sleep(POLL).await;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let waiting = self.waiting.clone();
            tokio::spawn(async move {
                leftovers.remove().await;
                waiting.fetch_sub(1, Ordering::AcqRel);
                drop(slot);
            });
        }
    }

    /// Waits (up to `within`) until every queued removal is done.
    pub async fn flush(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.waiting() > 0 && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Default for Reaper {
    fn default() -> Self {
        Reaper::new()
    }
}
