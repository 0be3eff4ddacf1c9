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

use serde::{Deserialize, Serialize};

/// The allocator of one instance's uids.
#[derive(Debug)]
pub struct Uids {
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
pub struct UidLease {
    uids: Arc<Uids>,
    uid: u32,
}

impl Uids {
    pub fn new(range: UidRange) -> Arc<Uids> {
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

    /// The range handed out.
    pub fn range(&self) -> UidRange {
        self.range
    }

    /// Uids leased now.
    pub fn in_use(&self) -> usize {
        self.state.lock().expect("uids").in_use
    }

    /// The next free uid, at once if there is one.
    pub fn try_lease(self: &Arc<Self>) -> Option<UidLease> {
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
    pub async fn lease(self: &Arc<Self>) -> UidLease {
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
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        self.uids.give_back(self.uid);
    }
}

/// A range of numeric uids, written `FIRST-LAST` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

/// Where instance blocks start: systemd's range for containers' uids
/// (524288–1879048191, `systemd-nspawn --private-users`).
const CONTAINER_UIDS: (u32, u32) = (524_288, 1_879_048_191);
/// The size of an instance's block.
const BLOCK: u32 = 65_536;

impl UidRange {
    /// How many uids it holds.
    pub fn count(&self) -> u32 {
        self.last - self.first + 1
    }

    pub fn contains(&self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    /// The block of `instance`: one of the 65536-uid blocks of systemd's
    /// container range, chosen by a hash (FNV-1a) of the name.
    pub fn for_instance(instance: &str) -> UidRange {
        let hash = instance.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let blocks = u64::from((CONTAINER_UIDS.1 - CONTAINER_UIDS.0 + 1) / BLOCK);
        let first = CONTAINER_UIDS.0 + BLOCK * (hash % blocks) as u32;
        UidRange {
            first,
            last: first + BLOCK - 1,
        }
    }
}

impl std::fmt::Display for UidRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for UidRange {
    type Err = String;
    fn from_str(text: &str) -> Result<UidRange, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("must be FIRST-LAST, such as 200000-265535 (got {text:?})"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("must be FIRST-LAST, two uids (got {text:?})"))
        };
        Ok(UidRange {
            first: number(first)?,
            last: number(last)?,
        })
    }
}

impl Serialize for UidRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UidRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UidRange, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
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
