//! The incident store: SQLite in the data directory by default, PostgreSQL when the store URL
//! says so. One schema, migrated on start; the same queries run on both (through sqlx's `Any`
//! driver, `$n` placeholders in order).

pub mod access;
pub mod accumulated;
pub mod backup;
pub mod event_log;
pub mod figures;
pub mod history;
pub mod outbox;
pub mod retention;
#[cfg(test)]
mod upgrade_tests;

use crate::core::lifecycle::IncidentRecord;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::future::Future;
use std::time::Duration;
use telemetry::{Incident, IncidentEvent, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("store: no answer within {0:?}")]
    Timeout(Duration),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether the error may pass by itself (the store is away, busy or restarting: retry with
    /// backoff and acknowledge nothing meanwhile) rather than being the store's final word on
    /// this row (a permanent refusal: bad bytes, a duplicate key, a value out of range).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Corrupt(_) | StoreError::Migrate(_) => false,
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::BeginFailed => true,
                sqlx::Error::Database(d) => d.code().is_some_and(|c| transient_code(&c)),
                _ => false,
            },
        }
    }

    /// A unique key the row would take is taken already.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(d))
            if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
    }

    /// A short fixed label for metrics: `transient` or `permanent`.
    pub fn class(&self) -> &'static str {
        if self.is_transient() {
            "transient"
        } else {
            "permanent"
        }
    }
}

/// SQLSTATE (PostgreSQL) or result code (SQLite) of a database error that passes by itself.
fn transient_code(code: &str) -> bool {
    if let Ok(n) = code.parse::<u32>() {
        // SQLite (primary code in the low byte): BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
        return matches!(n & 0xff, 5 | 6 | 10 | 13 | 14 | 15);
    }
    // PostgreSQL: connection exceptions, transaction rollbacks (serialization failure,
    // deadlock), insufficient resources, operator intervention (shutdown, cancel), system
    // errors, lock not available.
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58")) || code == "55P03"
}

/// Text the store can keep whatever it came from: PostgreSQL refuses NUL in TEXT, so a NUL
/// becomes U+FFFD. Everything else is kept as it is.
pub fn storable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// `open` (not closed), or a state.
    pub state: Option<String>,
    pub site: Option<String>,
    /// Only these sites (the caller's scope); `None`: every site.
    pub sites: Option<Vec<String>>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Paging: incidents older than this one.
    pub before: Option<(i64, String)>,
    /// Paging, oldest first: incidents newer than this one.
    pub after: Option<(i64, String)>,
    /// Oldest first (else newest first).
    pub ascending: bool,
    pub limit: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub pos: i64,
    pub at: String,
    pub topic: String,
    pub code: String,
    pub reason: String,
    /// The refused bytes as text (invalid UTF-8 replaced).
    pub raw: String,
    /// The refused bytes exactly, base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

