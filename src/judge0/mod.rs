//! Judge0 CE 1.13.1's model, over the one run pipeline: a submission is
//! checked ([`request`]), stored ([`store`]: SQLite or PostgreSQL) and
//! queued; this service's workers take it within the run slots, run it
//! through the [`Runner`], judge the result as Judge0 does ([`verdict`]),
//! store it once, and call its `callback_url` back ([`callback`]). The
//! HTTP side (`api::judge0`) reads it back and writes it with [`render`];
//! its statuses are [`status`]'s.
//!
//! Each submission keeps the client that queued it: with keys on, a key
//! reaches only its own ([`Scope`]); a client may hold only its share of
//! the queue and of the store, counted inside the insert's transaction
//! ([`Bounds`]); and workers take turns across clients (the oldest of the
//! least-served client's submissions), while all of them run as one
//! client of the run slots, `judge0-workers`.
//!
//! A claim is a lease the worker renews; when its holder dies (`kill -9`)
//! the claim is taken back: at once by the same instance's next life, or
//! by any service once the lease has run out. A submission is run again
//! after such a loss at most once ([`MAX_ATTEMPTS`]); after a second, it
//! is finished as an Internal Error saying so. None stays "In Queue".

pub(crate) mod callback;
pub(crate) mod render;
pub(crate) mod request;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod verdict;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Judge0Config, RequestBounds};
use crate::job::Client;
use crate::runner::{RunError, Runner};
use callback::{Callbacks, Caller};
use render::{Fields, Record, SubmissionView};
use request::{Allowances, Errors, Submission};
use status::Judge0Status;
use store::overview::{Counts, DAY_MS, Page};
use store::{
    Bounds, Claimed, Deleted, Found, Full, Queued, Scope, Store, StoreError, Unreadable, Worker,
    now_ms,
};
use verdict::Judged;

/// How long a claim holds unless renewed.
pub(crate) const LEASE: Duration = Duration::from_secs(30);
/// How often a worker renews its claim.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often the janitor takes back lost claims and removes old results.
const JANITOR_EVERY: Duration = Duration::from_secs(5);
/// How often an idle worker looks for queued submissions (it is also woken
/// when this service queues one).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Claims of one submission before a loss is final.
pub(crate) const MAX_ATTEMPTS: i64 = 2;
/// How long a worker keeps retrying while Docker cannot be reached.
const DOCKER_PATIENCE: Duration = Duration::from_secs(60);

/// Why a Judge0 call could not be served (the service's trouble).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Judge0Error {
    /// Storing them would pass a bound of the queue or the store.
    #[error(transparent)]
    Full(#[from] Full),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored submission cannot be decoded: the service's fault, not
    /// the database's.
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    /// Submissions are not stored here (`judge0.database = "off"`).
    #[error(
        "submissions are not stored on this server (judge0.database is off): only wait=true is served"
    )]
    NotStored,
    #[error(transparent)]
    Run(RunError),
}

/// Judge0's service: the store, the workers' shared state, the settings.
pub(crate) struct Judge0<R> {
    runner: Arc<R>,
    store: Option<Store>,
    settings: Judge0Config,
    bounds: RequestBounds,
    worker: Worker,
    wake: Notify,
    /// The callbacks being sent, beside the workers.
    callbacks: Callbacks,
    /// The client its workers' runs count as: stored submissions share
    /// its fair share of the run slots.
    client: Client,
    /// What its workers are doing ([`Judge0::workers`]).
    tally: Tally,
}

/// This service's workers, counted as they go: those taking submissions,
/// those running one, and the submissions finished as Internal Errors.
#[derive(Debug, Default)]
struct Tally {
    workers: AtomicUsize,
    working: AtomicUsize,
    failed: AtomicU64,
}

