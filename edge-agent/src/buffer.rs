//! The durable store-and-forward buffer: an SQLite file (WAL, `synchronous = FULL`).
//!
//! Every batch is written here, with its seq, before it is published; it is removed only
//! when the broker acknowledges it (PUBACK). The epoch and the next seq live in the same
//! file, in the same transaction as the batch, so after a crash (even SIGKILL) the agent
//! resumes with the same epoch, re-sends whatever was not acknowledged with its original seq,
//! and never reuses a seq. A new file gets a new random epoch.
//!
//! The buffer is bounded by the payload bytes it holds (`max_bytes`): when a new batch
//! takes it over the bound, the oldest batches are dropped, counted and logged. The newest
//! batch is always kept.

use crate::sqlite_file::{self, FileError};
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use telemetry::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer {path}: cannot create its directory: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("buffer {path}: {source}")]
    Sqlite { path: PathBuf, source: sqlx::Error },
    #[error("buffer {path}: stored state is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub seq: u64,
    pub payload: Vec<u8>,
    pub stored_at_ms: i64,
}

/// What storing one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    pub seq: u64,
    /// Seqs of the oldest batches dropped to stay within `max_bytes`.
    pub dropped: Vec<u64>,
}

/// The buffer. Not shared by itself: wrap it in a mutex to share (the agent does).
pub struct Buffer {
    pool: SqlitePool,
    path: PathBuf,
    epoch: String,
    next_seq: u64,
    count: u64,
    bytes: u64,
    max_bytes: u64,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .field("next_seq", &self.next_seq)
            .field("count", &self.count)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// A fresh random epoch: 16 hex digits.
pub fn random_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

sqlite_file::file_error!(BufferError);

impl Buffer {
    /// Open (or create) the buffer at `path`. `new_epoch` is called only when the file holds
    /// no state yet.
    pub async fn open(
        path: &Path,
        max_bytes: u64,
        new_epoch: impl FnOnce() -> String,
    ) -> Result<Buffer, BufferError> {
        let p = path.to_path_buf();
        let pool = sqlite_file::open::<BufferError>(path).await?;
        let sql = |source| BufferError::sqlite(p.clone(), source);
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS batches (
                 seq INTEGER PRIMARY KEY,
                 payload BLOB NOT NULL,
                 bytes INTEGER NOT NULL,
                 stored_at_ms INTEGER NOT NULL
             );",
        )
        .execute(&pool)
        .await
        .map_err(sql)?;
        let mut tx = pool.begin().await.map_err(sql)?;
        let epoch: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'epoch'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql)?;
        let next_seq: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'next_seq'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql)?;
        let (epoch, next_seq) = match (epoch, next_seq) {
            (Some(e), Some(n)) => {
                let n: u64 = n.parse().map_err(|_| BufferError::Damaged {
                    path: p.clone(),
                    reason: format!("next_seq {n:?}"),
                })?;
                (e, n)
            }
            (None, _) => {
                let e = new_epoch();
                sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?1), ('next_seq', '1')")
                    .bind(&e)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql)?;
                sqlx::query("DELETE FROM batches")
                    .execute(&mut *tx)
                    .await
                    .map_err(sql)?;
                (e, 1)
            }
            (Some(_), None) => {
                return Err(BufferError::Damaged {
                    path: p.clone(),
                    reason: "epoch without next_seq".into(),
                })
            }
        };
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0), COALESCE(MAX(seq), 0) FROM batches",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        let count: i64 = row.get(0);
        let bytes: i64 = row.get(1);
        let max_seq: i64 = row.get(2);
        if max_seq as u64 >= next_seq {
            return Err(BufferError::Damaged {
                path: p.clone(),
                reason: format!("stored seq {max_seq} is not below next_seq {next_seq}"),
            });
        }
        Ok(Buffer {
            pool,
            path: p,
            epoch,
            next_seq,
            count: count as u64,
            bytes: bytes as u64,
            max_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn epoch(&self) -> &str {
        &self.epoch
    }
    /// The seq the next batch will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    /// Batches held.
    pub fn len(&self) -> u64 {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Payload bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn err(&self, source: sqlx::Error) -> BufferError {
        BufferError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Store the batch `build(seq)` under the next seq, durably, dropping the oldest batches
    /// if the buffer grows beyond `max_bytes`.
    pub async fn push(
        &mut self,
        now: Timestamp,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<PushOutcome, BufferError> {
        let seq = self.next_seq;
        let payload = build(seq);
        let len = payload.len() as u64;
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO batches (seq, payload, bytes, stored_at_ms) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(seq as i64)
        .bind(&payload)
        .bind(len as i64)
        .bind(now.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'next_seq'")
            .bind((seq + 1).to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let mut bytes = self.bytes + len;
        let mut count = self.count + 1;
        let mut dropped = Vec::new();
        while bytes > self.max_bytes && count > 1 {
            let row = sqlx::query(
                "DELETE FROM batches WHERE seq = (SELECT MIN(seq) FROM batches) RETURNING seq, bytes",
            )
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let Some(row) = row else { break };
            let s: i64 = row.get(0);
            let b: i64 = row.get(1);
            dropped.push(s as u64);
            bytes -= b as u64;
            count -= 1;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.next_seq = seq + 1;
        self.bytes = bytes;
        self.count = count;
        Ok(PushOutcome { seq, dropped })
    }

    /// Up to `limit` stored batches with a seq above `after` (all when `None`), oldest first.
    pub async fn after(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredBatch>, BufferError> {
        let from = after.map_or(-1, |s| s as i64);
        let rows = sqlx::query(
            "SELECT seq, payload, stored_at_ms FROM batches WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(from)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredBatch {
                seq: r.get::<i64, _>(0) as u64,
                payload: r.get(1),
                stored_at_ms: r.get(2),
            })
            .collect())
    }

    /// Remove a batch the broker has acknowledged. Returns whether it was still held (a batch
    /// dropped for space meanwhile is not).
    pub async fn ack(&mut self, seq: u64) -> Result<bool, BufferError> {
        let row = sqlx::query("DELETE FROM batches WHERE seq = ?1 RETURNING bytes")
            .bind(seq as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(r) => {
                let b: i64 = r.get(0);
                self.bytes = self.bytes.saturating_sub(b as u64);
                self.count = self.count.saturating_sub(1);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Close the pool (flushes the WAL on a clean shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        telemetry::parse_time("2026-11-28T10:00:00Z").unwrap()
    }

    /// The seqs of the first ten stored batches.
    async fn stored_seqs(b: &Buffer) -> Vec<u64> {
        b.after(None, 10)
            .await
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect()
    }

    #[tokio::test]
    async fn seq_epoch_and_content_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let mut b = Buffer::open(&path, 1 << 20, || "e1".into()).await.unwrap();
        assert_eq!((b.epoch(), b.next_seq()), ("e1", 1));
        for _ in 0..3 {
            b.push(t0(), |seq| format!("batch {seq}").into_bytes())
                .await
                .unwrap();
        }
        assert!(b.ack(2).await.unwrap());
        assert!(!b.ack(2).await.unwrap());
        b.close().await;
        drop(b);
        let b = Buffer::open(&path, 1 << 20, || panic!("the epoch is persisted"))
            .await
            .unwrap();
        assert_eq!((b.epoch(), b.next_seq(), b.len()), ("e1", 4, 2));
        let got = stored_seqs(&b).await;
        assert_eq!(got, vec![1, 3]);
        assert_eq!(
            b.after(Some(1), 10).await.unwrap()[0].payload,
            b"batch 3".to_vec()
        );
    }

    #[tokio::test]
    async fn full_buffer_drops_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let mut b = Buffer::open(&path, 250, || "e".into()).await.unwrap();
        let mut dropped = Vec::new();
        for _ in 0..5 {
            dropped.extend(b.push(t0(), |_| vec![7u8; 100]).await.unwrap().dropped);
        }
        assert_eq!(dropped, vec![1, 2, 3]);
        assert_eq!((b.len(), b.bytes()), (2, 200));
        let got = stored_seqs(&b).await;
        assert_eq!(got, vec![4, 5]);
    }
}