impl DeadLetter {
    /// A dead letter of its row `(pos, at_ms, topic, code, reason, raw)`.
    fn from_row(
        (pos, ms, topic, code, reason, raw): (i64, i64, String, String, String, Vec<u8>),
    ) -> DeadLetter {
        let (raw, raw_base64) = match String::from_utf8(raw) {
            Ok(text) => (text, None),
            Err(e) => {
                use base64::Engine as _;
                let bytes = e.into_bytes();
                (
                    String::from_utf8_lossy(&bytes).into_owned(),
                    Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                )
            }
        };
        DeadLetter {
            pos,
            at: chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| telemetry::format_time(&t))
                .unwrap_or_default(),
            topic,
            code,
            reason,
            raw,
            raw_base64,
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

const UPSERT_SEQ_WINDOW: &str = "INSERT INTO seq_windows (site, agent, epoch, body, seen_ms) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site, agent, epoch) \
     DO UPDATE SET body = excluded.body, seen_ms = excluded.seen_ms";

/// Work on the store (one query, or several that belong together) under the store's timeout.
async fn timed<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .map_err(|_| StoreError::Timeout(TIMEOUT))?
}

/// One sqlx call (a query's fetch or execute) under the store's timeout: a method that runs a
/// single query states only its SQL, its binds and what it makes of the rows.
async fn run<T>(f: impl Future<Output = std::result::Result<T, sqlx::Error>>) -> Result<T> {
    timed(async { Ok(f.await?) }).await
}

impl Store {
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database lives in one connection.
            .max_connections(match backend {
                Backend::Sqlite if url.contains(":memory:") => 1,
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode=WAL")
                            .execute(&mut *conn)
                            .await?;
                        // FULL: a commit is on the disk before it returns. The gateway
                        // acknowledges the broker after its commits (seq windows, incidents),
                        // and the broker then forgets the message; under WAL with NORMAL a
                        // power cut could lose such a commit (BENCHMARKS.md has the cost).
                        sqlx::query("PRAGMA synchronous=FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout=5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the forwarding tables (issue 9: `forward::db`).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the store answers now.
    pub async fn ping(&self) -> Result<()> {
        tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&self.pool),
        )
        .await
        .map_err(|_| StoreError::Timeout(Duration::from_secs(2)))??;
        Ok(())
    }

    /// Write an incident as it is now and the event that made it so, in one transaction.
    /// Returns the event's position in the global event log.
    pub async fn write_change(
        &self,
        cause_key: &str,
        rec: &IncidentRecord,
        event: &IncidentEvent,
    ) -> Result<i64> {
        timed(async {
            let i = &rec.incident;
            let body = serde_json::to_string(&(i, rec.last_event_seq))?;
            let ev = serde_json::to_string(event)?;
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO incidents (id, cause, rule, site, state, severity, raised_ms, standing, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity, \
                 standing = excluded.standing, body = excluded.body",
            )
            .bind(&i.id)
            .bind(cause_key)
            .bind(&i.rule)
            .bind(i.site.as_str())
            .bind(i.state.as_str())
            .bind(i.severity.as_str())
            .bind(i.raised_at.timestamp_millis())
            .bind(i64::from(i.state.is_standing()))
            .bind(&body)
            .execute(&mut *tx)
            .await?;
            let pos = sqlx::query_scalar(
                "INSERT INTO incident_events (event_id, incident_id, site, event_seq, body) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING pos",
            )
            .bind(&event.event_id)
            .bind(&i.id)
            .bind(i.site.as_str())
            .bind(event.event_seq as i64)
            .bind(&ev)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(pos)
        })
        .await
    }

    /// The highest event seq taken by an incident's event ids (`{id}-{seq}`) in the log,
    /// whoever wrote them (0 when none).
    pub async fn max_event_seq(&self, incident_id: &str) -> Result<u64> {
        let prefix = format!("{incident_id}-");
        let ids: Vec<String> = run(sqlx::query_scalar(
            "SELECT event_id FROM incident_events WHERE incident_id = $1 \
             OR (event_id >= $2 AND event_id < $3)",
        )
        .bind(incident_id)
        .bind(&prefix)
        .bind(format!("{incident_id}."))
        .fetch_all(&self.pool))
        .await?;
        Ok(ids
            .iter()
            .filter_map(|id| id.strip_prefix(&prefix)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0))
    }

    /// The seq window of one agent epoch, if the store has it (an epoch that left memory
    /// after a long silence comes back from here).
    pub async fn seq_window(&self, site: &str, agent: &str, epoch: &str) -> Result<Option<String>> {
        run(sqlx::query_scalar(
            "SELECT body FROM seq_windows WHERE site = $1 AND agent = $2 AND epoch = $3",
        )
        .bind(site)
        .bind(agent)
        .bind(epoch)
        .fetch_optional(&self.pool))
        .await
    }

    /// An incident as it is kept in the `body` column: the incident and its last event seq.
    fn record_from_body(body: &str) -> Result<IncidentRecord> {
        let (incident, last_event_seq): (Incident, u64) = serde_json::from_str(body)?;
        Ok(IncidentRecord {
            incident,
            last_event_seq,
        })
    }

    /// The incidents of `body` columns, in order.
    fn incidents_from_bodies(bodies: &[String]) -> Result<Vec<Incident>> {
        bodies
            .iter()
            .map(|b| Ok(Self::record_from_body(b)?.incident))
            .collect()
    }

    /// Incidents whose condition still stands (to restore the engine and lifecycle on start).
    pub async fn standing(&self) -> Result<Vec<(String, IncidentRecord)>> {
        let rows: Vec<(String, String)> = run(sqlx::query_as(
            "SELECT cause, body FROM incidents WHERE standing = 1",
        )
        .fetch_all(&self.pool))
        .await?;
        rows.into_iter()
            .map(|(cause, body)| Ok((cause, Self::record_from_body(&body)?)))
            .collect()
    }

    /// The last incident of each cause (for `previous`).
    pub async fn last_per_cause(&self) -> Result<Vec<(String, String)>> {
        run(sqlx::query_as(
            "SELECT cause, id FROM incidents i WHERE raised_ms = (SELECT MAX(raised_ms) FROM incidents j WHERE j.cause = i.cause)",
        )
        .fetch_all(&self.pool))
        .await
    }

    pub async fn incident(&self, id: &str) -> Result<Option<IncidentRecord>> {
        let body: Option<String> = run(sqlx::query_scalar(
            "SELECT body FROM incidents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool))
        .await?;
        body.as_deref().map(Self::record_from_body).transpose()
    }

    pub async fn cause_of(&self, id: &str) -> Result<Option<String>> {
        run(
            sqlx::query_scalar("SELECT cause FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool),
        )
        .await
    }

    pub async fn history(&self, id: &str) -> Result<Vec<IncidentEvent>> {
        let bodies: Vec<String> = run(sqlx::query_scalar(
            "SELECT body FROM incident_events WHERE incident_id = $1 ORDER BY event_seq",
        )
        .bind(id)
        .fetch_all(&self.pool))
        .await?;
        bodies
            .iter()
            .map(|b| Ok(serde_json::from_str(b)?))
            .collect()
    }

    /// Incidents, newest first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>> {
        let mut sql = String::from("SELECT body FROM incidents WHERE 1 = 1");
        let mut args: Vec<ArgValue> = Vec::new();
        let mut push = |sql: &mut String, cond: &str, v: ArgValue| {
            args.push(v);
            sql.push_str(&cond.replace('?', &format!("${}", args.len())));
        };
        match f.state.as_deref() {
            Some("open") => sql.push_str(" AND state <> 'closed'"),
            Some(s) => push(&mut sql, " AND state = ?", ArgValue::Text(s.to_string())),
            None => {}
        }
        if let Some(s) = &f.site {
            push(&mut sql, " AND site = ?", ArgValue::Text(s.clone()));
        }
        if let Some(sites) = &f.sites {
            if sites.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                for (i, s) in sites.iter().enumerate() {
                    let cond = if i == 0 { " AND site IN (?" } else { ", ?" };
                    push(&mut sql, cond, ArgValue::Text(s.clone()));
                }
                sql.push(')');
            }
        }
        if let Some(s) = &f.severity {
            push(&mut sql, " AND severity = ?", ArgValue::Text(s.clone()));
        }
        if let Some(s) = &f.rule {
            push(&mut sql, " AND rule = ?", ArgValue::Text(s.clone()));
        }
        if let Some(t) = f.since {
            push(
                &mut sql,
                " AND raised_ms >= ?",
                ArgValue::Int(t.timestamp_millis()),
            );
        }
        if let Some(t) = f.until {
            push(
                &mut sql,
                " AND raised_ms < ?",
                ArgValue::Int(t.timestamp_millis()),
            );
        }
        if let Some((ms, id)) = &f.before {
            push(&mut sql, " AND (raised_ms < ?", ArgValue::Int(*ms));
            push(&mut sql, " OR (raised_ms = ?", ArgValue::Int(*ms));
            push(&mut sql, " AND id < ?))", ArgValue::Text(id.clone()));
        }
        if let Some((ms, id)) = &f.after {
            push(&mut sql, " AND (raised_ms > ?", ArgValue::Int(*ms));
            push(&mut sql, " OR (raised_ms = ?", ArgValue::Int(*ms));
            push(&mut sql, " AND id > ?))", ArgValue::Text(id.clone()));
        }
        if f.ascending {
            sql.push_str(" ORDER BY raised_ms, id");
        } else {
            sql.push_str(" ORDER BY raised_ms DESC, id DESC");
        }
        push(&mut sql, " LIMIT ?", ArgValue::Int(f.limit));
        let mut q = sqlx::query_scalar(&sql);
        for a in args {
            q = match a {
                ArgValue::Text(s) => q.bind(s),
                ArgValue::Int(i) => q.bind(i),
            };
        }
        let bodies = run(q.fetch_all(&self.pool)).await?;
        Self::incidents_from_bodies(&bodies)
    }

    /// Save several seq windows, `(site, agent, epoch, body)`, in one transaction: the group
    /// commit of a run of reading batches (one disk sync for all of them).
    pub async fn save_seq_windows(
        &self,
        windows: &[(String, String, String, String)],
        seen_ms: i64,
    ) -> Result<()> {
        timed(async {
            let mut tx = self.pool.begin().await?;
            for (site, agent, epoch, body) in windows {
                sqlx::query(UPSERT_SEQ_WINDOW)
                    .bind(site)
                    .bind(agent)
                    .bind(epoch)
                    .bind(body)
                    .bind(seen_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Seq windows of epochs seen since `since_ms`, newest first: `(site, agent, epoch, body,
    /// seen_ms)`.
    pub async fn recent_seq_windows(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, String, String, String, i64)>> {
        run(sqlx::query_as(
            "SELECT site, agent, epoch, body, seen_ms FROM seq_windows WHERE seen_ms >= $1 \
             ORDER BY seen_ms DESC, site, agent, epoch",
        )
        .bind(since_ms)
        .fetch_all(&self.pool))
        .await
    }

    pub async fn seq_windows(&self) -> Result<Vec<(String, String, String, String)>> {
        run(
            sqlx::query_as("SELECT site, agent, epoch, body FROM seq_windows")
                .fetch_all(&self.pool),
        )
        .await
    }

    pub async fn catalogues(&self) -> Result<Vec<(String, String, String)>> {
        run(sqlx::query_as("SELECT site, agent, body FROM catalogues").fetch_all(&self.pool)).await
    }

    /// Keep a refused message or reading; the oldest beyond `capacity` are dropped.
    pub async fn add_dead_letter(
        &self,
        at: Timestamp,
        topic: &str,
        code: &str,
        reason: &str,
        raw: &[u8],
        capacity: usize,
    ) -> Result<()> {
        timed(async {
            let pos: i64 = sqlx::query_scalar("INSERT INTO dead_letters (at_ms, topic, code, reason, raw) VALUES ($1, $2, $3, $4, $5) RETURNING pos")
                .bind(at.timestamp_millis())
                .bind(storable(topic).as_ref())
                .bind(storable(code).as_ref())
                .bind(storable(reason).as_ref())
                .bind(raw)
                .fetch_one(&self.pool)
                .await?;
            if pos % 100 == 0 {
                sqlx::query("DELETE FROM dead_letters WHERE pos <= $1").bind(pos - capacity as i64).execute(&self.pool).await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        let rows = run(sqlx::query_as(
            "SELECT pos, at_ms, topic, code, reason, raw FROM dead_letters ORDER BY pos DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool))
        .await?;
        Ok(rows.into_iter().map(DeadLetter::from_row).collect())
    }
}

impl Store {
    /// Keep a weather document (CAP or CENC) so the warning book can be rebuilt after a restart;
    /// documents older than `keep_ms` are dropped.
    pub async fn add_weather_doc(
        &self,
        kind: &str,
        received: Timestamp,
        body: &[u8],
        keep_ms: i64,
    ) -> Result<()> {
        timed(async {
            sqlx::query("INSERT INTO weather_docs (kind, received_ms, body) VALUES ($1, $2, $3)")
                .bind(kind)
                .bind(received.timestamp_millis())
                .bind(body)
                .execute(&self.pool)
                .await?;
            sqlx::query("DELETE FROM weather_docs WHERE received_ms < $1")
                .bind(received.timestamp_millis() - keep_ms)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Weather documents in the order they came, byte for byte.
    pub async fn weather_docs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        run(
            sqlx::query_as("SELECT kind, body FROM weather_docs ORDER BY pos")
                .fetch_all(&self.pool),
        )
        .await
    }
}

impl Store {
    pub async fn set_out_of_service(
        &self,
        site: &str,
        point: &str,
        body: Option<&str>,
    ) -> Result<()> {
        let q = match body {
            Some(body) => sqlx::query(
                "INSERT INTO out_of_service (site, point, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (site, point) DO UPDATE SET body = excluded.body",
            )
            .bind(site)
            .bind(point)
            .bind(body),
            None => sqlx::query("DELETE FROM out_of_service WHERE site = $1 AND point = $2")
                .bind(site)
                .bind(point),
        };
        run(q.execute(&self.pool)).await?;
        Ok(())
    }

    pub async fn out_of_service(&self) -> Result<Vec<(String, String, String)>> {
        run(sqlx::query_as("SELECT site, point, body FROM out_of_service").fetch_all(&self.pool))
            .await
    }
}

/// A value bound to a placeholder of the SQL that [`Store::incidents`] puts together.
enum ArgValue {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of a SQLite store syncs each commit to the disk (`synchronous =
    /// FULL`, 2) in WAL mode: the gateway acknowledges the broker after its commits.
    #[tokio::test]
    async fn sqlite_commits_are_synced_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display()))
            .await
            .unwrap();
        // Hold several connections at once, so more than the first is asked.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool().acquire().await.unwrap();
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(sync, 2, "synchronous = FULL");
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            held.push(conn);
        }
    }

    /// A store of the schema before raw payloads were bytes (migrations 0001-0004), with a
    /// dead letter and a weather document as TEXT: opening it migrates in place, and both
    /// come back byte for byte.
    async fn upgrade_keeps_rows(url: &str, admin: Option<&str>) {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let backend = if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        };
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        for f in [
            "0001_init.sql",
            "0002_weather.sql",
            "0003_forwarding.sql",
            "0004_out_of_service.sql",
        ] {
            std::fs::copy(src.join(f), old.join(f)).unwrap();
        }
        sqlx::any::install_default_drivers();
        if let Some(admin) = admin {
            let name = url.rsplit('/').next().unwrap();
            let pool = AnyPoolOptions::new().connect(admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO dead_letters (at_ms, topic, code, reason, raw) VALUES (1, 't', 'not_json', 'r', '[not json 瓦斯')")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO weather_docs (kind, received_ms, body) VALUES ('cap', 1, '<alert>暴雨</alert>')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO seq_windows (site, agent, epoch, body) VALUES ('s', 'a', 'e', '{}')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(url).await.unwrap();
        let dl = store.dead_letters(10).await.unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].raw, "[not json 瓦斯");
        assert_eq!(dl[0].raw_base64, None);
        let docs = store.weather_docs().await.unwrap();
        assert_eq!(
            docs,
            vec![("cap".to_string(), "<alert>暴雨</alert>".as_bytes().to_vec())]
        );
        // Windows written before `seen_ms` existed count as recent: they load at start.
        assert_eq!(store.recent_seq_windows(0).await.unwrap().len(), 1);
        // And new rows take any bytes.
        let raw = b"\xff\x00bytes";
        store
            .add_dead_letter(chrono::Utc::now(), "t\0", "x", "r\0", raw, 100)
            .await
            .unwrap();
        let dl = store.dead_letters(1).await.unwrap();
        assert_eq!(dl[0].topic, "t\u{FFFD}");
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(dl[0].raw_base64.as_deref().unwrap())
                .unwrap(),
            raw
        );
        if let Some(admin) = admin {
            store.pool().close().await;
            let name = url.rsplit('/').next().unwrap();
            let pool = AnyPoolOptions::new().connect(admin).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&pool)
                .await;
        }
    }

    #[tokio::test]
    async fn an_older_sqlite_store_upgrades_in_place_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        upgrade_keeps_rows(&url, None).await;
    }

    #[tokio::test]
    async fn an_older_postgres_store_upgrades_in_place_keeping_its_rows() {
        let name = format!("hrs_upgrade_{}", std::process::id());
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        upgrade_keeps_rows(&url, Some("postgres://postgres@127.0.0.1:5432/postgres")).await;
    }
}
