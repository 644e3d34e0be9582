//! Backup and restore of the store (`gateway backup --to FILE`, `gateway restore --from FILE`).
//! SQLite: an online, consistent copy with `VACUUM INTO` while the gateway runs; a restore
//! checks the copy, keeps the store it replaces beside it (`.before-restore`) and puts the
//! copy in place without the old write-ahead log. PostgreSQL: `pg_dump --format=custom` and
//! `pg_restore --clean --if-exists --single-transaction`, the password passed in `PGPASSWORD`
//! rather than on the command line. A restored store of an older schema is migrated when the
//! gateway opens it. Stop the gateway before a restore; a backup needs no stop.

use super::{Backend, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("backup: {0}")]
    Io(#[from] std::io::Error),
    #[error("backup: {0}")]
    Refused(String),
    #[error("backup: {tool} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        status: String,
        stderr: String,
    },
}

/// What a backup or restore holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub incidents: i64,
    pub events: i64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} incidents, {} events", self.incidents, self.events)
    }
}

/// The file of a `sqlite:` store URL (`None`: an in-memory store).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// A PostgreSQL URL without its password, and the password (for `PGPASSWORD`).
fn split_password(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut u =
        reqwest::Url::parse(url).map_err(|e| BackupError::Refused(format!("store URL: {e}")))?;
    let password = u.password().map(percent_decode);
    let _ = u.set_password(None);
    Ok((u.to_string(), password))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

async fn tool(
    name: &'static str,
    args: &[&str],
    password: Option<&str>,
    timeout: Duration,
) -> Result<(), BackupError> {
    let mut cmd = tokio::process::Command::new(name);
    cmd.args(args).kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| BackupError::Refused(format!("{name} did not finish within {timeout:?}")))?
        .map_err(|e| {
            BackupError::Refused(format!(
                "{name} could not be started ({e}): install postgresql-client"
            ))
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BackupError::Tool {
            tool: name,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Store {
    /// How many incidents and events the store holds.
    pub async fn summary(&self) -> Result<Summary, StoreError> {
        let incidents: i64 =
            super::run(sqlx::query_scalar("SELECT COUNT(*) FROM incidents").fetch_one(&self.pool))
                .await?;
        let events: i64 = super::run(
            sqlx::query_scalar("SELECT COUNT(*) FROM incident_events").fetch_one(&self.pool),
        )
        .await?;
        Ok(Summary { incidents, events })
    }
}

/// Back the store at `url` up into `to` (which must not exist yet), while a gateway runs on it
/// or not. Returns what the backup holds.
pub async fn backup(url: &str, to: &Path, timeout: Duration) -> Result<Summary, BackupError> {
    if to.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists already: back up into a new file",
            to.display()
        )));
    }
    let store = Store::open(url).await?;
    match store.backend() {
        Backend::Sqlite => {
            if sqlite_path(url).is_none() {
                return Err(BackupError::Refused(
                    "an in-memory store has nothing to back up".into(),
                ));
            }
            let target = to.to_str().ok_or_else(|| {
                BackupError::Refused(format!("{} is not a UTF-8 path", to.display()))
            })?;
            // One consistent snapshot, taken while writers go on (SQLite 3.27+).
            tokio::time::timeout(
                timeout,
                sqlx::query("VACUUM INTO $1")
                    .bind(target)
                    .execute(store.pool()),
            )
            .await
            .map_err(|_| StoreError::Timeout(timeout))?
            .map_err(StoreError::from)?;
            let copy = Store::open(&format!("sqlite://{target}")).await?;
            let s = copy.summary().await?;
            copy.pool().close().await;
            Ok(s)
        }
        Backend::Postgres => {
            let s = store.summary().await?;
            let (url, password) = split_password(url)?;
            let file = to.to_string_lossy();
            tool(
                "pg_dump",
                &["--format=custom", "--no-owner", "--file", &file, &url],
                password.as_deref(),
                timeout,
            )
            .await?;
            Ok(s)
        }
    }
}

/// Put the backup `from` in place of the store at `url` (stop the gateway first). SQLite: the
/// replaced file is kept as `FILE.before-restore`. Returns what the restored store holds.
pub async fn restore(url: &str, from: &Path, timeout: Duration) -> Result<Summary, BackupError> {
    if !from.is_file() {
        return Err(BackupError::Refused(format!(
            "no backup at {}",
            from.display()
        )));
    }
    if let Some(db) = sqlite_path(url) {
        // The backup must be a gateway store, whole.
        sqlx::any::install_default_drivers();
        let check = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&format!("sqlite://{}?mode=ro", from.display()))
            .await
            .map_err(StoreError::from)?;
        let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&check)
            .await
            .map_err(StoreError::from)?;
        let migrated: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&check)
        .await
        .map_err(StoreError::from)?;
        check.close().await;
        if ok != "ok" || migrated == 0 {
            return Err(BackupError::Refused(format!(
                "{} is not a whole gateway store (integrity: {ok})",
                from.display()
            )));
        }
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = with_suffix(&db, ".restoring");
        std::fs::copy(from, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        if db.exists() {
            std::fs::rename(&db, with_suffix(&db, ".before-restore"))?;
        }
        // The old store's write-ahead log and shared memory belong to the old file.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&db, suffix));
        }
        std::fs::rename(&tmp, &db)?;
    } else {
        let (plain, password) = split_password(url)?;
        let file = from.to_string_lossy();
        tool(
            "pg_restore",
            &[
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                &plain,
                &file,
            ],
            password.as_deref(),
            timeout,
        )
        .await?;
    }
    // Opening migrates a backup of an older schema.
    let store = Store::open(url).await?;
    let s = store.summary().await?;
    store.pool().close().await;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_and_passwords_leave_postgres_urls() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/hrs/gateway.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/hrs/gateway.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data/gateway.db"),
            Some(PathBuf::from("data/gateway.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
        let (url, pw) = split_password("postgres://hrs:s%40cret@db.example:5432/hrs").unwrap();
        assert_eq!(url, "postgres://hrs@db.example:5432/hrs");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let (_, pw) = split_password("postgres://hrs@db/hrs").unwrap();
        assert_eq!(pw, None);
    }
}