/// Counts one in while it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Counted<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The queue and this service's workers, as `GET /judge0/workers` gives
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Workers {
    /// Submissions waiting, every service's.
    pub(crate) queued: i64,
    /// This service's workers taking submissions.
    pub(crate) workers: usize,
    /// Those of them running one now.
    pub(crate) working: usize,
    /// Submissions this service finished as Internal Errors since it
    /// started (a run that failed, or a claim lost twice).
    pub(crate) failed: u64,
}

impl<R> std::fmt::Debug for Judge0<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge0")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl<R: Runner> Judge0<R> {
    /// The service; `store` is `None` when submissions are not stored
    /// (then only `wait=true` runs are served).
    pub(crate) fn new(
        runner: Arc<R>,
        store: Option<Store>,
        settings: Judge0Config,
        bounds: RequestBounds,
        worker: Worker,
    ) -> Judge0<R> {
        let caller = Caller::new(
            &settings.callback_hosts,
            settings.callback_tries,
            settings.callback_timeout(),
        );
        let callbacks = Callbacks::new(caller, settings.max_callbacks);
        Judge0 {
            runner,
            store,
            settings,
            bounds,
            worker,
            wake: Notify::new(),
            callbacks,
            client: Arc::from("judge0-workers"),
            tally: Tally::default(),
        }
    }

    /// The `[judge0]` settings it was made with.
    pub(crate) fn settings(&self) -> &Judge0Config {
        &self.settings
    }

    /// Whether submissions are stored (and so can be polled).
    pub(crate) fn stores(&self) -> bool {
        self.store.is_some()
    }

    /// Checks one submission (a JSON object).
    pub(crate) fn accept(&self, body: &Value, base64: bool) -> Result<Submission, Errors> {
        let allow = Allowances {
            bounds: &self.bounds,
            callback_hosts: &self.settings.callback_hosts,
            client: &self.client,
        };
        Submission::parse(body, base64, &self.runner.registry(), &allow)
    }

    fn store(&self) -> Result<&Store, Judge0Error> {
        self.store.as_ref().ok_or(Judge0Error::NotStored)
    }

    /// Queues `client`'s `submissions`, all or none, within the queue's
    /// and the store's bounds; their tokens, in order.
    pub(crate) async fn enqueue(
        &self,
        client: &Client,
        submissions: &[Submission],
    ) -> Result<Vec<String>, Judge0Error> {
        let store = self.store()?;
        let rows: Vec<Queued> = submissions
            .iter()
            .map(|s| Queued {
                token: uuid::Uuid::new_v4().to_string(),
                request: serde_json::to_string(s).expect("a submission serialises"),
                language_id: s.language_id,
            })
            .collect();
        store
            .insert(client, &rows, &Bounds::of(&self.settings))
            .await??;
        self.wake.notify_waiters();
        Ok(rows.into_iter().map(|row| row.token).collect())
    }

    /// The queue and this service's workers; `None` when nothing is
    /// stored (no queue, no workers).
    pub(crate) async fn workers(&self) -> Result<Option<Workers>, Judge0Error> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let tally = &self.tally;
        Ok(Some(Workers {
            queued: store.queued().await?,
            workers: tally.workers.load(Ordering::Relaxed),
            working: tally.working.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
        }))
    }

    /// The counts of the submissions `scope` reaches, by language, by
    /// status, and by day over the last `days` days and today (UTC); and
    /// today's day since the epoch.
    pub(crate) async fn counts(
        &self,
        scope: Scope<'_>,
        days: i64,
    ) -> Result<(Counts, i64), Judge0Error> {
        let today = now_ms().div_euclid(DAY_MS);
        Ok((self.store()?.counts(scope, today - days).await?, today))
    }

    /// The `limit` submissions `scope` reaches after the newest `offset`,
    /// newest first, and how many it reaches.
    pub(crate) async fn page(
        &self,
        scope: Scope<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Page, Judge0Error> {
        Ok(self.store()?.page(scope, offset, limit).await?)
    }

    /// The submission `token`, if stored and `scope` reaches it.
    pub(crate) async fn find(
        &self,
        token: &str,
        scope: Scope<'_>,
    ) -> Result<Option<Found>, Judge0Error> {
        match self.store()?.get(token, scope).await? {
            Some(stored) => Ok(Some(Found::read(stored)?)),
            None => Ok(None),
        }
    }

    /// Deletes a finished submission `scope` reaches.
    pub(crate) async fn delete(
        &self,
        token: &str,
        scope: Scope<'_>,
    ) -> Result<Result<Found, Deleted>, Judge0Error> {
        match self.store()?.delete(token, scope).await? {
            Deleted::Gone(stored) => Ok(Ok(Found::read(stored)?)),
            other => Ok(Err(other)),
        }
    }

    /// Waits (polling) until `token`, just queued by its caller, has
    /// finished, for at most the configured `wait_timeout`; its state then,
    /// finished or not.
    pub(crate) async fn wait(&self, token: &str) -> Result<Option<Found>, Judge0Error> {
        let deadline = Instant::now() + self.settings.wait_timeout();
        loop {
            let found = self.find(token, Scope::Every).await?;
            let done = found.as_ref().is_none_or(|f| f.status.finished());
            if done || Instant::now() >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a submission at once for `client`, storing nothing (storage
    /// off).
    pub(crate) async fn run_now(
        &self,
        submission: &Submission,
        client: &Client,
    ) -> Result<Judged, Judge0Error> {
        self.execute(submission, client)
            .await
            .map_err(Judge0Error::Run)
    }

    /// Runs a submission for `client` and judges it.
    async fn execute(&self, submission: &Submission, client: &Client) -> Result<Judged, RunError> {
        let registry = self.runner.registry();
        let job = match submission.job(&registry, &self.bounds, client.clone()) {
            Ok(job) => job,
            // Accepted once, refused now: its language changed meanwhile.
            Err((field, why)) => return Ok(Judged::internal(format!("{field} {why}"))),
        };
        let report = self.runner.run(job).await?;
        Ok(verdict::judge(submission, &report.outcome))
    }

    /// One worker: takes queued submissions one at a time until `stop`.
    pub(crate) async fn work(self: Arc<Self>, stop: CancellationToken) {
        let Some(store) = self.store.clone() else {
            return;
        };
        // Shutdown waits for this worker's last callback too.
        let _handing_over = self.callbacks.hold();
        let _counted = Counted::new(&self.tally.workers);
        while !stop.is_cancelled() {
            let claimed = match store.claim(&self.worker, LEASE).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "judge0: cannot claim a submission");
                    None
                }
            };
            match claimed {
                Some(claimed) => self.process(&store, claimed).await,
                None => {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
            }
        }
    }

    async fn process(&self, store: &Store, claimed: Claimed) {
        let _working = Counted::new(&self.tally.working);
        let token = claimed.token.clone();
        let renewing = {
            let (store, worker, id) = (store.clone(), self.worker.clone(), claimed.id);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    match store.renew(id, &worker, LEASE).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => tracing::warn!(error = %e, "judge0: cannot renew a claim"),
                    }
                }
            })
        };
        let _renewing = tokio_util::task::AbortOnDropHandle::new(renewing);
        let submission: Submission = match serde_json::from_str(&claimed.request) {
            Ok(s) => s,
            Err(e) => {
                let judged = hidden(&token, "the stored submission cannot be read", &e);
                self.record(store, &claimed, &judged, None).await;
                return;
            }
        };
        let began = Instant::now();
        let judged = loop {
            match self.execute(&submission, &self.client).await {
                Ok(judged) => break judged,
                Err(RunError::Busy | RunError::ClientBusy) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(RunError::ShuttingDown) => {
                    if let Err(e) = store.release(claimed.id, &self.worker).await {
                        tracing::warn!(%token, error = %e, "judge0: cannot put a submission back in the queue");
                    }
                    return;
                }
                Err(RunError::DockerUnavailable(why)) if began.elapsed() < DOCKER_PATIENCE => {
                    tracing::warn!(%token, %why, "judge0: Docker cannot be reached; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(RunError::Internal(cause)) => break hidden(&token, "run failed", &cause),
                Err(e) => break Judged::internal(e.to_string()),
            }
        };
        self.record(store, &claimed, &judged, Some(&submission))
            .await;
    }

    /// Stores `judged` as `claimed`'s result, then hands its callback to
    /// the background set (the worker never waits for it).
    async fn record(
        &self,
        store: &Store,
        claimed: &Claimed,
        judged: &Judged,
        submission: Option<&Submission>,
    ) {
        let result = serde_json::to_string(judged).expect("a result serialises");
        match store
            .finish(claimed.id, &self.worker, judged.status_id, &result)
            .await
        {
            Ok(true) => {
                tracing::info!(token = %claimed.token, status = judged.status_id.id(), "judge0: submission finished");
                if judged.status_id == Judge0Status::InternalError {
                    self.tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(false) => {
                tracing::warn!(token = %claimed.token, "judge0: the claim was lost before the result was stored; it is another's now");
                return;
            }
            Err(e) => {
                tracing::error!(token = %claimed.token, error = %e, "judge0: cannot store a result");
                return;
            }
        }
        let Some(submission) = submission else { return };
        let Some(url) = submission.callback_url.as_deref() else {
            return;
        };
        let record = Record {
            token: &claimed.token,
            status: judged.status_id,
            submission,
            judged: Some(judged),
            created_at: 0,
            finished_at: Some(now_ms()),
        };
        let registry = self.runner.registry();
        let view = SubmissionView::new(&record, true, &registry).select(&Fields::default());
        let body = serde_json::to_string(&view).expect("a view in base64 is always written");
        self.callbacks.send(&claimed.token, url, body);
    }

    /// From shutdown on (`stopping`), waits for the workers' last
    /// callbacks to be sent, for at most `grace`; then drops those left,
    /// logged.
    pub(crate) async fn finish_callbacks(
        self: Arc<Self>,
        stopping: CancellationToken,
        grace: Duration,
    ) {
        stopping.cancelled().await;
        self.callbacks.finish(grace).await;
    }

    /// Takes back lost claims at once, then every few seconds, and removes
    /// results older than `keep_results`; until `stop`.
    pub(crate) async fn janitor(self: Arc<Self>, stop: CancellationToken) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let failed = serde_json::to_string(&Judged::internal(format!(
            "the service running this submission stopped during its run {MAX_ATTEMPTS} times; it is not run again"
        )))
        .expect("a result serialises");
        loop {
            match store.recover(&self.worker, MAX_ATTEMPTS, &failed).await {
                Ok((0, 0)) => {}
                Ok((requeued, failed)) => {
                    self.tally.failed.fetch_add(failed, Ordering::Relaxed);
                    tracing::warn!(
                        requeued,
                        failed,
                        "judge0: took back the submissions of a service that stopped"
                    );
                    self.wake.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "judge0: cannot take back lost claims"),
            }
            let before = now_ms() - self.settings.keep_results().as_millis() as i64;
            match store.purge(before).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "judge0: removed old results"),
                Err(e) => tracing::warn!(error = %e, "judge0: cannot remove old results"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(JANITOR_EVERY) => {}
            }
        }
    }
}

/// An internal fault of a stored submission's run, logged with a request
/// id and recorded as an Internal Error that gives the id, not the cause
/// (engine messages and the supervisor's words are not the client's).
fn hidden(token: &str, what: &str, cause: &dyn std::fmt::Display) -> Judged {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::error!(%token, %request_id, %cause, "judge0: {what}");
    Judged::internal(format!(
        "internal error; quote request id {request_id} when reporting it"
    ))
}
