//! The data directory's lock: a running gateway holds an exclusive advisory lock on
//! `<data_dir>/LOCK` (with its process id written in it), so a second gateway on the same
//! `data_dir` refuses to start instead of sharing the journal, the spool and the SQLite store
//! with it. The lock goes with the process (a killed gateway leaves no stale lock). The `user`
//! and `token` commands do not take it: they work beside a running gateway.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while the gateway runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "数据目录 {dir} 已被另一个网关进程占用（{holder}，锁文件 {lock}）：两个网关不能共用一个 data_dir，请停止另一个，或为本网关配置另一个 data_dir。\n\
         The data directory {dir} is in use by another gateway ({holder_en}, lock file {lock}): \
         two gateways cannot share one data_dir; stop the other one or give this one a data_dir of its own."
    )]
    Held {
        dir: String,
        lock: String,
        holder: String,
        holder_en: String,
    },
    #[error("无法锁定数据目录 / cannot lock the data directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Take the lock of `dir` (created if missing), or say who holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join("LOCK");
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let (holder, holder_en) = if pid.is_empty() {
                    ("进程号未知".to_string(), "process id unknown".to_string())
                } else {
                    (format!("进程号 {pid}"), format!("process id {pid}"))
                };
                return Err(LockError::Held {
                    dir: dir.display().to_string(),
                    lock: path.display().to_string(),
                    holder,
                    holder_en,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: say who holds it, for the message of the next one who tries.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_in_both_languages_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        let err = DataDirLock::acquire(&data).unwrap_err().to_string();
        assert!(
            err.contains("数据目录") && err.contains("data directory"),
            "{err}"
        );
        assert!(
            err.contains(&format!("process id {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = DataDirLock::acquire(&data).unwrap();
        assert!(again.path.ends_with("LOCK"));
    }
}
