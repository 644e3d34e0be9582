//! The recent trend of each point, kept in memory for the console: per point a ring of at most
//! [`SAMPLES`] samples, one per [`SLOT_SECS`] seconds (the last value of the slot), so one hour
//! at most. A sample is 8 bytes (seconds since 1970 as `u32`, the value as `f32`), and a ring is
//! allocated to its full size only once its point reports: 360 × 8 B = 2,880 B per point plus
//! about 80 B of map entry and header, so 100,000 points that all report hold about 300 MB, and
//! a gateway with 10,000 points about 30 MB. Written only by the core (with the live values);
//! read by `GET /api/v1/sites/{site}/points/{point}/trend`.

use std::collections::HashMap;
use telemetry::{PointId, Timestamp, Value};

/// Samples kept per point.
pub const SAMPLES: usize = 360;
/// One sample per slot of this many seconds: the newest reading of the slot.
pub const SLOT_SECS: u32 = 10;

/// One sample: when (seconds since 1970) and the value (booleans as 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_s: u32,
    pub value: f32,
}

/// The ring of one point: oldest first from `next` on once full.
#[derive(Debug, Default)]
pub struct Ring {
    samples: Vec<Sample>,
    /// Where the next sample goes once the ring is full.
    next: usize,
}

impl Ring {
    fn newest_mut(&mut self) -> Option<&mut Sample> {
        let i = if self.samples.len() < SAMPLES {
            self.samples.len().checked_sub(1)?
        } else {
            (self.next + SAMPLES - 1) % SAMPLES
        };
        self.samples.get_mut(i)
    }

    fn push(&mut self, s: Sample) {
        if let Some(last) = self.newest_mut() {
            if last.at_s > s.at_s {
                return; // older than what the ring holds: a trend only moves forward
            }
            if last.at_s / SLOT_SECS == s.at_s / SLOT_SECS {
                *last = s;
                return;
            }
        }
        if self.samples.len() < SAMPLES {
            if self.samples.capacity() == 0 {
                self.samples.reserve_exact(SAMPLES);
            }
            self.samples.push(s);
        } else {
            self.samples[self.next] = s;
            self.next = (self.next + 1) % SAMPLES;
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        let (newer, older) = self.samples.split_at(self.next.min(self.samples.len()));
        older.iter().chain(newer.iter())
    }
}

/// The trends of one site's points.
#[derive(Debug, Default)]
pub struct Trends {
    points: HashMap<PointId, Ring>,
}

impl Trends {
    /// A reading taken into the live values. Values that are not numbers or booleans (a
    /// position, a bad reading's null) and times outside `u32` seconds are left out.
    pub fn record(&mut self, point: &PointId, ts: Timestamp, value: &Value) {
        let value = match value {
            Value::Number(v) => *v as f32,
            Value::Bool(b) => f32::from(u8::from(*b)),
            Value::Position(_) | Value::Null => return,
        };
        let Ok(at_s) = u32::try_from(ts.timestamp()) else {
            return;
        };
        self.points
            .entry(point.clone())
            .or_default()
            .push(Sample { at_s, value });
    }

    /// The ring of one point, if it reported.
    pub fn of(&self, point: &str) -> Option<&Ring> {
        self.points.get(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn one_sample_per_slot_and_at_most_the_ring() {
        let mut t = Trends::default();
        let p = PointId::new("CH4-101").unwrap();
        for s in 0..(SAMPLES as i64 * 10 + 55) {
            t.record(&p, at(s), &Value::Number(s as f64));
        }
        let ring = t.of("CH4-101").unwrap();
        let got: Vec<_> = ring.samples().collect();
        assert_eq!(got.len(), SAMPLES);
        assert_eq!(ring.samples.capacity(), SAMPLES, "allocated once, exactly");
        // Newest last: the last value of the newest slot.
        assert_eq!(got.last().unwrap().value, (SAMPLES * 10 + 54) as f32);
        assert!(
            got.windows(2).all(|w| w[0].at_s < w[1].at_s),
            "oldest first"
        );
        // An older reading does not go back in time; a position is left out.
        t.record(&p, at(0), &Value::Number(-1.0));
        t.record(&p, at(100_000), &Value::Null);
        let ring = t.of("CH4-101").unwrap();
        assert!(ring.samples().all(|s| s.value >= 0.0));
        assert_eq!(ring.samples().count(), SAMPLES);
    }

    #[test]
    fn a_young_ring_holds_what_came() {
        let mut t = Trends::default();
        let p = PointId::new("BYPASS").unwrap();
        t.record(&p, at(0), &Value::Bool(true));
        t.record(&p, at(5), &Value::Bool(false));
        t.record(&p, at(12), &Value::Bool(true));
        let got: Vec<_> = t.of("BYPASS").unwrap().samples().copied().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].value, 0.0, "the last of the first slot");
        assert_eq!(got[1].value, 1.0);
        assert!(t.of("OTHER").is_none());
    }
}
