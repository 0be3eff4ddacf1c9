//! Admission: a fixed number of run slots and a bounded queue in front of
//! them, so that a burst cannot overload the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a run was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("every run slot is busy and the queue is full")]
    QueueFull,
    #[error("no run slot came free in time")]
    QueueTimeout,
    #[error("the service is shutting down")]
    Closed,
}

/// Run slots plus a bounded wait queue.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max_slots: usize,
    waiting: AtomicUsize,
    max_queue: usize,
    queue_timeout: Duration,
}

/// A held run slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    /// `max_slots` runs at once, `max_queue` waiting, each for at most
    /// `queue_timeout`.
    pub fn new(max_slots: usize, max_queue: usize, queue_timeout: Duration) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(max_slots)),
            max_slots,
            waiting: AtomicUsize::new(0),
            max_queue,
            queue_timeout,
        }
    }

    /// Takes a free slot, or waits in the queue for one (first come, first
    /// served); refuses at once when the queue is full.
    pub async fn acquire(&self) -> Result<Slot, Refusal> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(permit));
        }
        if self.slots.is_closed() {
            return Err(Refusal::Closed);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::QueueFull);
        }
        let _leave = LeaveQueue(&self.waiting);
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            Ok(Err(_)) => Err(Refusal::Closed),
            Err(_) => Err(Refusal::QueueTimeout),
        }
    }

    /// Another slot for a batch already admitted: it waits its turn in the
    /// queue with every other request (first come, first served, so other
    /// clients' runs come between a batch's tests), but is not refused for
    /// a full queue or a long wait, as the batch already holds a slot.
    pub async fn acquire_more(&self) -> Result<Slot, Refusal> {
        match self.slots.clone().acquire_owned().await {
            Ok(permit) => Ok(Slot(permit)),
            Err(_) => Err(Refusal::Closed),
        }
    }

    /// How many of a batch's tests may run at once: half the run slots
    /// (rounded up), so that a batch never holds them all while others
    /// wait.
    pub fn batch_share(&self) -> usize {
        self.max_slots.div_ceil(2)
    }

    /// Runs executing now.
    pub fn running(&self) -> usize {
        self.max_slots - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Refuses every waiting and future request; runs holding a slot go on.
    pub fn close(&self) {
        self.slots.close();
    }
}

struct LeaveQueue<'a>(&'a AtomicUsize);

impl Drop for LeaveQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let limiter = Arc::new(Admission::new(1, 1, Duration::from_secs(5)));
        let first = limiter.acquire().await.unwrap();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire().await.map(|_| ()) })
        };
        while limiter.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limiter.acquire().await.unwrap_err(), Refusal::QueueFull);
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(limiter.queued(), 0);
    }

    #[tokio::test]
    async fn a_wait_longer_than_the_queue_timeout_is_refused() {
        let limiter = Admission::new(1, 4, Duration::from_millis(50));
        let _first = limiter.acquire().await.unwrap();
        assert_eq!(limiter.acquire().await.unwrap_err(), Refusal::QueueTimeout);
        assert_eq!(limiter.queued(), 0);
    }

    #[tokio::test]
    async fn closing_refuses_waiters_and_newcomers() {
        let limiter = Arc::new(Admission::new(1, 4, Duration::from_secs(5)));
        let first = limiter.acquire().await.unwrap();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire().await.map(|_| ()) })
        };
        while limiter.queued() == 0 {
            tokio::task::yield_now().await;
        }
        limiter.close();
        assert_eq!(waiter.await.unwrap(), Err(Refusal::Closed));
        drop(first);
        assert_eq!(limiter.acquire().await.unwrap_err(), Refusal::Closed);
    }
}
