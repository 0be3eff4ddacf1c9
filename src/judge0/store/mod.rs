//! Stored submissions: one table (`judge0_submissions`) in an embedded
//! SQLite file or in PostgreSQL, through one code path (sqlx's `Any`
//! driver); the schema's migrations are embedded (`migrations/sqlite`,
//! `migrations/postgres`) and run at start-up.
//!
//! A submission is queued (status 1), claimed by one worker (status 2,
//! with a lease it renews), and finished once (status 3 and above): the
//! write of its result is fenced by the claim, so a worker that lost its
//! claim cannot overwrite another's result. In PostgreSQL, workers of
//! several services claim with `FOR UPDATE SKIP LOCKED`; SQLite serialises
//! writers itself. Each row keeps its client and its bytes; inserts are
//! held to [`Bounds`] inside their transaction, reads and deletes to a
//! [`Scope`]. A row read back is decoded into a [`Found`]; one that
//! cannot be is [`Unreadable`], a data error rather than the database's.
//! What it says of itself (counts, the queue, pages) is [`overview`]'s.

pub(crate) mod overview;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::request::Submission;
use super::status::Judge0Status;
use super::verdict::Judged;
use crate::config::Judge0Config;

/// A failure of the database, described.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the submissions database failed: {0}")]
pub struct StoreError(pub(crate) String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        StoreError(e.to_string())
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The submissions database.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A stored submission, as read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stored {
    pub(crate) token: String,
    pub(crate) status_id: i64,
    /// The accepted request (JSON).
    pub(crate) request: String,
    /// The result (JSON), once finished.
    pub(crate) result: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub(crate) created_at: i64,
    pub(crate) finished_at: Option<i64>,
}

/// A submission to queue: its token, its request (JSON) and the Judge0
/// language it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Queued {
    pub(crate) token: String,
    pub(crate) request: String,
    pub(crate) language_id: i64,
}

/// A submission a worker has claimed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claimed {
    pub(crate) id: i64,
    pub(crate) token: String,
    pub(crate) request: String,
    /// How many times it has been claimed, this time included.
    pub(crate) attempts: i64,
}

/// Who holds a claim: a service (`instance`) in one of its lives (`boot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Worker {
    pub(crate) instance: String,
    pub(crate) boot: String,
}

/// What a delete found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Deleted {
    /// It was finished, and is gone now.
    Gone(Stored),
    /// It is queued or running (its status), and stays.
    Busy(i64),
    Missing,
}

/// A stored submission, decoded: the request as accepted, its status and,
/// once finished, its result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub(crate) stored: Stored,
    pub(crate) status: Judge0Status,
    pub(crate) submission: Submission,
    pub(crate) judged: Option<Judged>,
}

/// A stored row that cannot be decoded: a data error (a corrupt row, or
/// one an incompatible version wrote), not an outage of the database.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unreadable(pub(crate) String);

impl Found {
    /// Decodes a row.
    pub(crate) fn read(stored: Stored) -> Result<Found, Unreadable> {
        let token = &stored.token;
        let status = Judge0Status::try_from(stored.status_id)
            .map_err(|e| Unreadable(format!("submission {token} has no status: {e}")))?;
        let submission = serde_json::from_str(&stored.request)
            .map_err(|e| Unreadable(format!("submission {token} cannot be read: {e}")))?;
        let judged = match &stored.result {
            Some(result) => Some(
                serde_json::from_str(result)
                    .map_err(|e| Unreadable(format!("result of {token} cannot be read: {e}")))?,
            ),
            None => None,
        };
        Ok(Found {
            stored,
            status,
            submission,
            judged,
        })
    }
}

/// The key of PostgreSQL's advisory lock that inserts take, so that each
/// counts and inserts alone ("judge0" in ASCII).
const INSERT_LOCK: i64 = 0x6a75_6467_6530;

