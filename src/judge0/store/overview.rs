//! What the store says of itself: the counts of `GET /judge0/statistics`
//! (by language, by status, by day, and the database's size), the queue's
//! length for `GET /judge0/workers`, and a page of the submissions a
//! scope reaches, newest first, for `GET /judge0/submissions`. The same
//! SQL serves both backends but for the database's size.

use sqlx::{AssertSqlSafe, Row};

use super::{Backend, Scope, Store, StoreError};
use crate::judge0::status::Judge0Status;

/// A day's length in ms: `created_at / DAY_MS` is its day since the epoch
/// (UTC).
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The stored submissions a scope reaches, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counts {
    /// (Judge0 language id, submissions); `None` for a row that names
    /// none.
    pub(crate) languages: Vec<(Option<i64>, i64)>,
    /// (status id, submissions).
    pub(crate) statuses: Vec<(i64, i64)>,
    /// (day since the epoch, submissions created that day), for the days
    /// from `since_day` on that have any.
    pub(crate) days: Vec<(i64, i64)>,
    /// The database's size on disk, in bytes (all of it, whatever the
    /// scope).
    pub(crate) database_bytes: i64,
}

/// One page of the submissions a scope reaches.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Page {
    /// The tokens on the page, newest first.
    pub(crate) tokens: Vec<String>,
    /// Every submission the scope reaches.
    pub(crate) total: i64,
}

/// ` WHERE client = $n` for a client's scope, or nothing.
fn only(scope: Scope<'_>, n: usize) -> String {
    match scope {
        Scope::Every => String::new(),
        Scope::Client(_) => format!(" WHERE client = ${n}"),
    }
}

