//! The forwarding tables (migration `0003_forwarding.sql`), the same SQL on SQLite and
//! PostgreSQL (sqlx `Any`, `$n` placeholders in order). Every query runs under a timeout.
//! The store knows rows, not the outbox's types: a subscriber is kept as its id and its
//! configuration in JSON, whatever type the outbox gives it.

use super::{run, timed, Result, Store};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AnyPool, Row};
use telemetry::{format_time, Timestamp};

fn ms_to_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| format_time(&t))
        .unwrap_or_default()
}

/// A delivery refused permanently, kept for an operator.
#[derive(Debug, Clone, Serialize)]
pub struct Parked {
    pub id: i64,
    /// `endpoint:{name}` or `subscriber:{id}`.
    pub target: String,
    /// The target's kind (`http`, `mqtt`, `webhook`, `dingtalk`, `wecom`).
    pub kind: String,
    pub site: String,
    /// Position of the event in the log (of the last held event, for a summary).
    pub pos: i64,
    /// The event id (or summary id): the idempotency key.
    pub message_id: String,
    /// The HTTP status of the refusal (0: not an HTTP refusal, e.g. a robot's error code).
    pub status: i64,
    pub error: String,
    pub attempts: i64,
    pub parked_at: String,
    /// `parked` or `resent`.
    pub state: String,
    pub resent_at: Option<String>,
    #[serde(skip)]
    pub body: String,
}

/// A subscriber as stored.
#[derive(Debug, Clone)]
pub struct StoredSubscriber<C> {
    pub config: C,
    /// `config` (from the file) or `api`.
    pub source: String,
    pub created_ms: i64,
}

impl<C: DeserializeOwned> StoredSubscriber<C> {
    /// A subscriber of its row `(source, created_ms, body)`.
    fn from_row((source, created_ms, body): (String, i64, String)) -> Result<Self> {
        Ok(StoredSubscriber {
            source,
            created_ms,
            config: serde_json::from_str(&body)?,
        })
    }
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
}

