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
//! writers itself. A row read back is decoded into a [`Found`]; one that
//! cannot be is [`Unreadable`], a data error rather than the database's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::request::Submission;
use super::status::Judge0Status;
use super::verdict::Judged;

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

    /// Queues submissions (token, request JSON), all or none.
    pub(crate) async fn insert(&self, rows: &[(String, String)]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for (token, request) in rows {
            sqlx::query(
                "INSERT INTO judge0_submissions (token, status_id, request, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token)
            .bind(Judge0Status::InQueue.id())
            .bind(request)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many submissions wait in the queue.
    pub(crate) async fn queued(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM judge0_submissions WHERE status_id = $1")
            .bind(Judge0Status::InQueue.id())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Claims the oldest queued submission for `worker`, until `lease`
    /// from now unless renewed.
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
             SET status_id = $1, instance = $2, boot = $3, lease_until = $4, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM judge0_submissions WHERE status_id = $5 ORDER BY id LIMIT 1{skip_locked}) \
               AND status_id = $5 \
             RETURNING id, token, request, attempts"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(Judge0Status::Processing.id())
            .bind(&worker.instance)
            .bind(&worker.boot)
            .bind(now_ms() + lease.as_millis() as i64)
            .bind(Judge0Status::InQueue.id())
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
            "UPDATE judge0_submissions SET status_id = $1, result = $2, finished_at = $3, lease_until = NULL \
             WHERE id = $4 AND status_id = $5 AND instance = $6 AND boot = $7",
        )
        .bind(status.id())
        .bind(result)
        .bind(now_ms())
        .bind(id)
        .bind(Judge0Status::Processing.id())
        .bind(&worker.instance)
        .bind(&worker.boot)
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
             SET status_id = $5, result = $6, finished_at = $2, lease_until = NULL \
             WHERE {orphaned} AND attempts >= $7"
        )))
        .bind(Judge0Status::Processing.id())
        .bind(now)
        .bind(&worker.instance)
        .bind(&worker.boot)
        .bind(Judge0Status::InternalError.id())
        .bind(failed)
        .bind(max_attempts)
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

    /// The submission `token`.
    pub(crate) async fn get(&self, token: &str) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {STORED_COLUMNS} FROM judge0_submissions WHERE token = $1"
        )))
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(stored).transpose()?)
    }

    /// Deletes the submission `token` if it is finished.
    pub(crate) async fn delete(&self, token: &str) -> Result<Deleted, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM judge0_submissions WHERE token = $1 AND status_id > $2 RETURNING {STORED_COLUMNS}"
        )))
        .bind(token)
        .bind(Judge0Status::Processing.id())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Deleted::Gone(stored(&row)?));
        }
        Ok(match self.get(token).await? {
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

    #[tokio::test]
    async fn a_submission_is_claimed_once_and_finished_once_by_its_holder() {
        let (store, _dir) = sqlite().await;
        store
            .insert(&[
                ("t1".into(), "{}".into()),
                ("t2".into(), "{\"x\":1}".into()),
            ])
            .await
            .unwrap();
        assert_eq!(store.queued().await.unwrap(), 2);
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
        let got = store.get("t1").await.unwrap().unwrap();
        assert_eq!(
            (got.status_id, got.result.as_deref()),
            (3, Some("{\"r\":1}"))
        );
        assert!(got.finished_at.unwrap() >= got.created_at);
        assert_eq!(store.get("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_earlier_lifes_claims_are_run_again_then_given_up() {
        let (store, _dir) = sqlite().await;
        store.insert(&[("t".into(), "{}".into())]).await.unwrap();
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
        let got = store.get("t").await.unwrap().unwrap();
        assert_eq!(
            (got.status_id, got.result.as_deref()),
            (Judge0Status::InternalError.id(), Some("{\"gave\":1}"))
        );
        assert_eq!(store.claim(&third, LEASE).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_back_and_a_renewed_one_is_not() {
        let (store, _dir) = sqlite().await;
        store
            .insert(&[("t1".into(), "{}".into()), ("t2".into(), "{}".into())])
            .await
            .unwrap();
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
        store
            .insert(&[("t1".into(), "{}".into()), ("t2".into(), "{}".into())])
            .await
            .unwrap();
        assert_eq!(
            store.delete("t1").await.unwrap(),
            Deleted::Busy(Judge0Status::InQueue.id())
        );
        let a = worker("a", "1");
        let claimed = store.claim(&a, LEASE).await.unwrap().unwrap();
        store
            .finish(claimed.id, &a, Judge0Status::Accepted, "{}")
            .await
            .unwrap();
        assert!(matches!(store.delete("t1").await.unwrap(), Deleted::Gone(s) if s.token == "t1"));
        assert_eq!(store.delete("t1").await.unwrap(), Deleted::Missing);
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
        assert_eq!(store.get("t2").await.unwrap(), None);
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
