//! The pool: per language, sandboxes created and started ahead of demand,
//! with exactly a cold run's hardened configuration, each waiting for its
//! payload. A run claims one (it is then used by that run alone and
//! removed), or starts a container the ordinary way when none is ready.
//!
//! A background task refills the pools, starting up to `refills`
//! containers at once so that a burst does not drain them: at once when a
//! pool is half empty or less, else after a quiet moment, so that a start
//! does not slow the runs in flight. Repeated start failures back off (0.5
//! s doubling to 30 s) instead of spinning. A
//! container that died while waiting is discarded, never handed out. When a
//! language's file changes, its waiting containers (made for the old file)
//! are discarded. Only languages without a compile stage are pooled.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::ExecError;
use super::launcher::{Launch, Launcher};
use super::sandbox::Sandbox;
use super::spec::Start;
use crate::job::Stage;
use crate::language::{Language, Registry};

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// While a pool is more than half full, it is refilled only once no run
/// has claimed from it for this long, so that starting containers (which
/// costs the host CPU) does not slow the runs in flight; below half, at once.
const QUIET: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a pooled container's warm-up may take.
const WARMUP_LIMIT: Duration = Duration::from_secs(30);
/// How long shutdown waits for containers still being started.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The pools of every language.
pub struct Pool {
    launcher: Arc<Launcher>,
    refills: usize,
    /// The server's `pool_size`, for languages whose file gives none.
    default_size: usize,
    state: Mutex<State>,
    wake: Notify,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("refills", &self.refills)
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

struct Entry {
    language: Arc<Language>,
    size: usize,
    generation: u64,
    ready: VecDeque<Sandbox>,
    starting: usize,
    failures: u32,
    retry_at: Option<Instant>,
    last_claim: Option<Instant>,
}

impl Pool {
    /// A pool with no languages yet; [`Pool::configure`] gives them.
    pub fn new(launcher: Arc<Launcher>, refills: usize, default_size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            launcher,
            refills: refills.max(1),
            default_size,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    /// Sizes the pools for `registry`: each language version without a
    /// compile stage gets its `pool_size`, or the server's. Pools of
    /// languages that are gone or whose file changed are emptied.
    pub fn configure(&self, registry: &Registry) {
        let mut state = self.state.lock().expect("pool lock");
        let mut wanted: HashMap<String, (Arc<Language>, usize)> = HashMap::new();
        for language in registry.languages() {
            let size = if language.compile.is_some() {
                0
            } else {
                language.pool_size.unwrap_or(self.default_size)
            };
            if size > 0 {
                wanted.insert(language.label(), (language.clone(), size));
            }
        }
        state.entries.retain(|name, entry| {
            wanted
                .get(name)
                .is_some_and(|(language, _)| Arc::ptr_eq(language, &entry.language))
        });
        for (name, (language, size)) in wanted {
            if let Some(entry) = state.entries.get_mut(&name) {
                entry.size = size;
                entry.ready.truncate(size);
                continue;
            }
            state.generation += 1;
            let generation = state.generation;
            state.entries.insert(
                name,
                Entry {
                    language,
                    size,
                    generation,
                    ready: VecDeque::new(),
                    starting: 0,
                    failures: 0,
                    retry_at: None,
                    last_claim: None,
                },
            );
        }
        drop(state);
        self.wake.notify_one();
    }

    /// A waiting sandbox made for exactly `language`, if one is ready.
    pub fn claim(&self, language: &Arc<Language>) -> Option<Sandbox> {
        let mut state = self.state.lock().expect("pool lock");
        let entry = state.entries.get_mut(&language.label())?;
        if !Arc::ptr_eq(&entry.language, language) {
            return None;
        }
        entry.last_claim = Some(Instant::now());
        let mut claimed = None;
        while let Some(mut sandbox) = entry.ready.pop_front() {
            if sandbox.is_waiting() {
                claimed = Some(sandbox);
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
    pub fn ready(&self) -> HashMap<String, usize> {
        let state = self.state.lock().expect("pool lock");
        let mut ready = HashMap::new();
        for entry in state.entries.values() {
            *ready.entry(entry.language.name.clone()).or_default() += entry.ready.len();
        }
        ready
    }

    /// Follows `registry` and refills the pools, until [`Pool::close`] or
    /// `cancel`.
    pub async fn run(
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

    /// The starts to make now (marked as under way), or `None` once closed.
    fn plan_starts(&self) -> Option<Vec<(String, Arc<Language>, u64)>> {
        let mut state = self.state.lock().expect("pool lock");
        if state.closed {
            return None;
        }
        let now = Instant::now();
        let mut starts = Vec::new();
        let mut names: Vec<String> = state.entries.keys().cloned().collect();
        names.sort();
        // Round-robin across languages, one start each per round, until the
        // parallel-start budget is spent.
        loop {
            let mut planned = false;
            for name in &names {
                if state.starting >= self.refills {
                    return Some(starts);
                }
                let entry = state.entries.get_mut(name).expect("entry");
                let backing_off = entry.retry_at.is_some_and(|at| at > now);
                let have = entry.ready.len() + entry.starting;
                let urgent = have * 2 <= entry.size;
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
                return Some(starts);
            }
        }
    }

    /// When the refiller should look again: the next retry after a
    /// failure, or the end of a quiet period, if one is still to come.
    /// (With every start slot busy, a start's end wakes it instead.)
    fn next_retry(&self) -> Option<Duration> {
        let state = self.state.lock().expect("pool lock");
        if state.starting >= self.refills {
            return None;
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

    async fn start_one(&self, name: String, language: Arc<Language>, generation: u64) {
        let launch = Launch {
            language: &language,
            stage: Stage::Run,
            limits: &language.limits,
            volume: None,
            build: None,
            start: Start::Warm,
        };
        let uid = self.launcher.lease().await;
        let mut started = self.launcher.launch(launch, &uid, None).await;
        // A container joins the pool once its warm-up is over, so that a run
        // never spends its own time on it.
        let cold = match (&mut started, &language.warmup) {
            (Ok(sandbox), Some(_)) => !sandbox.warmed(WARMUP_LIMIT).await,
            _ => false,
        };
        if cold {
            if let Ok(sandbox) = started {
                sandbox.into_container().remove_now().await;
            }
            started = Err(ExecError::Internal(format!(
                "the warm-up of `{}` did not end within {} s",
                language.label(),
                WARMUP_LIMIT.as_secs()
            )));
        }
        let unwanted = {
            let mut state = self.state.lock().expect("pool lock");
            let closed = state.closed;
            let entry = state
                .entries
                .get_mut(&name)
                .filter(|e| e.generation == generation);
            match (started, entry) {
                (Ok(sandbox), Some(entry)) if !closed && entry.ready.len() < entry.size => {
                    entry.starting -= 1;
                    entry.failures = 0;
                    entry.retry_at = None;
                    entry.ready.push_back(sandbox);
                    None
                }
                (Err(e), Some(entry)) => {
                    entry.starting -= 1;
                    entry.failures += 1;
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << entry.failures.min(8))
                        .min(MAX_BACKOFF);
                    entry.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(language = %name, error = %e, ?backoff, "could not start a pooled container");
                    None
                }
                (Ok(sandbox), Some(entry)) => {
                    entry.starting -= 1;
                    Some(sandbox)
                }
                // The entry was replaced or removed.
                (started, None) => started.ok(),
            }
        };
        // A container nobody wants any more is removed before the start
        // counts as over, so that shutdown, which waits for the starts,
        // finds nothing left behind.
        if let Some(sandbox) = unwanted {
            sandbox.into_container().remove_now().await;
        }
        self.state.lock().expect("pool lock").starting -= 1;
        self.wake.notify_one();
    }

    /// Stops refilling (shutdown begins).
    pub fn close(&self) {
        self.state.lock().expect("pool lock").closed = true;
        self.wake.notify_one();
    }

    /// Stops refilling, waits for the starts under way, and hands every
    /// waiting container to custody for removal.
    pub async fn shutdown(&self) {
        self.close();
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while self.state.lock().expect("pool lock").starting > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let waiting: Vec<Sandbox> = {
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
