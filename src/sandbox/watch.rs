//! The CPU-time limit held from outside the sandbox: while a stage runs,
//! the service reads the sandbox's CPU usage through the engine (the
//! container's own cgroup, as the engine's stats give it) and stops the
//! container once it passes the limit, whatever the processes inside do.
//! The supervisor's watcher, inside, stops it sooner and more exactly; this
//! one is the bound no trick inside can outlive.
//!
//! A sandbox of `cpus` CPUs uses at most `cpus` seconds of CPU time per
//! second, so none can pass the limit before `limit / cpus` of wall time:
//! the first look comes then, and each next one when the time left could
//! be used up at full speed (never sooner than [`MIN_GAP`] apart). A stage
//! whose wall-time limit comes first (the defaults: 10 s of each on one
//! CPU) is never looked at at all.

use std::time::Duration;

use tokio::time::Instant;

/// The closest two looks come.
pub(crate) const MIN_GAP: Duration = Duration::from_millis(25);

/// A stage's CPU-time limit and the CPUs it may use at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuBound {
    pub(crate) limit: Duration,
    pub(crate) cpus: f64,
}

/// When to look next at a stage's CPU time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuWatch {
    bound: CpuBound,
    next: Instant,
}

impl CpuWatch {
    /// The watch of a stage under `bound` whose program started at `from`.
    pub(crate) fn new(bound: CpuBound, from: Instant) -> CpuWatch {
        CpuWatch {
            bound,
            next: from + gap(bound, Duration::ZERO),
        }
    }

    /// When the next look is due.
    pub(crate) fn due(&self) -> Instant {
        self.next
    }

    /// Takes a look at `now`: the stage's CPU time `used` so far (`None`
    /// when it could not be read: looked at again soon). Whether it is
    /// past the limit.
    pub(crate) fn over(&mut self, used: Option<Duration>, now: Instant) -> bool {
        match used {
            Some(used) if used > self.bound.limit => true,
            used => {
                self.next = now + gap(self.bound, used.unwrap_or(self.bound.limit));
                false
            }
        }
    }
}

/// The wall time in which a stage that has used `used` could at the
/// soonest pass its limit.
fn gap(bound: CpuBound, used: Duration) -> Duration {
    let left = bound.limit.saturating_sub(used);
    left.div_f64(bound.cpus.max(0.01)).max(MIN_GAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(limit_ms: u64, cpus: f64) -> CpuBound {
        CpuBound {
            limit: Duration::from_millis(limit_ms),
            cpus,
        }
    }

    #[test]
    fn the_first_look_comes_when_the_limit_could_first_be_passed() {
        let start = Instant::now();
        let watch = CpuWatch::new(bound(1000, 1.0), start);
        assert_eq!(watch.due() - start, Duration::from_millis(1000));
        let watch = CpuWatch::new(bound(1000, 2.0), start);
        assert_eq!(watch.due() - start, Duration::from_millis(500));
    }

    #[test]
    fn each_look_comes_when_the_time_left_could_be_used_and_past_it_stops() {
        let start = Instant::now();
        let mut watch = CpuWatch::new(bound(1000, 2.0), start);
        let now = start + Duration::from_millis(500);
        assert!(!watch.over(Some(Duration::from_millis(600)), now));
        assert_eq!(watch.due() - now, Duration::from_millis(200));
        // Close to the limit, never closer than MIN_GAP.
        assert!(!watch.over(Some(Duration::from_millis(999)), now));
        assert_eq!(watch.due() - now, MIN_GAP);
        // An unreadable sample is looked at again soon.
        assert!(!watch.over(None, now));
        assert_eq!(watch.due() - now, MIN_GAP);
        assert!(!watch.over(Some(Duration::from_millis(1000)), now));
        assert!(watch.over(Some(Duration::from_millis(1001)), now));
    }
}
