//! Auth codes of JT/T 808 terminals, with the plate a terminal registered and its last
//! driver, in an SQLite file of their own (WAL, `synchronous = FULL`): a code is on disk before
//! the registration is answered, so codes survive a restart and a SIGKILL.
//!
//! Registration is not authentication in JT/T 808 (anyone who knows a terminal number can
//! register it); what the code proves is that the terminal is the one that registered last.
//! A terminal that registers again gets its code again. Codes are 16 random characters
//! (`A-Za-z0-9`, about 95 bits) and are compared in constant time.

use crate::sqlite_file::{self, FileError};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::{Row, SqlitePool};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("jt808 auth store {path}: cannot create its directory: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("jt808 auth store {path}: {source}")]
    Sqlite { path: PathBuf, source: sqlx::Error },
}

/// What the agent knows of a terminal that registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub code: String,
    /// The plate of its registration.
    pub plate: Option<String>,
    pub driver: Option<String>,
    pub driver_license: Option<String>,
}

/// The store, shared by the listeners of an agent (keyed by site and terminal).
#[derive(Clone)]
pub struct AuthStore {
    pool: SqlitePool,
    path: PathBuf,
    cache: Arc<Mutex<HashMap<(String, String), Registered>>>,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Whether two codes are equal, in time that does not depend on where they differ.
pub fn codes_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

sqlite_file::file_error!(AuthError);

impl AuthStore {
    pub async fn open(path: &Path) -> Result<AuthStore, AuthError> {
        let pool = sqlite_file::open::<AuthError>(path).await?;
        let sql = |source| AuthError::sqlite(path.to_path_buf(), source);
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS terminals (site TEXT NOT NULL, terminal TEXT NOT NULL, \
             code TEXT NOT NULL, plate TEXT, driver TEXT, driver_license TEXT, \
             registered_at_ms INTEGER NOT NULL, PRIMARY KEY (site, terminal))",
        )
        .execute(&pool)
        .await
        .map_err(sql)?;
        let rows = sqlx::query(
            "SELECT site, terminal, code, plate, driver, driver_license FROM terminals",
        )
        .fetch_all(&pool)
        .await
        .map_err(sql)?;
        let cache = rows
            .into_iter()
            .map(|r| {
                (
                    (r.get::<String, _>(0), r.get::<String, _>(1)),
                    Registered {
                        code: r.get(2),
                        plate: r.get(3),
                        driver: r.get(4),
                        driver_license: r.get(5),
                    },
                )
            })
            .collect();
        Ok(AuthStore {
            pool,
            path: path.to_path_buf(),
            cache: Arc::new(Mutex::new(cache)),
        })
    }

    fn err(&self, source: sqlx::Error) -> AuthError {
        AuthError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// What is known of a terminal.
    pub fn get(&self, site: &str, terminal: &str) -> Option<Registered> {
        self.cache
            .lock()
            .expect("auth cache lock")
            .get(&(site.to_string(), terminal.to_string()))
            .cloned()
    }

    /// Every terminal of a site that registered.
    pub fn terminals(&self, site: &str) -> Vec<(String, Registered)> {
        self.cache
            .lock()
            .expect("auth cache lock")
            .iter()
            .filter(|((s, _), _)| s == site)
            .map(|((_, t), r)| (t.clone(), r.clone()))
            .collect()
    }

    /// Register a terminal: its code (the one it had, or a new one), on disk when this returns.
    pub async fn register(
        &self,
        site: &str,
        terminal: &str,
        plate: Option<&str>,
        now_ms: i64,
    ) -> Result<String, AuthError> {
        let old = self.get(site, terminal);
        let code = old
            .as_ref()
            .map(|r| r.code.clone())
            .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 16));
        let plate = plate.filter(|p| !p.is_empty()).map(str::to_string);
        if old.as_ref().is_some_and(|o| o.plate == plate) {
            return Ok(code);
        }
        sqlx::query(
            "INSERT INTO terminals (site, terminal, code, plate, registered_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (site, terminal) DO UPDATE SET plate = excluded.plate",
        )
        .bind(site)
        .bind(terminal)
        .bind(&code)
        .bind(&plate)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut c = self.cache.lock().expect("auth cache lock");
        let e = c
            .entry((site.to_string(), terminal.to_string()))
            .or_insert_with(|| Registered {
                code: code.clone(),
                plate: None,
                driver: None,
                driver_license: None,
            });
        e.plate = plate;
        Ok(code)
    }

    /// Record (or clear) a terminal's driver.
    pub async fn set_driver(
        &self,
        site: &str,
        terminal: &str,
        driver: Option<(&str, &str)>,
    ) -> Result<(), AuthError> {
        sqlx::query("UPDATE terminals SET driver = ?3, driver_license = ?4 WHERE site = ?1 AND terminal = ?2")
            .bind(site)
            .bind(terminal)
            .bind(driver.map(|d| d.0))
            .bind(driver.map(|d| d.1))
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        if let Some(e) = self
            .cache
            .lock()
            .expect("auth cache lock")
            .get_mut(&(site.to_string(), terminal.to_string()))
        {
            e.driver = driver.map(|d| d.0.to_string());
            e.driver_license = driver.map(|d| d.1.to_string());
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn codes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let s = AuthStore::open(&path).await.unwrap();
        let code = s
            .register("trans-01", "13800000001", Some("豫E12345"), 0)
            .await
            .unwrap();
        assert_eq!(code.len(), 16);
        assert_eq!(
            s.register("trans-01", "13800000001", Some("豫E12345"), 1)
                .await
                .unwrap(),
            code
        );
        let other = s
            .register("trans-02", "13800000001", None, 0)
            .await
            .unwrap();
        assert_ne!(other, code, "codes are per site and random");
        s.set_driver("trans-01", "13800000001", Some(("张三", "4105001")))
            .await
            .unwrap();
        s.close().await;
        drop(s);
        let s = AuthStore::open(&path).await.unwrap();
        let r = s.get("trans-01", "13800000001").unwrap();
        assert_eq!(r.code, code);
        assert_eq!(r.plate.as_deref(), Some("豫E12345"));
        assert_eq!(r.driver.as_deref(), Some("张三"));
        assert_eq!(s.terminals("trans-01").len(), 1);
        assert!(codes_match(&code, &r.code));
        assert!(!codes_match(&code, &other));
        assert!(!codes_match("abc", "abcd"));
    }
}
