//! Admission: a fixed number of run slots and a bounded queue in front of
//! them, so that a burst cannot overload the host, shared fairly between
//! clients: one client holds at most its share of the slots and of the
//! queue, and a slot that frees goes to the oldest waiter whose client is
//! under its share. So one client's flood of slow runs waits behind its own
//! share while another client's run takes a free slot at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::RunSettings;
pub(crate) use crate::job::Client;

/// Why a run was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("every run slot is busy and the queue is full")]
    QueueFull,
    /// This client already has its share of the queue waiting.
    #[error("this client already has its share of the queue waiting")]
    ClientQueueFull,
    #[error("no run slot came free in time")]
    QueueTimeout,
    #[error("the service is shutting down")]
    Closed,
}

/// The sizes of admission, from the `[runs]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shares {
    /// Runs at once, in all.
    slots: usize,
    /// Requests waiting, in all.
    queue: usize,
    /// Runs one client may have at once.
    client_slots: usize,
    /// Requests one client may have waiting.
    client_queue: usize,
}

/// Run slots plus a bounded wait queue, shared between clients.
#[derive(Debug)]
pub(crate) struct Admission {
    inner: Arc<Inner>,
    queue_timeout: Duration,
}

#[derive(Debug)]
struct Inner {
    shares: Shares,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    running: usize,
    clients: HashMap<Client, Use>,
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Use {
    running: usize,
    waiting: usize,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    client: Client,
    grant: oneshot::Sender<Slot>,
}

/// A held run slot; dropping it frees the slot for the next fair waiter.
#[derive(Debug)]
pub(crate) struct Slot {
    inner: Arc<Inner>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let grants = {
            let mut state = self.inner.state.lock().expect("admission lock");
            state.running -= 1;
            let empty = {
                let client = state.clients.entry(self.client.clone()).or_default();
                client.running -= 1;
                client.running == 0 && client.waiting == 0
            };
            if empty {
                state.clients.remove(&self.client);
            }
            self.inner.dispatch(&mut state)
        };
        send(grants);
    }
}

/// Hands out grants (outside the lock: a grant whose waiter is gone drops
/// its slot, which takes the lock again).
fn send(grants: Vec<(oneshot::Sender<Slot>, Slot)>) {
    for (to, slot) in grants {
        let _ = to.send(slot);
    }
}

impl Inner {
    /// Whether `client` may take a slot now.
    fn may_run(&self, state: &State, client: &Client) -> bool {
        state.running < self.shares.slots
            && state.clients.get(client).map_or(0, |u| u.running) < self.shares.client_slots
    }

    /// Takes a slot for `client` (the caller checked it may).
    fn take(self: &Arc<Self>, state: &mut State, client: &Client) -> Slot {
        state.running += 1;
        state.clients.entry(client.clone()).or_default().running += 1;
        Slot {
            inner: self.clone(),
            client: client.clone(),
        }
    }

    /// Grants free slots to the oldest waiters whose clients are under
    /// their share.
    fn dispatch(self: &Arc<Self>, state: &mut State) -> Vec<(oneshot::Sender<Slot>, Slot)> {
        let mut grants = Vec::new();
        let mut i = 0;
        while i < state.waiters.len() && state.running < self.shares.slots {
            if self.may_run(state, &state.waiters[i].client) {
                let waiter = state.waiters.remove(i).expect("in range");
                state
                    .clients
                    .get_mut(&waiter.client)
                    .expect("a waiter's client is known")
                    .waiting -= 1;
                let slot = self.take(state, &waiter.client);
                grants.push((waiter.grant, slot));
            } else {
                i += 1;
            }
        }
        grants
    }

    /// Removes waiter `id` if it still waits (it gave up).
    fn leave(&self, id: u64) {
        let mut state = self.state.lock().expect("admission lock");
        if let Some(i) = state.waiters.iter().position(|w| w.id == id) {
            let waiter = state.waiters.remove(i).expect("in range");
            let empty = {
                let client = state.clients.get_mut(&waiter.client).expect("known");
                client.waiting -= 1;
                client.running == 0 && client.waiting == 0
            };
            if empty {
                state.clients.remove(&waiter.client);
            }
        }
    }
}