/// What the store may hold, checked at each insert: submissions queued,
/// stored (queued or finished) and their bytes, in all and per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) queue: usize,
    pub(crate) client_queue: usize,
    pub(crate) stored: usize,
    pub(crate) client_stored: usize,
    pub(crate) bytes: u64,
    pub(crate) client_bytes: u64,
}

/// The bound an insert would pass: the queue's, then the store's; the
/// whole's before a client's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Full {
    #[error(
        "queue is full for this client: at most {0} of its submissions may wait (judge0.client_max_queue); retry when one has run"
    )]
    ClientQueue(usize),
    #[error("queue is full")]
    Queue,
    #[error(
        "this client has {0} submissions stored, the most it may (judge0.client_max_stored); delete finished ones or wait until they expire"
    )]
    ClientRows(usize),
    #[error(
        "this client's stored submissions would hold more than {0} bytes (judge0.client_max_stored_bytes); delete finished ones or wait until they expire"
    )]
    ClientBytes(u64),
    #[error(
        "the submissions database holds {0} submissions, the most it may (judge0.max_stored); retry later"
    )]
    Rows(usize),
    #[error(
        "the submissions database would hold more than {0} bytes (judge0.max_stored_bytes); retry later"
    )]
    Bytes(u64),
}

/// Rows, bytes and queued rows: of one client, of all, or to be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    rows: i64,
    bytes: i64,
    queued: i64,
}

impl Bounds {
    /// The bounds of the `[judge0]` settings.
    pub(crate) fn of(settings: &Judge0Config) -> Bounds {
        Bounds {
            queue: settings.max_queue,
            client_queue: settings.client_queue(),
            stored: settings.max_stored,
            client_stored: settings.client_stored(),
            bytes: settings.max_stored_bytes,
            client_bytes: settings.client_stored_bytes(),
        }
    }

    /// Whether `adding` keeps a client using `mine`, of `all`, within
    /// every bound; the first it would pass otherwise.
    fn admit(&self, mine: &Usage, all: &Usage, adding: &Usage) -> Result<(), Full> {
        let over = |used: i64, cap: u64| used.max(0) as u64 > cap;
        let checks = [
            (all.queued + adding.queued, self.queue as u64, Full::Queue),
            (
                mine.queued + adding.queued,
                self.client_queue as u64,
                Full::ClientQueue(self.client_queue),
            ),
            (
                all.rows + adding.rows,
                self.stored as u64,
                Full::Rows(self.stored),
            ),
            (
                all.bytes + adding.bytes,
                self.bytes,
                Full::Bytes(self.bytes),
            ),
            (
                mine.rows + adding.rows,
                self.client_stored as u64,
                Full::ClientRows(self.client_stored),
            ),
            (
                mine.bytes + adding.bytes,
                self.client_bytes,
                Full::ClientBytes(self.client_bytes),
            ),
        ];
        match checks.into_iter().find(|(used, cap, _)| over(*used, *cap)) {
            Some((_, _, full)) => Err(full),
            None => Ok(()),
        }
    }
}

