//! Duplicate and gap detection per agent epoch: the contract's (site, agent, epoch, seq) key.
//!
//! A window remembers the last `size` seqs below the highest seen. A seq inside the window that
//! was not seen is taken (a late batch fills its gap); one already seen is a duplicate; one
//! below the window cannot be told apart from a duplicate and is dropped as `too_old`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// New; `gap` seqs were skipped between the previous highest and this one.
    New {
        gap: u64,
        filled_gap: bool,
    },
    Duplicate,
    TooOld,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqWindow {
    size: u64,
    /// The highest seq seen.
    max: u64,
    /// The lowest seq seen in this epoch (for completeness).
    first: u64,
    /// Seqs received.
    received: u64,
    /// Bit i set: seq `max - i` was seen (i < size).
    bits: Vec<u64>,
}

impl SeqWindow {
    pub fn new(size: u64) -> Self {
        let words = size.div_ceil(64) as usize;
        SeqWindow {
            size: words as u64 * 64,
            max: 0,
            first: 0,
            received: 0,
            bits: vec![0; words],
        }
    }

    fn get(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: u64) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Shift the window so that bit 0 stands for `new_max`.
    fn shift(&mut self, by: u64) {
        if by >= self.size {
            self.bits.iter_mut().for_each(|w| *w = 0);
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        let n = self.bits.len();
        for i in (0..n).rev() {
            let src = i as isize - words as isize;
            let mut v = if src >= 0 {
                self.bits[src as usize] << bits
            } else {
                0
            };
            if bits > 0 && src > 0 {
                v |= self.bits[(src - 1) as usize] >> (64 - bits);
            }
            self.bits[i] = v;
        }
    }

    pub fn observe(&mut self, seq: u64) -> SeqVerdict {
        if self.received == 0 {
            self.max = seq;
            self.first = seq;
            self.received = 1;
            self.set(0);
            return SeqVerdict::New {
                gap: 0,
                filled_gap: false,
            };
        }
        if seq > self.max {
            let by = seq - self.max;
            self.shift(by);
            self.max = seq;
            self.set(0);
            self.received += 1;
            return SeqVerdict::New {
                gap: by - 1,
                filled_gap: false,
            };
        }
        let back = self.max - seq;
        if back >= self.size {
            return SeqVerdict::TooOld;
        }
        if self.get(back) {
            return SeqVerdict::Duplicate;
        }
        self.set(back);
        self.received += 1;
        if seq < self.first {
            self.first = seq;
        }
        SeqVerdict::New {
            gap: 0,
            filled_gap: true,
        }
    }

    /// Seqs missing inside the window.
    pub fn missing_in_window(&self) -> u64 {
        let span = (self.max - self.first + 1).min(self.size);
        (0..span).filter(|&i| !self.get(i)).count() as u64
    }

    /// Received seqs over the seq span of the epoch (1.0 when nothing is missing).
    pub fn completeness(&self) -> f64 {
        if self.received == 0 {
            return 1.0;
        }
        self.received as f64 / (self.max - self.first + 1) as f64
    }

    pub fn max_seq(&self) -> u64 {
        self.max
    }
}

/// Batches received over the last hour, in per-minute buckets: the contract's `completeness`
/// (received seqs over the seq span) for that hour, in bounded memory (60 buckets per agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HourlyArrivals {
    /// (minute since the epoch, batches, lowest seq, highest seq), oldest first.
    buckets: std::collections::VecDeque<(i64, u64, u64, u64)>,
}

impl HourlyArrivals {
    fn prune(&mut self, minute: i64) {
        while self.buckets.front().is_some_and(|b| b.0 <= minute - 60) {
            self.buckets.pop_front();
        }
    }

    /// A new (not duplicate) batch arrived at `now`.
    pub fn record(&mut self, now: telemetry::Timestamp, seq: u64) {
        let minute = now.timestamp().div_euclid(60);
        self.prune(minute);
        match self.buckets.back_mut() {
            Some(b) if b.0 == minute => {
                b.1 += 1;
                b.2 = b.2.min(seq);
                b.3 = b.3.max(seq);
            }
            _ => self.buckets.push_back((minute, 1, seq, seq)),
        }
    }

