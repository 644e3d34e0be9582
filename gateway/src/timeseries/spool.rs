//! The disk spool: batches of line protocol the database could not take (or that did not fit in
//! memory), one file per batch under `<data_dir>/spool/timeseries/`, named by the batch number
//! so that they drain in the order they were made. Bounded by bytes.
//!
//! A file is written as `*.tmp` and renamed, so a crash leaves either a whole batch or a
//! `*.tmp` that the next start removes. File name: `{batch number:020}-{points}.lp`.

use super::TimeSeriesError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolEntry {
    pub bytes: u64,
    pub points: usize,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    fsync: bool,
    files: BTreeMap<u64, SpoolEntry>,
    bytes: u64,
}

/// Why a batch did not go into the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full: {used} of {max} bytes used, a batch of {needed} bytes does not fit")]
    Full { used: u64, max: u64, needed: u64 },
    #[error("spool I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Spool {
    /// Open (creating) the spool directory; what an earlier run left is kept, to be drained.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, TimeSeriesError> {
        std::fs::create_dir_all(dir).map_err(|e| TimeSeriesError::Spool(io(dir)(e)))?;
        let mut files = BTreeMap::new();
        let mut bytes = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| TimeSeriesError::Spool(io(dir)(e)))? {
            let entry = entry.map_err(|e| TimeSeriesError::Spool(io(dir)(e)))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // Half-written by a run that died: its batch was not taken from memory as spooled.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((no, points)) = parse_name(&name) else {
                tracing::warn!(file = %path.display(), "not a spool file; left alone");
                continue;
            };
            let len = entry
                .metadata()
                .map_err(|e| TimeSeriesError::Spool(io(&path)(e)))?
                .len();
            bytes += len;
            files.insert(no, SpoolEntry { bytes: len, points });
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            fsync: false,
            files,
            bytes,
        })
    }

    /// Sync each batch file and the directory to the disk before `push` returns.
    pub fn with_fsync(mut self, fsync: bool) -> Spool {
        self.fsync = fsync;
        self
    }

    fn path(&self, no: u64, points: usize) -> PathBuf {
        self.dir.join(format!("{no:020}-{points}.lp"))
    }

    /// Keep batch `no` (`points` lines of line protocol).
    pub fn push(&mut self, no: u64, body: &[u8], points: usize) -> Result<(), SpoolError> {
        let needed = body.len() as u64;
        if self.bytes + needed > self.max_bytes {
            return Err(SpoolError::Full {
                used: self.bytes,
                max: self.max_bytes,
                needed,
            });
        }
        let path = self.path(no, points);
        let tmp = path.with_extension("tmp");
        if self.fsync {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(body).map_err(io(&tmp))?;
            f.sync_data().map_err(io(&tmp))?;
        } else {
            std::fs::write(&tmp, body).map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if self.fsync {
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))?;
        }
        if let Some(old) = self.files.insert(
            no,
            SpoolEntry {
                bytes: needed,
                points,
            },
        ) {
            self.bytes -= old.bytes;
        }
        self.bytes += needed;
        Ok(())
    }

    /// The oldest batch: its number and size.
    pub fn first(&self) -> Option<(u64, SpoolEntry)> {
        self.files.first_key_value().map(|(k, v)| (*k, *v))
    }

    /// The newest batch number (batches made after a restart must come after it).
    pub fn last_no(&self) -> Option<u64> {
        self.files.last_key_value().map(|(k, _)| *k)
    }

    /// The path of batch `no`, to be read without holding the spool.
    pub fn file(&self, no: u64) -> Option<PathBuf> {
        self.files.get(&no).map(|e| self.path(no, e.points))
    }

    /// Forget batch `no` (it was written, or refused for good).
    pub fn remove(&mut self, no: u64) -> Result<(), SpoolError> {
        if let Some(e) = self.files.remove(&no) {
            self.bytes -= e.bytes;
            let path = self.path(no, e.points);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io(&path)(err)),
            }
        }
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn batches(&self) -> usize {
        self.files.len()
    }
    pub fn points(&self) -> usize {
        self.files.values().map(|e| e.points).sum()
    }
}

fn parse_name(name: &str) -> Option<(u64, usize)> {
    let stem = name.strip_suffix(".lp")?;
    let (no, points) = stem.split_once('-')?;
    Some((no.parse().ok()?, points.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_batch_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.push(7, b"b7\n", 1).unwrap();
        s.push(3, b"b3\nb3\n", 2).unwrap();
        s.push(12, b"b12\n", 1).unwrap();
        assert_eq!(s.bytes(), 3 + 6 + 4);
        assert_eq!(s.first().unwrap().0, 3);
        std::fs::write(dir.path().join("00000000000000000013-1.tmp"), b"half").unwrap();
        drop(s);

        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            (s.batches(), s.points(), s.bytes(), s.last_no()),
            (3, 4, 13, Some(12))
        );
        assert!(
            !dir.path().join("00000000000000000013-1.tmp").exists(),
            "a half-written batch is removed"
        );
        let mut order = Vec::new();
        while let Some((no, _)) = s.first() {
            order.push(std::fs::read_to_string(s.file(no).unwrap()).unwrap());
            s.remove(no).unwrap();
        }
        assert_eq!(order, vec!["b3\nb3\n", "b7\n", "b12\n"]);
        assert_eq!(s.bytes(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_past_its_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 10).unwrap();
        s.push(1, b"123456", 1).unwrap();
        let e = s.push(2, b"12345", 1).unwrap_err();
        assert!(
            matches!(
                e,
                SpoolError::Full {
                    used: 6,
                    max: 10,
                    needed: 5
                }
            ),
            "{e}"
        );
        s.push(3, b"1234", 1).unwrap();
        assert_eq!(s.bytes(), 10);
        assert_eq!(s.batches(), 2);
    }
}