impl Db {
    pub fn new(store: &Store) -> Db {
        Db {
            pool: store.pool().clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn park(
        &self,
        target: &str,
        kind: &str,
        site: &str,
        pos: i64,
        message_id: &str,
        body: &str,
        status: u16,
        error: &str,
        attempts: u32,
        now: Timestamp,
    ) -> Result<i64> {
        run(sqlx::query_scalar(
            "INSERT INTO parked_deliveries (target, kind, site, pos, message_id, body, status, error, attempts, parked_ms, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'parked') RETURNING id",
        )
        .bind(target)
        .bind(kind)
        .bind(site)
        .bind(pos)
        .bind(message_id)
        .bind(body)
        .bind(i64::from(status))
        .bind(error)
        .bind(i64::from(attempts))
        .bind(now.timestamp_millis())
        .fetch_one(&self.pool))
        .await
    }

    fn parked_from_row(r: &sqlx::any::AnyRow) -> Result<Parked> {
        let resent: Option<i64> = r.try_get("resent_ms")?;
        Ok(Parked {
            id: r.try_get("id")?,
            target: r.try_get("target")?,
            kind: r.try_get("kind")?,
            site: r.try_get("site")?,
            pos: r.try_get("pos")?,
            message_id: r.try_get("message_id")?,
            body: r.try_get("body")?,
            status: r.try_get("status")?,
            error: r.try_get("error")?,
            attempts: r.try_get("attempts")?,
            parked_at: ms_to_time(r.try_get("parked_ms")?),
            state: r.try_get("state")?,
            resent_at: resent.map(ms_to_time),
        })
    }

    const PARKED_COLUMNS: &'static str = "id, target, kind, site, pos, message_id, body, status, error, attempts, parked_ms, state, resent_ms";

    /// Parked deliveries, newest first; `state` `parked`, `resent` or all (None).
    pub async fn parked(&self, state: Option<&str>, limit: i64) -> Result<Vec<Parked>> {
        let cols = Self::PARKED_COLUMNS;
        let rows = match state {
            Some(s) => {
                let sql = format!(
                    "SELECT {cols} FROM parked_deliveries WHERE state = $1 ORDER BY id DESC LIMIT $2"
                );
                run(sqlx::query(&sql).bind(s).bind(limit).fetch_all(&self.pool)).await?
            }
            None => {
                let sql = format!("SELECT {cols} FROM parked_deliveries ORDER BY id DESC LIMIT $1");
                run(sqlx::query(&sql).bind(limit).fetch_all(&self.pool)).await?
            }
        };
        rows.iter().map(Self::parked_from_row).collect()
    }

    pub async fn parked_one(&self, id: i64) -> Result<Option<Parked>> {
        let sql = format!(
            "SELECT {} FROM parked_deliveries WHERE id = $1",
            Self::PARKED_COLUMNS
        );
        let row = run(sqlx::query(&sql).bind(id).fetch_optional(&self.pool)).await?;
        row.as_ref().map(Self::parked_from_row).transpose()
    }

    pub async fn parked_count(&self) -> Result<i64> {
        run(
            sqlx::query_scalar("SELECT COUNT(*) FROM parked_deliveries WHERE state = 'parked'")
                .fetch_one(&self.pool),
        )
        .await
    }

    /// After a resend attempt: `resent` when delivered, else the new error.
    pub async fn resend_result(
        &self,
        id: i64,
        delivered: bool,
        status: u16,
        error: &str,
        now: Timestamp,
    ) -> Result<()> {
        let q = if delivered {
            sqlx::query("UPDATE parked_deliveries SET state = 'resent', resent_ms = $1, attempts = attempts + 1 WHERE id = $2")
                .bind(now.timestamp_millis())
                .bind(id)
        } else {
            sqlx::query("UPDATE parked_deliveries SET status = $1, error = $2, attempts = attempts + 1 WHERE id = $3")
                .bind(i64::from(status))
                .bind(error)
                .bind(id)
        };
        run(q.execute(&self.pool)).await?;
        Ok(())
    }

    /// Write the file's subscribers (source `config`); drop file subscribers no longer in it.
    pub async fn sync_config_subscribers<C: Serialize>(
        &self,
        subs: &[(&str, &C)],
        now: Timestamp,
    ) -> Result<()> {
        timed(async {
            for (id, s) in subs {
                let body = serde_json::to_string(s)?;
                sqlx::query(
                    "INSERT INTO subscribers (id, source, created_ms, body) VALUES ($1, 'config', $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET source = 'config', body = excluded.body",
                )
                .bind(*id)
                .bind(now.timestamp_millis())
                .bind(&body)
                .execute(&self.pool)
                .await?;
            }
            let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM subscribers WHERE source = 'config'").fetch_all(&self.pool).await?;
            for id in ids {
                if !subs.iter().any(|(s, _)| *s == id) {
                    sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(&id).execute(&self.pool).await?;
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn subscribers<C: DeserializeOwned>(&self) -> Result<Vec<StoredSubscriber<C>>> {
        let rows = run(sqlx::query_as(
            "SELECT source, created_ms, body FROM subscribers ORDER BY id",
        )
        .fetch_all(&self.pool))
        .await?;
        rows.into_iter().map(StoredSubscriber::from_row).collect()
    }

    pub async fn subscriber<C: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<StoredSubscriber<C>>> {
        let row = run(sqlx::query_as(
            "SELECT source, created_ms, body FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool))
        .await?;
        row.map(StoredSubscriber::from_row).transpose()
    }

    /// Add a subscriber over the API; `false` when its id is taken (nothing written).
    pub async fn add_subscriber<C: Serialize>(
        &self,
        id: &str,
        s: &C,
        now: Timestamp,
    ) -> Result<bool> {
        let body = serde_json::to_string(s)?;
        let done = run(sqlx::query("INSERT INTO subscribers (id, source, created_ms, body) VALUES ($1, 'api', $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(now.timestamp_millis())
            .bind(&body)
            .execute(&self.pool))
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_subscriber(&self, id: &str) -> Result<()> {
        run(sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(id)
            .execute(&self.pool))
        .await?;
        Ok(())
    }
}