/// What `client` (or, with `None`, every client) holds in the store.
async fn usage(conn: &mut sqlx::AnyConnection, client: Option<&str>) -> Result<Usage, sqlx::Error> {
    let only = if client.is_some() {
        " WHERE client = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b, \
         CAST(COALESCE(SUM(CASE WHEN status_id = $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS q \
         FROM judge0_submissions{only}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(Judge0Status::InQueue.id());
    if let Some(client) = client {
        query = query.bind(client);
    }
    let row = query.fetch_one(conn).await?;
    Ok(Usage {
        rows: row.try_get("n")?,
        bytes: row.try_get("b")?,
        queued: row.try_get("q")?,
    })
}

/// Whose submissions a read or a delete reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    /// Every client's: keys are off, or the key is granted `judge0:all`.
    Every,
    /// One client's only; another's is as if it did not exist.
    Client(&'a str),
}

impl<'a> Scope<'a> {
    /// The condition it adds to a query whose next parameter is `$n`.
    fn clause(self, n: usize) -> String {
        match self {
            Scope::Every => String::new(),
            Scope::Client(_) => format!(" AND client = ${n}"),
        }
    }

    /// Binds the parameter of [`Scope::clause`], if any.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>
    where
        'a: 'q,
    {
        match self {
            Scope::Every => query,
            Scope::Client(client) => query.bind(client),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const STORED_COLUMNS: &str = "token, status_id, request, result, created_at, finished_at";

fn stored(row: &AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        token: row.try_get("token")?,
        status_id: row.try_get("status_id")?,
        request: row.try_get("request")?,
        result: row.try_get("result")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created when missing,
    /// or `postgres://…`) and brings its schema up to date.
    ///
    /// Errors: the URL names another database, or it cannot be opened or
    /// migrated (the message says which and why).
    pub(crate) async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let url = if rest.contains("mode=") {
                url.to_string()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError(format!(
                "`{url}` is neither a sqlite:// nor a postgres:// URL"
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Queues `client`'s submissions, all or none,
    /// if that keeps the store within `bounds`; otherwise the bound it
    /// would pass. The bounds are read inside the insert's transaction,
    /// which holds the database's write lock (SQLite's `BEGIN IMMEDIATE`)
    /// or the inserts' advisory lock (PostgreSQL) from the count to the
    /// commit, so concurrent inserts cannot overshoot them together.
    pub(crate) async fn insert(
        &self,
        client: &str,
        rows: &[Queued],
        bounds: &Bounds,
    ) -> Result<Result<(), Full>, StoreError> {
        let now = now_ms();
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                    .bind(INSERT_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let adding = Usage {
            rows: rows.len() as i64,
            bytes: rows.iter().map(|r| r.request.len() as i64).sum(),
            queued: rows.len() as i64,
        };
        let mine = usage(&mut tx, Some(client)).await?;
        let all = usage(&mut tx, None).await?;
        if let Err(full) = bounds.admit(&mine, &all, &adding) {
            tx.rollback().await?;
            return Ok(Err(full));
        }
        for row in rows {
            sqlx::query(
                "INSERT INTO judge0_submissions (token, status_id, request, created_at, client, bytes, language_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&row.token)
            .bind(Judge0Status::InQueue.id())
            .bind(&row.request)
            .bind(now)
            .bind(client)
            .bind(row.request.len() as i64)
            .bind(row.language_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Claims a queued submission for `worker`, until `lease` from now
    /// unless renewed: the oldest of the client least served, that is with
    /// the fewest running, then the one whose last claim is the oldest
    /// (round-robin across clients), so that one client's queue does not
    /// hold the others' back.
    pub(crate) async fn claim(
        &self,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE judge0_submissions \
             SET status_id = $1, instance = $2, boot = $3, lease_until = $4, attempts = attempts + 1, claimed_at = $6 \
             WHERE id = (SELECT q.id FROM judge0_submissions q WHERE q.status_id = $5 \
                 ORDER BY (SELECT COUNT(*) FROM judge0_submissions r WHERE r.client = q.client AND r.status_id = $1), \
                   (SELECT COALESCE(MAX(c.claimed_at), 0) FROM judge0_submissions c WHERE c.client = q.client), \
                   q.id \
                 LIMIT 1{skip_locked}) \
               AND status_id = $5 \
             RETURNING id, token, request, attempts"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(Judge0Status::Processing.id())
            .bind(&worker.instance)
            .bind(&worker.boot)
            .bind(now_ms() + lease.as_millis() as i64)
            .bind(Judge0Status::InQueue.id())
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Claimed {
            id: row.try_get("id")?,
            token: row.try_get("token")?,
            request: row.try_get("request")?,
            attempts: row.try_get("attempts")?,
        }))
    }

    /// Extends `worker`'s claim on `id` to `lease` from now; false when it
    /// no longer holds it.
    pub(crate) async fn renew(
        &self,
        id: i64,
        worker: &Worker,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE judge0_submissions SET lease_until = $1 \
             WHERE id = $2 AND status_id = $3 AND instance = $4 AND boot = $5",
        )
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(id)
        .bind(Judge0Status::Processing.id())
        .bind(&worker.instance)
        .bind(&worker.boot)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the result of `id`, if `worker` still holds it; false when
    /// it does not (the result is then another's to give).
    pub(crate) async fn finish(
        &self,
        id: i64,
        worker: &Worker,
        status: Judge0Status,
        result: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE judge0_submissions \
             SET status_id = $1, result = $2, finished_at = $3, lease_until = NULL, bytes = bytes + $8 \
             WHERE id = $4 AND status_id = $5 AND instance = $6 AND boot = $7",
        )
        .bind(status.id())
        .bind(result)
        .bind(now_ms())
        .bind(id)
        .bind(Judge0Status::Processing.id())
        .bind(&worker.instance)
        .bind(&worker.boot)
        .bind(result.len() as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts `id` back in the queue, as if never claimed (the service is
    /// stopping and did not run it).
    pub(crate) async fn release(&self, id: i64, worker: &Worker) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE judge0_submissions \
             SET status_id = $1, instance = NULL, boot = NULL, lease_until = NULL, attempts = attempts - 1 \
             WHERE id = $2 AND status_id = $3 AND instance = $4 AND boot = $5",
        )
        .bind(Judge0Status::InQueue.id())
        .bind(id)
        .bind(Judge0Status::Processing.id())
        .bind(&worker.instance)
        .bind(&worker.boot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes back the claims whose holder is gone: leases past their time,
    /// and any claim of `worker`'s instance from an earlier life. Each is
    /// queued again if it has been claimed fewer than `max_attempts`
    /// times; otherwise it is finished as an internal error with
    /// `failed` (a result JSON). Returns (queued again, failed).
    pub(crate) async fn recover(
        &self,
        worker: &Worker,
        max_attempts: i64,
        failed: &str,
    ) -> Result<(u64, u64), StoreError> {
        let now = now_ms();
        let orphaned = "status_id = $1 AND (lease_until < $2 OR (instance = $3 AND boot <> $4))";
        let requeued = sqlx::query(AssertSqlSafe(format!(
            "UPDATE judge0_submissions \
             SET status_id = $5, instance = NULL, boot = NULL, lease_until = NULL \
             WHERE {orphaned} AND attempts < $6"
        )))
        .bind(Judge0Status::Processing.id())
        .bind(now)
        .bind(&worker.instance)
        .bind(&worker.boot)
        .bind(Judge0Status::InQueue.id())
        .bind(max_attempts)
        .execute(&self.pool)
        .await?;
        let gave_up = sqlx::query(AssertSqlSafe(format!(
            "UPDATE judge0_submissions \
             SET status_id = $5, result = $6, finished_at = $2, lease_until = NULL, bytes = bytes + $8 \
             WHERE {orphaned} AND attempts >= $7"
        )))
        .bind(Judge0Status::Processing.id())
        .bind(now)
        .bind(&worker.instance)
        .bind(&worker.boot)
        .bind(Judge0Status::InternalError.id())
        .bind(failed)
        .bind(max_attempts)
        .bind(failed.len() as i64)
        .execute(&self.pool)
        .await?;
        Ok((requeued.rows_affected(), gave_up.rows_affected()))
    }

    /// Removes the submissions finished before `before` (ms since the
    /// epoch); returns how many.
    pub(crate) async fn purge(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM judge0_submissions WHERE finished_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The submission `token`, if `scope` reaches it.
    pub(crate) async fn get(
        &self,
        token: &str,
        scope: Scope<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        let sql = format!(
            "SELECT {STORED_COLUMNS} FROM judge0_submissions WHERE token = $1{}",
            scope.clause(2)
        );
        let query = sqlx::query(AssertSqlSafe(sql)).bind(token);
        let row = scope.bind(query).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(stored).transpose()?)
    }

    /// Deletes the submission `token` if it is finished and `scope`
    /// reaches it.
    pub(crate) async fn delete(
        &self,
        token: &str,
        scope: Scope<'_>,
    ) -> Result<Deleted, StoreError> {
        let sql = format!(
            "DELETE FROM judge0_submissions WHERE token = $1 AND status_id > $2{} RETURNING {STORED_COLUMNS}",
            scope.clause(3)
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(token)
            .bind(Judge0Status::Processing.id());
        let row = scope.bind(query).fetch_optional(&self.pool).await?;
        if let Some(row) = row {
            return Ok(Deleted::Gone(stored(&row)?));
        }
        Ok(match self.get(token, scope).await? {
            Some(found) => Deleted::Busy(found.status_id),
            None => Deleted::Missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
        (Store::open(&url).await.unwrap(), dir)
    }

    fn worker(instance: &str, boot: &str) -> Worker {
        Worker {
            instance: instance.into(),
            boot: boot.into(),
        }
    }

    const LEASE: Duration = Duration::from_secs(30);

    /// Bounds none of these tests reaches.
    const ROOMY: Bounds = Bounds {
        queue: 100,
        client_queue: 100,
        stored: 100,
        client_stored: 100,
        bytes: 1 << 20,
        client_bytes: 1 << 20,
    };

    /// A row to queue, of language 71.
    fn queued(token: &str, request: &str) -> Queued {
        Queued {
            token: token.into(),
            request: request.into(),
            language_id: 71,
        }
    }

    /// Queues `rows` (token, request) for the client `a`.
    async fn put(store: &Store, rows: &[(&str, &str)]) {
        let rows: Vec<Queued> = rows.iter().map(|(t, r)| queued(t, r)).collect();
        store.insert("a", &rows, &ROOMY).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_submission_is_claimed_once_and_finished_once_by_its_holder() {
        let (store, _dir) = sqlite().await;
        put(&store, &[("t1", "{}"), ("t2", "{\"x\":1}")]).await;
        let a = worker("a", "1");
        let first = store.claim(&a, LEASE).await.unwrap().unwrap();
        assert_eq!((first.token.as_str(), first.attempts), ("t1", 1));
        let second = store.claim(&a, LEASE).await.unwrap().unwrap();
        assert_eq!(second.token, "t2");
        assert_eq!(store.claim(&a, LEASE).await.unwrap(), None);
        // Only the holder finishes it, once.
        assert!(
            !store
                .finish(first.id, &worker("b", "1"), Judge0Status::Accepted, "{}")
                .await
                .unwrap()
        );
        assert!(
            store
                .finish(first.id, &a, Judge0Status::Accepted, "{\"r\":1}")
                .await
                .unwrap()
        );
        assert!(
            !store
                .finish(first.id, &a, Judge0Status::WrongAnswer, "{}")
                .await
                .unwrap()
        );
        let got = store.get("t1", Scope::Every).await.unwrap().unwrap();
        assert_eq!(
            (got.status_id, got.result.as_deref()),
            (3, Some("{\"r\":1}"))
        );
        assert!(got.finished_at.unwrap() >= got.created_at);
        assert_eq!(store.get("nope", Scope::Every).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_earlier_lifes_claims_are_run_again_then_given_up() {
        let (store, _dir) = sqlite().await;
        put(&store, &[("t", "{}")]).await;
        let before = worker("a", "old");
        store.claim(&before, LEASE).await.unwrap().unwrap();
        // Another instance's live claim is not touched.
        let other = worker("b", "now");
        assert_eq!(store.recover(&other, 2, "{}").await.unwrap(), (0, 0));
        // The same instance, born again, takes it back.
        let now = worker("a", "new");
        assert_eq!(store.recover(&now, 2, "{}").await.unwrap(), (1, 0));
        let again = store.claim(&now, LEASE).await.unwrap().unwrap();
        assert_eq!(again.attempts, 2);
        // It died again: claimed twice is enough.
        let third = worker("a", "third");
        assert_eq!(
            store.recover(&third, 2, "{\"gave\":1}").await.unwrap(),
            (0, 1)
        );
        let got = store.get("t", Scope::Every).await.unwrap().unwrap();
        assert_eq!(
            (got.status_id, got.result.as_deref()),
            (Judge0Status::InternalError.id(), Some("{\"gave\":1}"))
        );
        assert_eq!(store.claim(&third, LEASE).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_back_and_a_renewed_one_is_not() {
        let (store, _dir) = sqlite().await;
        put(&store, &[("t1", "{}"), ("t2", "{}")]).await;
        let a = worker("a", "1");
        let short = store.claim(&a, Duration::ZERO).await.unwrap().unwrap();
        let long = store.claim(&a, Duration::ZERO).await.unwrap().unwrap();
        assert!(store.renew(long.id, &a, LEASE).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = worker("b", "1");
        assert_eq!(store.recover(&b, 2, "{}").await.unwrap(), (1, 0));
        // a lost the first: it can neither renew nor finish it.
        assert!(!store.renew(short.id, &a, LEASE).await.unwrap());
        assert!(
            !store
                .finish(short.id, &a, Judge0Status::Accepted, "{}")
                .await
                .unwrap()
        );
        assert!(
            store
                .finish(long.id, &a, Judge0Status::Accepted, "{}")
                .await
                .unwrap()
        );
        assert_eq!(store.claim(&b, LEASE).await.unwrap().unwrap().token, "t1");
    }

    #[tokio::test]
    async fn only_a_finished_submission_is_deleted_and_old_results_are_purged() {
        let (store, _dir) = sqlite().await;
        put(&store, &[("t1", "{}"), ("t2", "{}")]).await;
        assert_eq!(
            store.delete("t1", Scope::Every).await.unwrap(),
            Deleted::Busy(Judge0Status::InQueue.id())
        );
        let a = worker("a", "1");
        let claimed = store.claim(&a, LEASE).await.unwrap().unwrap();
        store
            .finish(claimed.id, &a, Judge0Status::Accepted, "{}")
            .await
            .unwrap();
        assert!(
            matches!(store.delete("t1", Scope::Every).await.unwrap(), Deleted::Gone(s) if s.token == "t1")
        );
        assert_eq!(
            store.delete("t1", Scope::Every).await.unwrap(),
            Deleted::Missing
        );
        let claimed = store.claim(&a, LEASE).await.unwrap().unwrap();
        store.release(claimed.id, &a).await.unwrap();
        let claimed = store.claim(&a, LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.attempts, 1);
        store
            .finish(claimed.id, &a, Judge0Status::Accepted, "{}")
            .await
            .unwrap();
        assert_eq!(store.purge(now_ms() - 60_000).await.unwrap(), 0);
        assert_eq!(store.purge(now_ms() + 1).await.unwrap(), 1);
        assert_eq!(store.get("t2", Scope::Every).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_clients_scope_reaches_its_own_rows_only() {
        let (store, _dir) = sqlite().await;
        put(&store, &[("mine", "{}")]).await;
        let b = &[queued("theirs", "{}")];
        store.insert("b", b, &ROOMY).await.unwrap().unwrap();
        let a = Scope::Client("a");
        assert!(store.get("mine", a).await.unwrap().is_some());
        assert_eq!(store.get("theirs", a).await.unwrap(), None);
        assert!(store.get("theirs", Scope::Every).await.unwrap().is_some());
        // Another's queued row is missing to it, not busy; its own is busy.
        assert_eq!(store.delete("theirs", a).await.unwrap(), Deleted::Missing);
        assert_eq!(store.delete("mine", a).await.unwrap(), Deleted::Busy(1));
    }

    #[tokio::test]
    async fn an_insert_past_a_bound_is_refused_naming_it_and_stores_nothing() {
        let (store, _dir) = sqlite().await;
        let bounds = Bounds {
            queue: 3,
            client_queue: 2,
            stored: 4,
            client_stored: 3,
            bytes: 100,
            client_bytes: 60,
        };
        let rows = |n: usize, size: usize| -> Vec<Queued> {
            (0..n)
                .map(|_| queued(&uuid::Uuid::new_v4().to_string(), &"x".repeat(size)))
                .collect()
        };
        let insert = |client: &'static str, rows: Vec<Queued>| {
            let store = store.clone();
            async move { store.insert(client, &rows, &bounds).await.unwrap() }
        };
        assert_eq!(insert("a", rows(4, 1)).await, Err(Full::Queue));
        assert_eq!(insert("a", rows(2, 1)).await, Ok(()));
        assert_eq!(insert("a", rows(1, 1)).await, Err(Full::ClientQueue(2)));
        assert_eq!(insert("b", rows(1, 61)).await, Err(Full::ClientBytes(60)));
        assert_eq!(insert("b", rows(1, 40)).await, Ok(()));
        // Three queued: the queue is full; a run leaves room in it, and
        // its result's bytes are counted.
        let worker = worker("w", "1");
        let run_one = || async {
            let claimed = store.claim(&worker, LEASE).await.unwrap().unwrap();
            store
                .finish(claimed.id, &worker, Judge0Status::Accepted, "{}")
                .await
                .unwrap();
        };
        run_one().await;
        assert_eq!(insert("c", rows(1, 60)).await, Err(Full::Bytes(100)));
        assert_eq!(insert("c", rows(1, 1)).await, Ok(()));
        run_one().await;
        assert_eq!(insert("c", rows(1, 1)).await, Err(Full::Rows(4)));
        // Refused inserts stored nothing.
        let all = usage(&mut store.pool.acquire().await.unwrap(), None)
            .await
            .unwrap();
        assert_eq!((all.rows, all.bytes, all.queued), (4, 47, 2));
    }

    #[tokio::test]
    async fn claims_take_turns_across_clients_oldest_first_within_each() {
        let (store, _dir) = sqlite().await;
        let row = |token: &str| queued(token, "{}");
        store
            .insert("a", &[row("a1"), row("a2"), row("a3")], &ROOMY)
            .await
            .unwrap()
            .unwrap();
        store
            .insert("b", &[row("b1"), row("b2")], &ROOMY)
            .await
            .unwrap()
            .unwrap();
        let w = worker("w", "1");
        let mut order = Vec::new();
        while let Some(claimed) = store.claim(&w, LEASE).await.unwrap() {
            order.push(claimed.token.clone());
            // Finished at once: turns, not the count running, decide.
            store
                .finish(claimed.id, &w, Judge0Status::Accepted, "{}")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(order, ["a1", "b1", "a2", "b2", "a3"]);
        // With claims held, the client with fewer running goes first.
        store
            .insert("a", &[row("a4"), row("a5")], &ROOMY)
            .await
            .unwrap()
            .unwrap();
        store
            .insert("b", &[row("b3")], &ROOMY)
            .await
            .unwrap()
            .unwrap();
        let first = store.claim(&w, LEASE).await.unwrap().unwrap();
        let second = store.claim(&w, LEASE).await.unwrap().unwrap();
        let third = store.claim(&w, LEASE).await.unwrap().unwrap();
        assert_eq!([first.token, second.token, third.token], ["b3", "a4", "a5"]);
    }

    #[tokio::test]
    async fn a_url_of_another_database_is_refused() {
        let err = Store::open("mysql://x").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a sqlite:// nor a postgres://"),
            "{err}"
        );
    }
}