    /// Received over expected within the last hour (1.0 with nothing received).
    pub fn completeness(&mut self, now: telemetry::Timestamp) -> f64 {
        self.prune(now.timestamp().div_euclid(60));
        let received: u64 = self.buckets.iter().map(|b| b.1).sum();
        let (Some(lo), Some(hi)) = (
            self.buckets.iter().map(|b| b.2).min(),
            self.buckets.iter().map(|b| b.3).max(),
        ) else {
            return 1.0;
        };
        (received as f64 / (hi - lo + 1) as f64).min(1.0)
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness_over_the_last_hour() {
        let t0 = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        let mut a = HourlyArrivals::default();
        assert_eq!(a.completeness(t0), 1.0);
        // Seqs 1..=10 with 4 and 5 missing, one a second.
        for s in [1u64, 2, 3, 6, 7, 8, 9, 10] {
            a.record(t0 + chrono::Duration::seconds(s as i64), s);
        }
        assert!((a.completeness(t0 + chrono::Duration::seconds(10)) - 0.8).abs() < 1e-9);
        // An hour on, the old minutes no longer count.
        let later = t0 + chrono::Duration::minutes(61);
        a.record(later, 11);
        a.record(later, 12);
        assert_eq!(a.completeness(later), 1.0);
        assert_eq!(a.completeness(later + chrono::Duration::minutes(61)), 1.0);
    }

    #[test]
    fn duplicates_gaps_and_late_fill() {
        let mut w = SeqWindow::new(1024);
        assert_eq!(
            w.observe(1),
            SeqVerdict::New {
                gap: 0,
                filled_gap: false
            }
        );
        assert_eq!(
            w.observe(2),
            SeqVerdict::New {
                gap: 0,
                filled_gap: false
            }
        );
        assert_eq!(w.observe(2), SeqVerdict::Duplicate);
        assert_eq!(
            w.observe(5),
            SeqVerdict::New {
                gap: 2,
                filled_gap: false
            }
        );
        assert_eq!(w.missing_in_window(), 2);
        assert_eq!(
            w.observe(3),
            SeqVerdict::New {
                gap: 0,
                filled_gap: true
            }
        );
        assert_eq!(w.observe(3), SeqVerdict::Duplicate);
        assert_eq!(w.missing_in_window(), 1);
        assert!((w.completeness() - 0.8).abs() < 1e-9);
        assert_eq!(
            w.observe(4),
            SeqVerdict::New {
                gap: 0,
                filled_gap: true
            }
        );
        assert_eq!(w.completeness(), 1.0);
    }

    #[test]
    fn window_remembers_at_least_1024() {
        let mut w = SeqWindow::new(1024);
        for s in 0..3000u64 {
            if s != 2000 {
                w.observe(s);
            }
        }
        // 2000 is 999 behind the max: still inside the window, taken once.
        assert!(matches!(
            w.observe(2000),
            SeqVerdict::New {
                filled_gap: true,
                ..
            }
        ));
        assert_eq!(w.observe(2000), SeqVerdict::Duplicate);
        for s in 1976..3000u64 {
            assert_eq!(w.observe(s), SeqVerdict::Duplicate, "seq {s}");
        }
        assert_eq!(w.observe(10), SeqVerdict::TooOld);
    }

    #[test]
    fn shifts_across_words() {
        let mut w = SeqWindow::new(256);
        for s in [0u64, 63, 64, 65, 130, 200] {
            w.observe(s);
        }
        for s in [0u64, 63, 64, 65, 130, 200] {
            assert_eq!(w.observe(s), SeqVerdict::Duplicate, "seq {s}");
        }
        assert!(matches!(w.observe(100), SeqVerdict::New { .. }));
        w.observe(1000);
        assert_eq!(w.observe(200), SeqVerdict::TooOld);
    }
}
