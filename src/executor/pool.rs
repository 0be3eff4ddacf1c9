//! The pool: per language, sandboxes created and started ahead of demand,
//! with exactly a cold run's hardened configuration, each waiting for its
//! payload (with the interpreter already started, for a language with a
//! pre-start hook). A run claims one (it is then used by that run alone
//! and removed), or starts a container the ordinary way when none is ready.
//!
//! **Size.** Each language's pool aims at a target: its floor (`pool.size`,
//! or the language file's `pool_size`), raised to the most runs of it asked for within
//! any [`BURST`] of the last [`MEMORY`] (so that a burst like the last one
//! is served from the pool), within a memory budget shared by every
//! language (`pool.memory_mb`, at
//! [`IDLE_SANDBOX_MB`](crate::config::IDLE_SANDBOX_MB) per waiting sandbox). A pool not asked for over [`MEMORY`] falls back to its floor,
//! and waiting sandboxes beyond the target are removed. (The target is not
//! capped by the run slots: a pooled run ends about fifteen times sooner
//! than a sandbox starts, so a burst at full slots needs many more waiting
//! sandboxes than slots.)
//!
//! **Refills** start up to `pool.refills` containers at once when no run is in
//! flight, and one at a time while runs are (the engine's work of starting
//! a container takes the host's CPU, which the runs need), so that refills
//! never take more than a core from running programs: at once when a pool
//! is empty, else once no run has been asked of it for a quiet moment
//! ([`QUIET`]), so that a request following another does not share the
//! engine with a refill. Repeated start failures
//! back off (0.5 s doubling to 30 s) instead of spinning. A container that
//! died while waiting is discarded, never handed out. When a language's
//! file changes, its waiting containers (made for the old file) are
//! discarded. A compiled language's pool holds pairs: its compile and run
//! sandboxes started side by side on their shared volume
//! ([`Pair`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::pair::Pair;
use crate::config::PoolSettings;
use crate::job::Stage;
use crate::language::{Language, Registry};
use crate::sandbox::{Launch, Launcher, Sandbox, SandboxError, Start};

/// The span over which runs asked for count as one burst.
pub(crate) const BURST: Duration = Duration::from_secs(10);
/// How long demand is remembered.
pub(crate) const MEMORY: Duration = Duration::from_secs(600);
/// Most claims remembered per language.
const MAX_REMEMBERED: usize = 4096;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// While a pool is not empty, it is refilled only once no run has claimed
/// from it for this long, so that starting containers (which costs the
/// host CPU) does not slow the runs in flight; an empty one, at once.
pub(crate) const QUIET: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a pooled container's warm-up may take.
const WARMUP_LIMIT: Duration = Duration::from_secs(30);
/// How long shutdown waits for containers still being started.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The most sandboxes (or pairs, which share one uid) that may wait in the
/// pools of `registry` at once under `settings`: the floors, or what the
/// budget holds, whichever is more.
pub(crate) fn most_waiting(settings: &PoolSettings, registry: &Registry) -> usize {
    let floors: usize = (registry.languages().iter())
        .map(|l| l.pool_size.unwrap_or(settings.size))
        .sum();
    floors.max(settings.budget())
}

/// The pools of every language.
pub(crate) struct Pool {
    launcher: Arc<Launcher>,
    settings: PoolSettings,
    state: Mutex<State>,
    wake: Notify,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("settings", &self.settings)
            .field("ready", &self.ready())
            .finish()
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    starting: usize,
    closed: bool,
    /// Bumped whenever an entry is replaced, so that a container started for
    /// an older entry is not added to a newer one.
    generation: u64,
}

/// What waits in a pool: a sandbox, or a compiled language's pair.
enum Waiting {
    One(Box<Sandbox>),
    Pair(Box<Pair>),
}

impl Waiting {
    fn is_waiting(&mut self) -> bool {
        match self {
            Waiting::One(sandbox) => sandbox.is_waiting(),
            Waiting::Pair(pair) => pair.is_waiting(),
        }
    }
}

