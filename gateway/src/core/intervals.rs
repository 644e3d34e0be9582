//! The history behind the regulator's online rate and data completeness: per site and
//! interval of the gateway clock (`ingest.figures_interval_ms`), how long the gateway watched
//! it, how long at least one of its agents was online, and the batches that came against those
//! expected. Kept in memory for the interval in progress (bounded by the sites and agents the
//! core keeps) and written to the store once per interval (`store::history`), at its end.

use super::Core;
use crate::store::history::SiteInterval;
use std::collections::BTreeMap;
use telemetry::Timestamp;

/// The seqs of one agent epoch seen in the interval in progress.
#[derive(Debug, Clone, Default)]
struct Span {
    epoch: String,
    /// Lowest and highest seq of this interval (None: none yet).
    range: Option<(u64, u64)>,
    /// The highest seq of the epoch in an earlier interval: a gap after it counts here.
    before: Option<u64>,
}

impl Span {
    /// The batches the interval expected of this epoch, and start the next interval.
    fn close(&mut self) -> i64 {
        let Some((lo, hi)) = self.range.take() else {
            return 0;
        };
        let lo = self.before.map_or(lo, |b| lo.min(b + 1));
        self.before = Some(self.before.map_or(hi, |b| b.max(hi)));
        (hi.saturating_sub(lo) + 1) as i64
    }
}

#[derive(Debug, Clone, Default)]
struct SiteTally {
    observed_ms: i64,
    online_ms: i64,
    batches: i64,
    expected: i64,
    agents: BTreeMap<String, Span>,
}

/// The interval in progress and what did not reach the store yet.
#[derive(Debug)]
pub struct IntervalRecorder {
    length_ms: i64,
    /// The start of the interval in progress and the time accounted up to.
    at: Option<(i64, i64)>,
    sites: BTreeMap<String, SiteTally>,
    /// Rows the store refused for now (retried at the next interval's end; bounded).
    pending: Vec<SiteInterval>,
}

const MAX_PENDING_ROWS: usize = 100_000;

impl IntervalRecorder {
    pub fn new(length_ms: u64) -> IntervalRecorder {
        IntervalRecorder {
            length_ms: length_ms.max(1) as i64,
            at: None,
            sites: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// A new (not duplicate) batch of an agent epoch.
    pub fn batch(&mut self, site: &str, agent: &str, epoch: &str, seq: u64) {
        let span = self
            .sites
            .entry(site.to_string())
            .or_default()
            .agents
            .entry(agent.to_string())
            .or_default();
        if span.epoch != epoch {
            let expected = span.close();
            *span = Span {
                epoch: epoch.to_string(),
                ..Span::default()
            };
            self.sites.get_mut(site).expect("entered above").expected += expected;
        }
        let span = self
            .sites
            .get_mut(site)
            .and_then(|s| s.agents.get_mut(agent))
            .expect("entered above");
        span.range = Some(
            span.range
                .map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))),
        );
        self.sites.get_mut(site).expect("entered above").batches += 1;
    }

    /// Account the time up to `now` to the sites (`online`: each site the core keeps and
    /// whether an agent of it is online); the rows of the intervals that ended, to be stored.
    pub fn advance<'a>(
        &mut self,
        now: Timestamp,
        online: impl Iterator<Item = (&'a str, bool)> + Clone,
    ) -> Vec<SiteInterval> {
        let now_ms = now.timestamp_millis();
        let start_of = |t: i64| t.div_euclid(self.length_ms) * self.length_ms;
        let (mut start, mut last) = self.at.unwrap_or((start_of(now_ms), now_ms));
        let mut rows = std::mem::take(&mut self.pending);
        while now_ms >= start + self.length_ms {
            let end = start + self.length_ms;
            self.account(last, end, online.clone());
            self.close_interval(start, &mut rows);
            start = end;
            last = end;
        }
        self.account(last, now_ms.max(last), online);
        self.at = Some((start, now_ms.max(last)));
        rows
    }

    /// Rows that could not be stored: kept for the next attempt (the oldest dropped past the
    /// bound).
    pub fn keep_for_later(&mut self, mut rows: Vec<SiteInterval>) {
        rows.append(&mut self.pending);
        let excess = rows.len().saturating_sub(MAX_PENDING_ROWS);
        rows.drain(..excess);
        self.pending = rows;
    }

    fn account<'a>(&mut self, from: i64, to: i64, online: impl Iterator<Item = (&'a str, bool)>) {
        let d = to - from;
        if d <= 0 {
            return;
        }
        for (site, up) in online {
            if !self.sites.contains_key(site) {
                self.sites.insert(site.to_string(), SiteTally::default());
            }
            let t = self.sites.get_mut(site).expect("inserted above");
            t.observed_ms += d;
            if up {
                t.online_ms += d;
            }
        }
    }

    fn close_interval(&mut self, start: i64, rows: &mut Vec<SiteInterval>) {
        for (site, t) in self.sites.iter_mut() {
            let expected: i64 = t.expected + t.agents.values_mut().map(Span::close).sum::<i64>();
            if t.observed_ms > 0 || t.batches > 0 || expected > 0 {
                rows.push(SiteInterval {
                    site: site.clone(),
                    start_ms: start,
                    length_ms: self.length_ms,
                    observed_ms: t.observed_ms,
                    online_ms: t.online_ms,
                    batches: t.batches,
                    expected,
                });
            }
            t.observed_ms = 0;
            t.online_ms = 0;
            t.batches = 0;
            t.expected = 0;
        }
    }
}

impl Core {
    /// At each tick: account the time since the last to the sites; at an interval's end,
    /// store its rows (kept for the next end while the store refuses them).
    pub(super) async fn record_intervals(&mut self, now: Timestamp) {
        let rows = {
            let live = self.live.read().expect("live lock");
            let online = live
                .sites
                .iter()
                .map(|(id, s)| (id.as_str(), s.agents.values().any(|a| a.online)));
            self.intervals.advance(now, online)
        };
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.store.add_site_intervals(&rows).await {
            tracing::warn!(error = %e, rows = rows.len(), "site intervals not stored yet; kept for the next interval");
            self.intervals.keep_for_later(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn intervals_split_time_and_count_gaps() {
        let mut r = IntervalRecorder::new(1000);
        let up = [("s", true)].into_iter();
        let down = [("s", false)].into_iter();
        assert!(r.advance(at(10_000), up.clone()).is_empty());
        r.batch("s", "a", "e1", 1);
        r.batch("s", "a", "e1", 2);
        r.batch("s", "a", "e1", 4);
        assert!(r.advance(at(10_500), up.clone()).is_empty());
        let rows = r.advance(at(11_250), down);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.start_ms, row.observed_ms), (10_000, 1000));
        // Online until 10 500, then offline to the end (10 500 - 11 000 counted offline).
        assert_eq!(row.online_ms, 500);
        assert_eq!((row.batches, row.expected), (3, 4));
        // The next interval: seq 6 after 4 expects 5 and 6.
        r.batch("s", "a", "e1", 6);
        let rows = r.advance(at(13_000), up.clone());
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].batches, rows[0].expected), (1, 2));
        assert_eq!((rows[0].observed_ms, rows[0].online_ms), (1000, 750));
        assert_eq!((rows[1].start_ms, rows[1].batches), (12_000, 0));
        // A new epoch starts its own span.
        r.batch("s", "a", "e2", 1);
        let rows = r.advance(at(14_000), up);
        assert_eq!((rows[0].batches, rows[0].expected), (1, 1));
    }
}
