//! The agent's own SQLite files (the buffer, the JT/T 808 auth codes): WAL,
//! `synchronous = FULL`, one connection, opened the same way.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The errors of a store kept in such a file, for [`open`].
pub(crate) trait FileError {
    fn create_dir(path: PathBuf, source: std::io::Error) -> Self;
    fn sqlite(path: PathBuf, source: sqlx::Error) -> Self;
}

/// [`FileError`] for an error enum with the variants `CreateDir { path, source }` and
/// `Sqlite { path, source }`.
macro_rules! file_error {
    ($error:ident) => {
        impl $crate::sqlite_file::FileError for $error {
            fn create_dir(path: std::path::PathBuf, source: std::io::Error) -> Self {
                $error::CreateDir { path, source }
            }
            fn sqlite(path: std::path::PathBuf, source: sqlx::Error) -> Self {
                $error::Sqlite { path, source }
            }
        }
    };
}
pub(crate) use file_error;

/// Open (or create) the SQLite file at `path`, creating its directory if missing.
pub(crate) async fn open<E: FileError>(path: &Path) -> Result<SqlitePool, E> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| E::create_dir(path.to_path_buf(), e))?;
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    // One connection: the agent's writes are few and small, and one writer keeps SQLite
    // free of lock contention.
    SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(|e| E::sqlite(path.to_path_buf(), e))
}