/// Leaves the queue when dropped before its grant came.
struct Waiting<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.inner.leave(self.id);
    }
}

impl Admission {
    /// Admission of the `[runs]` settings: its slots and queue, in all and
    /// per client, each wait at most `queue_timeout_ms`.
    pub(crate) fn new(settings: &RunSettings) -> Self {
        let shares = Shares {
            slots: settings.max_concurrent,
            queue: settings.max_queue,
            client_slots: settings.client_slots(),
            client_queue: settings.client_queue(),
        };
        Admission {
            inner: Arc::new(Inner {
                shares,
                state: Mutex::new(State::default()),
            }),
            queue_timeout: settings.queue_timeout(),
        }
    }

    /// Takes a free slot for `client`, or waits in the queue for one
    /// (oldest first among the clients under their share); refuses at once
    /// when the queue, or the client's share of it, is full.
    pub(crate) async fn acquire(&self, client: &Client) -> Result<Slot, Refusal> {
        self.wait(client, true).await
    }

    /// Another slot for a batch already admitted: it waits its turn with
    /// every other request (so other clients' runs come between a batch's
    /// tests) within its client's share, but is not refused for a full
    /// queue or a long wait, as the batch already holds a slot.
    pub(crate) async fn acquire_more(&self, client: &Client) -> Result<Slot, Refusal> {
        self.wait(client, false).await
    }

    async fn wait(&self, client: &Client, bounded: bool) -> Result<Slot, Refusal> {
        let (id, granted) = {
            let mut state = self.inner.state.lock().expect("admission lock");
            if state.closed {
                return Err(Refusal::Closed);
            }
            if self.inner.may_run(&state, client) {
                return Ok(self.inner.take(&mut state, client));
            }
            let shares = self.inner.shares;
            let waiting = state.clients.get(client).map_or(0, |u| u.waiting);
            if bounded && state.waiters.len() >= shares.queue {
                return Err(Refusal::QueueFull);
            }
            if bounded && waiting >= shares.client_queue {
                return Err(Refusal::ClientQueueFull);
            }
            let (grant, granted) = oneshot::channel();
            state.next_id += 1;
            let id = state.next_id;
            state.waiters.push_back(Waiter {
                id,
                client: client.clone(),
                grant,
            });
            state.clients.entry(client.clone()).or_default().waiting += 1;
            (id, granted)
        };
        let _waiting = Waiting {
            inner: &self.inner,
            id,
        };
        let granted = async {
            match granted.await {
                Ok(slot) => Ok(slot),
                Err(_) => Err(Refusal::Closed),
            }
        };
        if bounded {
            tokio::time::timeout(self.queue_timeout, granted)
                .await
                .map_err(|_| Refusal::QueueTimeout)?
        } else {
            granted.await
        }
    }

    /// How many of a batch's tests may run at once: half the run slots
    /// (rounded up), within the client's share, so that a batch never
    /// holds them all while others wait.
    pub(crate) fn batch_share(&self) -> usize {
        let shares = self.inner.shares;
        shares.slots.div_ceil(2).min(shares.client_slots).max(1)
    }

    /// Runs executing now.
    pub(crate) fn running(&self) -> usize {
        self.inner.state.lock().expect("admission lock").running
    }

