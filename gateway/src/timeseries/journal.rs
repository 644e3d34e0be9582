//! The journal: every batch still held in memory has a file here, `{batch number:020}.lp`,
//! that the core appends the batch's lines to before it acknowledges the message they came in
//! (see [`super::TimeSeriesHandle::sync`]). A batch's file is removed once the batch is
//! written, refused for good, or moved to the spool. After a crash (SIGKILL), the next start
//! moves what the journal holds into the spool, so points the broker will not send again
//! are not lost.
//!
//! Appends are `write(2)` calls into the page cache: they survive the process being killed.
//! With `fsync = true` each append is also synced to the disk, so they survive a power cut.

use super::spool::SpoolError;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    fsync: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A batch found in the journal at start.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovered {
    pub no: u64,
    pub body: Vec<u8>,
    pub points: usize,
}

impl Journal {
    /// Open (creating) the journal directory and take out what a previous run left, oldest
    /// first. Their files stay until [`Journal::remove`] (the caller spools them first).
    pub fn open(dir: &Path, fsync: bool) -> Result<(Journal, Vec<Recovered>), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(no) = name.strip_suffix(".lp").and_then(|n| n.parse::<u64>().ok()) else {
                tracing::warn!(file = %path.display(), "not a journal file; left alone");
                continue;
            };
            let mut body = std::fs::read(&path).map_err(io(&path))?;
            // An append cut short by the crash: keep whole lines only.
            let whole = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            body.truncate(whole);
            let points = body.iter().filter(|b| **b == b'\n').count();
            found.push(Recovered { no, body, points });
        }
        found.sort_by_key(|r| r.no);
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                fsync,
            },
            found,
        ))
    }

    fn path(&self, no: u64) -> PathBuf {
        self.dir.join(format!("{no:020}.lp"))
    }

    /// Append `lines` to batch `no`'s file, whose first `held` bytes are known to be whole
    /// lines. Opening the file (on the first append, or again after a failed one) cuts it back
    /// to `held` bytes, so a write that failed half-way never leaves a broken line.
    pub fn append(
        &self,
        file: &mut Option<File>,
        no: u64,
        held: usize,
        lines: &[u8],
    ) -> Result<(), SpoolError> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = self.path(no);
        if file.is_none() {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(held as u64).map_err(io(&path))?;
            f.seek(SeekFrom::End(0)).map_err(io(&path))?;
            *file = Some(f);
        }
        let f = file.as_mut().expect("opened above");
        f.write_all(lines).map_err(io(&path))?;
        if self.fsync {
            f.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Batch `no` is done with (written, refused, or in the spool).
    pub fn remove(&self, no: u64) {
        let path = self.path(no);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "removing a journal file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_whole_lines_in_batch_order() {
        let dir = tempfile::tempdir().unwrap();
        let (j, found) = Journal::open(dir.path(), false).unwrap();
        assert!(found.is_empty());
        let mut f9 = None;
        j.append(&mut f9, 9, 0, b"a 1\nb 2\n").unwrap();
        j.append(&mut f9, 9, 8, b"c 3\nd 4").unwrap(); // cut short by a crash
        let mut f3 = None;
        j.append(&mut f3, 3, 0, b"x 1\n").unwrap();
        drop((f9, f3));
        let (j, found) = Journal::open(dir.path(), false).unwrap();
        assert_eq!(
            found,
            vec![
                Recovered {
                    no: 3,
                    body: b"x 1\n".to_vec(),
                    points: 1
                },
                Recovered {
                    no: 9,
                    body: b"a 1\nb 2\nc 3\n".to_vec(),
                    points: 3
                },
            ]
        );
        j.remove(3);
        j.remove(9);
        j.remove(9);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reopening_cuts_back_what_a_failed_append_left() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), false).unwrap();
        let mut f = None;
        j.append(&mut f, 1, 0, b"a 1\n").unwrap();
        // A failed append left half a line behind; the caller drops the handle.
        f.as_mut().unwrap().write_all(b"b ").unwrap();
        f = None;
        // The retry appends from the last whole line: no broken line in between.
        j.append(&mut f, 1, 4, b"b 2\nc 3\n").unwrap();
        drop(f);
        let (_, found) = Journal::open(dir.path(), false).unwrap();
        assert_eq!(found[0].body, b"a 1\nb 2\nc 3\n".to_vec());
        assert_eq!(found[0].points, 3);
    }
}
