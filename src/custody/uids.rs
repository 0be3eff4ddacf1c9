//! The numeric users sandboxes run as: an allocator over this instance's
//! range, so that no two live sandboxes ever share one (and with it the
//! kernel's per-user limits: epoll instances, inotify, pipe buffers, and
//! whatever an escape would reach).
//!
//! A uid is leased before a sandbox is created and given back only once its
//! container has been removed (custody holds the lease until then); a
//! compiled language's compile and run sandboxes share one lease (the run
//! reads what the compile wrote). Uids are handed out in turn, so that a
//! uid just given back is the last to be reused. When every uid is leased,
//! a new sandbox waits for one.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::UidRange;

/// The allocator of one instance's uids.
#[derive(Debug)]
pub(crate) struct Uids {
    range: UidRange,
    state: Mutex<State>,
    released: Notify,
}

#[derive(Debug)]
struct State {
    /// One flag per uid of the range: leased or not.
    leased: Vec<bool>,
    /// Where the search for the next free uid starts.
    next: usize,
    in_use: usize,
}

/// A uid held by a sandbox (or a compile and run pair); given back when
/// dropped.
#[derive(Debug)]
pub(crate) struct UidLease {
    uids: Arc<Uids>,
    uid: u32,
}

impl Uids {
    pub(crate) fn new(range: UidRange) -> Arc<Uids> {
        Arc::new(Uids {
            state: Mutex::new(State {
                leased: vec![false; range.count() as usize],
                next: 0,
                in_use: 0,
            }),
            range,
            released: Notify::new(),
        })
    }

    /// Uids leased now.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.state.lock().expect("uids").in_use
    }

    /// The next free uid, at once if there is one.
    pub(crate) fn try_lease(self: &Arc<Self>) -> Option<UidLease> {
        let mut state = self.state.lock().expect("uids");
        let count = state.leased.len();
        let at = (0..count)
            .map(|i| (state.next + i) % count)
            .find(|&i| !state.leased[i])?;
        state.leased[at] = true;
        state.next = (at + 1) % count;
        state.in_use += 1;
        Some(UidLease {
            uids: self.clone(),
            uid: self.range.first + at as u32,
        })
    }

    /// The next free uid, waiting for one to be given back if every one
    /// is leased.
    pub(crate) async fn lease(self: &Arc<Self>) -> UidLease {
        loop {
            let released = self.released.notified();
            if let Some(lease) = self.try_lease() {
                return lease;
            }
            released.await;
        }
    }

    fn give_back(&self, uid: u32) {
        let mut state = self.state.lock().expect("uids");
        let at = (uid - self.range.first) as usize;
        if std::mem::replace(&mut state.leased[at], false) {
            state.in_use -= 1;
        }
        drop(state);
        self.released.notify_one();
    }
}

impl UidLease {
    pub(crate) fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        self.uids.give_back(self.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    fn range(first: u32, last: u32) -> UidRange {
        UidRange { first, last }
    }

    #[test]
    fn no_uid_is_leased_twice_while_held_and_all_stay_in_range() {
        let uids = Uids::new(range(1000, 1099));
        let leases: Vec<UidLease> = (0..100).map(|_| uids.try_lease().unwrap()).collect();
        let distinct: HashSet<u32> = leases.iter().map(UidLease::uid).collect();
        assert_eq!(distinct.len(), 100);
        assert!(distinct.iter().all(|u| (1000..=1099).contains(u)));
        assert!(uids.try_lease().is_none(), "a 101st lease from 100 uids");
        assert_eq!(uids.in_use(), 100);
        drop(leases);
        assert_eq!(uids.in_use(), 0);
    }

    #[test]
    fn a_uid_given_back_is_the_last_to_be_reused() {
        let uids = Uids::new(range(10, 13));
        let first = uids.try_lease().unwrap();
        assert_eq!(first.uid(), 10);
        drop(first);
        let next: Vec<u32> = (0..4).map(|_| uids.try_lease().unwrap().uid()).collect();
        // Each lease above was dropped at once, so the turn goes round.
        assert_eq!(next, [11, 12, 13, 10]);
    }

    #[tokio::test]
    async fn when_every_uid_is_leased_a_sandbox_waits_for_one() {
        let uids = Uids::new(range(5, 5));
        let held = uids.lease().await;
        let waiting = {
            let uids = uids.clone();
            tokio::spawn(async move { uids.lease().await.uid() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), 5);
    }
}