    /// Requests waiting for a slot now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.inner
            .state
            .lock()
            .expect("admission lock")
            .waiters
            .len()
    }

    /// Refuses every waiting and future request; runs holding a slot go on.
    pub(crate) fn close(&self) {
        let mut state = self.inner.state.lock().expect("admission lock");
        state.closed = true;
        // Their senders dropped, the waiters see `Closed`.
        state.waiters.clear();
        for client in state.clients.values_mut() {
            client.waiting = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(slots: usize, queue: usize, client_slots: usize, client_queue: usize) -> RunSettings {
        RunSettings {
            max_concurrent: slots,
            max_queue: queue,
            client_max_concurrent: Some(client_slots),
            client_max_queue: Some(client_queue),
            queue_timeout_ms: 5000,
        }
    }

    fn client(name: &str) -> Client {
        Arc::from(name)
    }

    async fn queued_until(limiter: &Admission, n: usize) {
        while limiter.queued() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let limiter = Arc::new(Admission::new(&shares(1, 1, 1, 1)));
        let a = client("a");
        let first = limiter.acquire(&a).await.unwrap();
        let waiter = {
            let (limiter, a) = (limiter.clone(), a.clone());
            tokio::spawn(async move { limiter.acquire(&a).await.map(|_| ()) })
        };
        queued_until(&limiter, 1).await;
        assert_eq!(
            limiter.acquire(&client("b")).await.unwrap_err(),
            Refusal::QueueFull
        );
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!((limiter.queued(), limiter.running()), (0, 0));
    }

    #[tokio::test]
    async fn a_wait_longer_than_the_queue_timeout_is_refused() {
        let limiter = Admission::new(&RunSettings {
            queue_timeout_ms: 50,
            ..shares(1, 4, 1, 4)
        });
        let _first = limiter.acquire(&client("a")).await.unwrap();
        assert_eq!(
            limiter.acquire(&client("a")).await.unwrap_err(),
            Refusal::QueueTimeout
        );
        assert_eq!(limiter.queued(), 0);
    }

    #[tokio::test]
    async fn closing_refuses_waiters_and_newcomers() {
        let limiter = Arc::new(Admission::new(&shares(1, 4, 1, 4)));
        let first = limiter.acquire(&client("a")).await.unwrap();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&client("b")).await.map(|_| ()) })
        };
        queued_until(&limiter, 1).await;
        limiter.close();
        assert_eq!(waiter.await.unwrap(), Err(Refusal::Closed));
        drop(first);
        assert_eq!(
            limiter.acquire(&client("a")).await.unwrap_err(),
            Refusal::Closed
        );
    }

    #[tokio::test]
    async fn one_client_holds_only_its_share_and_another_runs_at_once() {
        let limiter = Arc::new(Admission::new(&shares(4, 8, 2, 3)));
        let greedy = client("greedy");
        let held = [
            limiter.acquire(&greedy).await.unwrap(),
            limiter.acquire(&greedy).await.unwrap(),
        ];
        // Its third waits although two slots are free; its fourth and
        // fifth too; its sixth is refused: its share of the queue is full.
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let (limiter, greedy) = (limiter.clone(), greedy.clone());
            waiting.push(tokio::spawn(async move {
                limiter.acquire(&greedy).await.map(|_| ())
            }));
        }
        queued_until(&limiter, 3).await;
        assert_eq!(
            limiter.acquire(&greedy).await.unwrap_err(),
            Refusal::ClientQueueFull
        );
        // Another client runs at once, twice.
        let polite = client("polite");
        let a = limiter.acquire(&polite).await.unwrap();
        let b = limiter.acquire(&polite).await.unwrap();
        assert_eq!(limiter.running(), 4);
        // A slot the greedy client frees goes to its own oldest waiter.
        drop(held);
        drop((a, b));
        for w in waiting {
            assert_eq!(w.await.unwrap(), Ok(()));
        }
        assert_eq!((limiter.running(), limiter.queued()), (0, 0));
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_oldest_waiter_under_its_share() {
        let limiter = Arc::new(Admission::new(&shares(2, 8, 2, 8)));
        let (a, b) = (client("a"), client("b"));
        let a1 = limiter.acquire(&a).await.unwrap();
        let a2 = limiter.acquire(&a).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, who) in [("a3", a.clone()), ("b1", b.clone())] {
            let (shared, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = shared.acquire(&who).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(slot);
            }));
            queued_until(&limiter, tasks.len()).await;
        }
        drop(a1);
        drop(a2);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a3", "b1"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_no_trace() {
        let limiter = Arc::new(Admission::new(&shares(1, 2, 1, 1)));
        let first = limiter.acquire(&client("a")).await.unwrap();
        let gone = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&client("a")).await.map(|_| ()) })
        };
        queued_until(&limiter, 1).await;
        gone.abort();
        let _ = gone.await;
        assert_eq!(limiter.queued(), 0);
        // Its share of the queue is free again.
        let again = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&client("a")).await.map(|_| ()) })
        };
        queued_until(&limiter, 1).await;
        drop(first);
        assert_eq!(again.await.unwrap(), Ok(()));
        assert_eq!(limiter.running(), 0);
    }
}