impl Store {
    /// The counts of the submissions `scope` reaches, by language, by
    /// status and by day from `since_day` (days since the epoch, UTC).
    pub(crate) async fn counts(
        &self,
        scope: Scope<'_>,
        since_day: i64,
    ) -> Result<Counts, StoreError> {
        let grouped = |column: &str| {
            format!(
                "SELECT {column} AS k, COUNT(*) AS n FROM judge0_submissions{} GROUP BY {column}",
                only(scope, 1)
            )
        };
        let query = grouped("language_id");
        let rows = scope
            .bind(sqlx::query(AssertSqlSafe(query)))
            .fetch_all(&self.pool)
            .await?;
        let languages = rows
            .iter()
            .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let query = grouped("status_id");
        let rows = scope
            .bind(sqlx::query(AssertSqlSafe(query)))
            .fetch_all(&self.pool)
            .await?;
        let statuses = rows
            .iter()
            .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Counts {
            languages,
            statuses,
            days: self.days(scope, since_day).await?,
            database_bytes: self.size().await?,
        })
    }

    /// Submissions created each day from `since_day` on, of `scope`.
    async fn days(&self, scope: Scope<'_>, since_day: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT created_at / {DAY_MS} AS d, COUNT(*) AS n FROM judge0_submissions \
             WHERE created_at >= $1{} GROUP BY created_at / {DAY_MS}",
            scope.clause(2)
        );
        let query = sqlx::query(AssertSqlSafe(sql)).bind(since_day.saturating_mul(DAY_MS));
        let rows = scope.bind(query).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("d")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The database's size on disk, in bytes: SQLite's pages, or
    /// PostgreSQL's `pg_database_size`.
    async fn size(&self) -> Result<i64, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT CAST(c.page_count * s.page_size AS BIGINT) AS b \
                 FROM pragma_page_count() AS c, pragma_page_size() AS s"
            }
            Backend::Postgres => "SELECT CAST(pg_database_size(current_database()) AS BIGINT) AS b",
        };
        let row = sqlx::query(sql).fetch_one(&self.pool).await?;
        Ok(row.try_get("b")?)
    }

    /// The submissions waiting in the queue, every client's.
    pub(crate) async fn queued(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM judge0_submissions WHERE status_id = $1")
            .bind(Judge0Status::InQueue.id())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The `limit` submissions `scope` reaches after the newest `offset`,
    /// newest first, and how many it reaches in all.
    pub(crate) async fn page(
        &self,
        scope: Scope<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Page, StoreError> {
        let count = format!(
            "SELECT COUNT(*) AS n FROM judge0_submissions{}",
            only(scope, 1)
        );
        let row = scope
            .bind(sqlx::query(AssertSqlSafe(count)))
            .fetch_one(&self.pool)
            .await?;
        let total: i64 = row.try_get("n")?;
        let sql = format!(
            "SELECT token FROM judge0_submissions{} ORDER BY created_at DESC, id DESC \
             LIMIT {limit} OFFSET {offset}",
            only(scope, 1),
            limit = limit.max(0),
            offset = offset.max(0),
        );
        let rows = scope
            .bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?;
        let tokens = rows
            .iter()
            .map(|r| r.try_get("token"))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Page { tokens, total })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Bounds, Queued, Worker, now_ms};
    use super::*;

    const ROOMY: Bounds = Bounds {
        queue: 100,
        client_queue: 100,
        stored: 100,
        client_stored: 100,
        bytes: 1 << 20,
        client_bytes: 1 << 20,
    };

    fn rows(tokens: &[&str], language_id: i64) -> Vec<Queued> {
        tokens
            .iter()
            .map(|t| Queued {
                token: t.to_string(),
                request: "{}".into(),
                language_id,
            })
            .collect()
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[tokio::test]
    async fn counts_and_pages_reach_what_the_scope_reaches() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        let put = |client: &'static str, tokens: &'static [&'static str], language| {
            let store = store.clone();
            async move {
                let rows = rows(tokens, language);
                store.insert(client, &rows, &ROOMY).await.unwrap().unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        };
        put("a", &["a1", "a2"], 71).await;
        put("a", &["a3"], 50).await;
        put("b", &["b1"], 71).await;
        let worker = Worker {
            instance: "w".into(),
            boot: "1".into(),
        };
        let claimed = store
            .claim(&worker, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        let done = Judge0Status::Accepted;
        assert!(store.finish(claimed.id, &worker, done, "{}").await.unwrap());
        assert_eq!(store.queued().await.unwrap(), 3);

        let today = now_ms() / DAY_MS;
        let mut all = store.counts(Scope::Every, today - 30).await.unwrap();
        all.languages.sort();
        all.statuses.sort();
        assert_eq!(all.languages, [(Some(50), 1), (Some(71), 3)]);
        assert_eq!(all.statuses, [(1, 3), (3, 1)]);
        assert_eq!(all.days, [(today, 4)]);
        assert!(all.database_bytes > 4096, "{}", all.database_bytes);
        let mut a = store.counts(Scope::Client("a"), today - 30).await.unwrap();
        a.languages.sort();
        assert_eq!(a.languages, [(Some(50), 1), (Some(71), 2)]);
        assert_eq!(a.days, [(today, 3)]);
        // Days before the first asked are not counted.
        let later = store.counts(Scope::Every, today + 1).await.unwrap();
        assert_eq!(later.days, []);

        // Newest first, a page at a time.
        let page = store.page(Scope::Every, 0, 3).await.unwrap();
        assert_eq!((page.tokens, page.total), (strings(&["b1", "a3", "a2"]), 4));
        let page = store.page(Scope::Client("a"), 2, 2).await.unwrap();
        assert_eq!((page.tokens, page.total), (strings(&["a1"]), 3));
        let page = store.page(Scope::Client("c"), 0, 20).await.unwrap();
        assert_eq!(page, Page::default());
    }

    #[tokio::test]
    async fn the_migration_gives_earlier_rows_the_language_their_request_names() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.sqlite", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let row = Queued {
            token: "old".into(),
            request: r#"{"language_id":92,"source_code":"eA=="}"#.into(),
            language_id: 0,
        };
        store.insert("a", &[row], &ROOMY).await.unwrap().unwrap();
        // As a row of an earlier release: no language of its own.
        sqlx::query("UPDATE judge0_submissions SET language_id = NULL")
            .execute(&store.pool)
            .await
            .unwrap();
        let migration = include_str!("../../../migrations/sqlite/0003_judge0_language.sql");
        let update = migration
            .split(';')
            .find(|s| s.trim_start().starts_with("UPDATE"))
            .unwrap();
        sqlx::query(AssertSqlSafe(update.to_string()))
            .execute(&store.pool)
            .await
            .unwrap();
        let counts = store.counts(Scope::Every, 0).await.unwrap();
        assert_eq!(counts.languages, [(Some(92), 1)]);
    }
}