struct Entry {
    language: Arc<Language>,
    /// The least it keeps waiting.
    floor: usize,
    /// What it aims at now (see the module's docs).
    size: usize,
    /// When runs of it were asked for, oldest first.
    demand: VecDeque<Instant>,
    generation: u64,
    ready: VecDeque<Waiting>,
    starting: usize,
    failures: u32,
    retry_at: Option<Instant>,
    last_claim: Option<Instant>,
}

impl Pool {
    /// A pool with no languages yet; [`Pool::configure`] gives them.
    pub(crate) fn new(launcher: Arc<Launcher>, settings: PoolSettings) -> Arc<Pool> {
        Arc::new(Pool {
            launcher,
            settings: PoolSettings {
                refills: settings.refills.max(1),
                ..settings
            },
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    /// How a sandbox of `language` starts in the pool: with its
    /// interpreter pre-started when it has a hook and that is on.
    fn start_of(&self, language: &Language) -> Start {
        if self.settings.prestart && language.prestart.is_some() {
            Start::Prestarted
        } else {
            Start::Warm
        }
    }

    /// Whether the pool's sandboxes of `language` have its interpreter
    /// pre-started (whose streams are set before a run is known).
    pub(crate) fn prestarts(&self, language: &Language) -> bool {
        self.start_of(language) == Start::Prestarted
    }

    /// Sets every entry's target from its demand, within the budget, and
    /// removes waiting sandboxes beyond it (returned, to be dropped outside
    /// the lock).
    fn resize(&self, state: &mut State, now: Instant) -> Vec<Waiting> {
        let wants: Vec<(String, usize, usize)> = state
            .entries
            .iter_mut()
            .map(|(name, entry)| {
                while entry.demand.front().is_some_and(|at| now - *at > MEMORY) {
                    entry.demand.pop_front();
                }
                (name.clone(), entry.floor, peak(&entry.demand, BURST))
            })
            .collect();
        let sizes = share(&wants, self.settings.budget());
        let mut surplus = Vec::new();
        for (name, want) in sizes {
            let entry = state.entries.get_mut(&name).expect("entry");
            entry.size = want;
            while entry.ready.len() > want {
                surplus.extend(entry.ready.pop_back());
            }
        }
        surplus
    }

    /// Sizes the pools for `registry`: each language version without a
    /// compile stage gets its `pool_size`, or the server's. Pools of
    /// languages that are gone or whose file changed are emptied.
    pub(crate) fn configure(&self, registry: &Registry) {
        let mut state = self.state.lock().expect("pool lock");
        let mut wanted: HashMap<String, (Arc<Language>, usize)> = HashMap::new();
        for language in registry.languages() {
            // A language with no floor is still pooled once demand asks.
            let floor = language.pool_size.unwrap_or(self.settings.size);
            wanted.insert(language.label(), (language.clone(), floor));
        }
        state.entries.retain(|name, entry| {
            wanted
                .get(name)
                .is_some_and(|(language, _)| Arc::ptr_eq(language, &entry.language))
        });
        for (name, (language, floor)) in wanted {
            if let Some(entry) = state.entries.get_mut(&name) {
                entry.floor = floor;
                continue;
            }
            state.generation += 1;
            let generation = state.generation;
            state.entries.insert(
                name,
                Entry {
                    language,
                    floor,
                    size: floor,
                    demand: VecDeque::new(),
                    generation,
                    ready: VecDeque::new(),
                    starting: 0,
                    failures: 0,
                    retry_at: None,
                    last_claim: None,
                },
            );
        }
        let surplus = self.resize(&mut state, Instant::now());
        drop(state);
        drop(surplus);
        self.wake.notify_one();
    }

    /// A waiting sandbox made for exactly `language`, if one is ready.
    pub(crate) fn claim(&self, language: &Arc<Language>) -> Option<Sandbox> {
        match self.take(language)? {
            Waiting::One(sandbox) => Some(*sandbox),
            Waiting::Pair(_) => None,
        }
    }

    /// A waiting pair made for exactly `language` (a compiled one), if one
    /// is ready.
    pub(crate) fn claim_pair(&self, language: &Arc<Language>) -> Option<Pair> {
        match self.take(language)? {
            Waiting::Pair(pair) => Some(*pair),
            Waiting::One(_) => None,
        }
    }

    /// Counts a run of `language` asked for, and takes what waits for it.
    fn take(&self, language: &Arc<Language>) -> Option<Waiting> {
        let mut state = self.state.lock().expect("pool lock");
        let entry = state.entries.get_mut(&language.label())?;
        if !Arc::ptr_eq(&entry.language, language) {
            return None;
        }
        let now = Instant::now();
        entry.last_claim = Some(now);
        entry.demand.push_back(now);
        if entry.demand.len() > MAX_REMEMBERED {
            entry.demand.pop_front();
        }
        let mut claimed = None;
        while let Some(mut waiting) = entry.ready.pop_front() {
            if waiting.is_waiting() {
                claimed = Some(waiting);
                break;
            }
            // Died while waiting (killed from outside, say): dropping it
            // removes it.
            tracing::warn!(language = %language.label(), "a pooled container had stopped; discarded");
        }
        drop(state);
        self.wake.notify_one();
        claimed
    }

    /// Containers waiting now, per language name (all its versions).
    pub(crate) fn ready(&self) -> HashMap<String, usize> {
        let state = self.state.lock().expect("pool lock");
        let mut ready = HashMap::new();
        for entry in state.entries.values() {
            *ready.entry(entry.language.name.clone()).or_default() += entry.ready.len();
        }
        ready
    }

    /// What each language's pool aims at now, per language name.
    pub(crate) fn targets(&self) -> HashMap<String, usize> {
        let state = self.state.lock().expect("pool lock");
        let mut targets = HashMap::new();
        for entry in state.entries.values() {
            *targets.entry(entry.language.name.clone()).or_default() += entry.size;
        }
        targets
    }

    /// Follows `registry` and refills the pools, until [`Pool::close`] or
    /// `cancel`.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut registry: watch::Receiver<Arc<Registry>>,
        cancel: CancellationToken,
    ) {
        self.configure(&registry.borrow_and_update());
        loop {
            let Some(starts) = self.plan_starts() else {
                return;
            };
            for (name, language, generation) in starts {
                let pool = self.clone();
                tokio::spawn(async move { pool.start_one(name, language, generation).await });
            }
            let pause = self.next_retry().unwrap_or(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::timeout(pause, self.wake.notified()) => {}
                changed = registry.changed() => match changed {
                    Ok(()) => self.configure(&registry.borrow_and_update()),
                    Err(_) => return,
                },
                () = cancel.cancelled() => return,
            }
        }
    }

    /// How many containers may be starting at once now: `refills` while
    /// no run is in flight, else one (see the module's docs).
    fn parallel_starts(&self) -> usize {
        if self.launcher.runs() == 0 {
            self.settings.refills
        } else {
            1
        }
    }

    /// The starts to make now (marked as under way), or `None` once closed.
    fn plan_starts(&self) -> Option<Vec<(String, Arc<Language>, u64)>> {
        let mut state = self.state.lock().expect("pool lock");
        if state.closed {
            return None;
        }
        let now = Instant::now();
        let surplus = self.resize(&mut state, now);
        let parallel = self.parallel_starts();
        let mut starts = Vec::new();
        let mut names: Vec<String> = state.entries.keys().cloned().collect();
        names.sort();
        // Round-robin across languages, one start each per round, until the
        // parallel-start budget is spent.
        loop {
            let mut planned = false;
            for name in &names {
                if state.starting >= parallel {
                    drop(state);
                    drop(surplus);
                    return Some(starts);
                }
                let entry = state.entries.get_mut(name).expect("entry");
                let backing_off = entry.retry_at.is_some_and(|at| at > now);
                let have = entry.ready.len() + entry.starting;
                let urgent = have == 0;
                let quiet = entry.last_claim.is_none_or(|at| now - at >= QUIET);
                if backing_off || have >= entry.size || !(urgent || quiet) {
                    continue;
                }
                entry.starting += 1;
                entry.retry_at = None;
                starts.push((name.clone(), entry.language.clone(), entry.generation));
                state.starting += 1;
                planned = true;
            }
            if !planned {
                drop(state);
                drop(surplus);
                return Some(starts);
            }
        }
    }

    /// When the refiller should look again: the next retry after a
    /// failure, or the end of a quiet period, if one is still to come.
    /// (With every start slot busy, a start's end wakes it instead.)
    fn next_retry(&self) -> Option<Duration> {
        let state = self.state.lock().expect("pool lock");
        if state.starting >= self.parallel_starts() {
            // With runs in flight, look again soon: they may end.
            return Some(Duration::from_millis(100))
                .filter(|_| state.starting < self.settings.refills);
        }
        let now = Instant::now();
        state
            .entries
            .values()
            .flat_map(|e| {
                let quiet_end = e
                    .last_claim
                    .filter(|_| e.ready.len() + e.starting < e.size)
                    .map(|at| at + QUIET);
                [e.retry_at, quiet_end]
            })
            .flatten()
            .filter(|at| *at > now)
            .map(|at| at - now)
            .min()
    }

    /// Starts what waits for a run of `language`: a pair for a compiled
    /// one, else a sandbox (its interpreter pre-started, or warmed up).
    async fn make(&self, language: &Language) -> Result<Waiting, SandboxError> {
        if let Some(compile) = &language.compile {
            return Pair::make(
                &self.launcher,
                language,
                &compile.limits,
                &language.limits,
                true,
            )
            .await
            .map(|pair| Waiting::Pair(Box::new(pair)));
        }
        let launch = Launch {
            language,
            stage: Stage::Run,
            limits: &language.limits,
            volume: None,
            build: None,
            start: self.start_of(language),
        };
        let waits_ready = launch.start == Start::Prestarted || language.warmup.is_some();
        let uid = self.launcher.lease().await;
        let mut sandbox = self.launcher.launch(launch, &uid, None).await?;
        // A container joins the pool once its warm-up (or its interpreter's
        // start) is over, so that a run never spends its own time on it.
        if waits_ready && !sandbox.warmed(WARMUP_LIMIT).await {
            sandbox.into_container().remove_now().await;
            return Err(SandboxError::Internal(format!(
                "the warm-up of `{}` did not end well within {} s",
                language.label(),
                WARMUP_LIMIT.as_secs()
            )));
        }
        Ok(Waiting::One(Box::new(sandbox)))
    }

    async fn start_one(&self, name: String, language: Arc<Language>, generation: u64) {
        let started = self.make(&language).await;
        let unwanted = {
            let mut state = self.state.lock().expect("pool lock");
            let closed = state.closed;
            let entry = state
                .entries
                .get_mut(&name)
                .filter(|e| e.generation == generation);
            match (started, entry) {
                (Ok(waiting), Some(entry)) if !closed && entry.ready.len() < entry.size => {
                    entry.starting -= 1;
                    entry.failures = 0;
                    entry.retry_at = None;
                    entry.ready.push_back(waiting);
                    None
                }
                (Err(e), Some(entry)) => {
                    entry.starting -= 1;
                    entry.failures += 1;
                    let backoff = backoff(entry.failures);
                    entry.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(language = %name, error = %e, ?backoff, "could not start a pooled container");
                    None
                }
                (Ok(waiting), Some(entry)) => {
                    entry.starting -= 1;
                    Some(waiting)
                }
                // The entry was replaced or removed.
                (started, None) => started.ok(),
            }
        };
        // A container nobody wants any more is removed before the start
        // counts as over, so that shutdown, which waits for the starts,
        // finds nothing left behind.
        match unwanted {
            Some(Waiting::One(sandbox)) => sandbox.into_container().remove_now().await,
            Some(Waiting::Pair(pair)) => drop(pair),
            None => {}
        }
        self.state.lock().expect("pool lock").starting -= 1;
        self.wake.notify_one();
    }

    /// Stops refilling (shutdown begins).
    pub(crate) fn close(&self) {
        self.state.lock().expect("pool lock").closed = true;
        self.wake.notify_one();
    }

    /// Stops refilling, waits for the starts under way, and hands every
    /// waiting container to custody for removal.
    pub(crate) async fn shutdown(&self) {
        self.close();
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while self.state.lock().expect("pool lock").starting > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let waiting: Vec<Waiting> = {
            let mut state = self.state.lock().expect("pool lock");
            state
                .entries
                .values_mut()
                .flat_map(|e| e.ready.drain(..))
                .collect()
        };
        // Each handle dropped is queued on its own, so that removals run
        // side by side.
        drop(waiting);
    }
}

/// How long to wait after the `failures`-th start failure in a row: 0.5 s,
/// doubling, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Each pool's size, from its (name, floor, peak demand), within `budget`
/// sandboxes: the floors first (in proportion when they alone are more
/// than the budget holds), then what demand asks above them, in proportion
/// to what each asks.
fn share(wants: &[(String, usize, usize)], budget: usize) -> Vec<(String, usize)> {
    let total: usize = wants.iter().map(|(_, floor, _)| floor).sum();
    let floor_of = |floor: usize| {
        if total > budget {
            floor * budget / total
        } else {
            floor
        }
    };
    let floors: usize = wants.iter().map(|(_, floor, _)| floor_of(*floor)).sum();
    let room = budget.saturating_sub(floors);
    let asked: usize = wants
        .iter()
        .map(|(_, floor, peak)| peak.saturating_sub(floor_of(*floor)))
        .sum();
    wants
        .iter()
        .map(|(name, floor, peak)| {
            let floor = floor_of(*floor);
            let extra = peak.saturating_sub(floor);
            let granted = if asked <= room {
                extra
            } else {
                extra * room / asked
            };
            (name.clone(), floor + granted)
        })
        .collect()
}

/// The most instants of `times` (sorted) within any span of `width`.
fn peak(times: &VecDeque<Instant>, width: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_busiest_span() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times: VecDeque<Instant> = [0, 100, 200, 20_000, 20_001, 20_002, 20_003, 40_000]
            .into_iter()
            .map(at)
            .collect();
        assert_eq!(peak(&times, Duration::from_secs(10)), 4);
        assert_eq!(peak(&times, Duration::from_secs(60)), 8);
        assert_eq!(peak(&VecDeque::new(), Duration::from_secs(1)), 0);
    }

    #[test]
    fn floors_then_demand_share_the_budget() {
        let wants = vec![("a".to_string(), 32, 48), ("b".to_string(), 32, 0)];
        assert_eq!(share(&wants, 100), [("a".into(), 48), ("b".into(), 32)]);
        let wants = vec![("a".to_string(), 32, 48), ("b".to_string(), 32, 0)];
        // The floors alone fill 64: demand gets nothing more.
        assert_eq!(share(&wants, 64), [("a".into(), 32), ("b".into(), 32)]);
        let wants = vec![
            ("a".to_string(), 32, 0),
            ("b".to_string(), 32, 0),
            ("c".to_string(), 32, 0),
            ("d".to_string(), 32, 0),
        ];
        // Four floors of 32 in a budget of 64: 16 each.
        let sizes: Vec<usize> = share(&wants, 64).into_iter().map(|(_, n)| n).collect();
        assert_eq!(sizes, [16, 16, 16, 16]);
        let wants = vec![("a".to_string(), 2, 40), ("b".to_string(), 2, 20)];
        // 56 asked above the floors, 36 of room: in proportion, rounded
        // down (never over the budget).
        assert_eq!(share(&wants, 40), [("a".into(), 26), ("b".into(), 13)]);
        let off = vec![("a".to_string(), 0, 10)];
        assert_eq!(share(&off, 0), [("a".into(), 0)]);
    }

    #[test]
    fn start_failures_back_off_from_half_a_second_doubling_to_thirty() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]
        );
    }

    #[test]
    fn the_budget_holds_the_memory_over_the_cost_of_a_sandbox() {
        let settings = PoolSettings {
            size: 2,
            refills: 2,
            memory_mb: 768,
            prestart: true,
        };
        assert_eq!(settings.budget(), 64);
    }
}
