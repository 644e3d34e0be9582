//! Reassembly of sub-packaged messages (header bit 13): bounded in messages and bytes, with
//! a timeout on the caller's clock (the caller passes `now`; nothing here reads a clock).
//!
//! The packages of one message carry consecutive serials, so a message is keyed by its id,
//! its package total and the serial its first package has (or would have):
//! `serial - (index - 1)`.

use crate::error::ReassemblyError;
use crate::header::Header;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    msg_id: u16,
    total: u16,
    first_serial: u16,
}

#[derive(Debug)]
struct Partial {
    header: Header,
    parts: Vec<Option<Vec<u8>>>,
    received: u16,
    bytes: usize,
    started: Instant,
}

/// Reassembles the sub-packaged messages of one terminal (one connection).
#[derive(Debug)]
pub struct Reassembler {
    partials: HashMap<Key, Partial>,
    max_partials: usize,
    max_bytes: usize,
    timeout: Duration,
    bytes: usize,
    dropped: u64,
}

impl Reassembler {
    /// At most `max_partials` messages and `max_bytes` body bytes in reassembly; a message
    /// whose packages have not all arrived within `timeout` of its first is dropped.
    pub fn new(max_partials: usize, max_bytes: usize, timeout: Duration) -> Self {
        Reassembler {
            partials: HashMap::new(),
            max_partials: max_partials.max(1),
            max_bytes,
            timeout,
            bytes: 0,
            dropped: 0,
        }
    }

    /// Messages dropped unfinished so far (timed out, evicted or over the byte bound).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Messages in reassembly now.
    pub fn len(&self) -> usize {
        self.partials.len()
    }
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }

    /// Drop the messages that timed out; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.timeout;
        let before = self.partials.len();
        let mut freed = 0;
        self.partials.retain(|_, p| {
            let keep = now.saturating_duration_since(p.started) < timeout;
            if !keep {
                freed += p.bytes;
            }
            keep
        });
        self.bytes -= freed;
        let n = before - self.partials.len();
        self.dropped += n as u64;
        n
    }

    /// Take one package. A frame that is not sub-packaged is returned as it is. When the last
    /// missing package of a message arrives, the whole message is returned: the first
    /// package's header without the package fields, and the bodies in order.
    pub fn push(
        &mut self,
        header: &Header,
        body: Vec<u8>,
        now: Instant,
    ) -> Result<Option<(Header, Vec<u8>)>, ReassemblyError> {
        let Some(pkg) = header.package else {
            return Ok(Some((header.clone(), body)));
        };
        self.expire(now);
        let key = Key {
            msg_id: header.msg_id,
            total: pkg.total,
            first_serial: header.serial.wrapping_sub(pkg.index - 1),
        };
        if let Some(p) = self.partials.get(&key) {
            if p.parts[usize::from(pkg.index - 1)].is_some() {
                return Err(ReassemblyError::Duplicate {
                    index: pkg.index,
                    total: pkg.total,
                });
            }
        }
        if self.bytes + body.len() > self.max_bytes {
            // Drop this message's partial too: it can no longer complete.
            if let Some(p) = self.partials.remove(&key) {
                self.bytes -= p.bytes;
                self.dropped += 1;
            }
            return Err(ReassemblyError::TooManyBytes {
                bytes: self.bytes + body.len(),
                limit: self.max_bytes,
            });
        }
        let mut evicted = false;
        if !self.partials.contains_key(&key) && self.partials.len() >= self.max_partials {
            if let Some(oldest) = self
                .partials
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| *k)
            {
                let p = self.partials.remove(&oldest).expect("present");
                self.bytes -= p.bytes;
                self.dropped += 1;
                evicted = true;
            }
        }
        let p = self.partials.entry(key).or_insert_with(|| Partial {
            header: header.clone(),
            parts: vec![None; usize::from(pkg.total)],
            received: 0,
            bytes: 0,
            started: now,
        });
        let slot = &mut p.parts[usize::from(pkg.index - 1)];
        if pkg.index == 1 {
            p.header = header.clone();
        }
        p.bytes += body.len();
        self.bytes += body.len();
        *slot = Some(body);
        p.received += 1;
        if p.received == pkg.total {
            let p = self.partials.remove(&key).expect("present");
            self.bytes -= p.bytes;
            let mut h = p.header;
            h.serial = key.first_serial;
            h.package = None;
            let body = p.parts.into_iter().flatten().flatten().collect();
            return Ok(Some((h, body)));
        }
        if evicted {
            return Err(ReassemblyError::TooManyPartials {
                limit: self.max_partials,
            });
        }
        Ok(None)
    }
}
