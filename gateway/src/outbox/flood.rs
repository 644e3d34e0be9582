//! Flood control: when more than `max_incidents` incidents are raised at one site within
//! `window_ms` (event time), a subscriber gets one summary per window instead of a storm.
//! Critical incidents and `notified` events are never held back. Pure: the caller gives the
//! gateway clock's `now`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use telemetry::{EventKind, IncidentEvent, Severity, SiteId, Timestamp};

/// `[forwarding.flood]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodConfig {
    /// More incidents than this raised at a site within the window is a flood.
    pub max_incidents: usize,
    /// The window, and how long a summary gathers before it is sent.
    pub window_ms: u64,
}

impl FloodConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_incidents == 0 {
            return Err("forwarding.flood.max_incidents must be at least 1".into());
        }
        if !(100..=86_400_000).contains(&self.window_ms) {
            return Err("forwarding.flood.window_ms must be between 100 and 86400000".into());
        }
        Ok(())
    }
}

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Counted in the next summary instead.
    Hold,
}

/// The most incidents a summary lists one by one.
pub const SUMMARY_LIST: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryItem {
    pub id: String,
    pub rule: String,
    pub point: Option<String>,
    pub severity: Severity,
    pub message: String,
}

/// The message that replaces a storm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloodSummary {
    /// Always `flood_summary`.
    pub event: String,
    /// Stable for the same held events (the idempotency key).
    pub summary_id: String,
    pub site: SiteId,
    #[serde(with = "telemetry::time::serde_ts")]
    pub from: Timestamp,
    #[serde(with = "telemetry::time::serde_ts")]
    pub to: Timestamp,
    pub window_ms: u64,
    /// Incidents raised and held back.
    pub raised: usize,
    /// Events held back in all (raised, cleared, ...).
    pub events: usize,
    /// Held raised incidents by severity.
    pub by_severity: BTreeMap<String, usize>,
    /// The first incidents held, at most [`SUMMARY_LIST`].
    pub incidents: Vec<SummaryItem>,
    /// Incidents held beyond the list.
    pub more: usize,
}

#[derive(Debug, Clone)]
struct Held {
    since: Timestamp,
    first_event_id: String,
    from: Timestamp,
    to: Timestamp,
    raised: usize,
    events: usize,
    by_severity: BTreeMap<String, usize>,
    incidents: Vec<SummaryItem>,
    seen: HashSet<String>,
}

/// Flood state of one site for one subscriber.
#[derive(Debug, Clone)]
pub struct FloodGate {
    cfg: FloodConfig,
    /// Event times of recent raises.
    recent: VecDeque<Timestamp>,
    held: Option<Held>,
}

impl FloodGate {
    pub fn new(cfg: FloodConfig) -> Self {
        FloodGate {
            cfg,
            recent: VecDeque::new(),
            held: None,
        }
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.cfg.window_ms as i64)
    }

    /// Count a raise that was already handled (to restore the window after a restart).
    pub fn prime(&mut self, raised_at: Timestamp) {
        self.note_raise(raised_at);
    }

    fn note_raise(&mut self, at: Timestamp) {
        self.recent.push_back(at);
        let newest = self.recent.iter().copied().max().unwrap_or(at);
        let floor = newest - self.window();
        self.recent.retain(|t| *t > floor);
    }

    /// Whether a summary is gathering.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// When the gathering summary is due (gateway clock).
    pub fn deadline(&self) -> Option<Timestamp> {
        self.held.as_ref().map(|h| h.since + self.window())
    }

    /// Judge an event of the site in log order; `now` is the gateway clock.
    pub fn observe(&mut self, ev: &IncidentEvent, now: Timestamp) -> Verdict {
        if ev.event == EventKind::Raised {
            self.note_raise(ev.at);
            if self.held.is_none() && self.recent.len() > self.cfg.max_incidents {
                self.held = Some(Held {
                    since: now,
                    first_event_id: ev.event_id.clone(),
                    from: ev.at,
                    to: ev.at,
                    raised: 0,
                    events: 0,
                    by_severity: BTreeMap::new(),
                    incidents: Vec::new(),
                    seen: HashSet::new(),
                });
            }
        }
        let never_held =
            ev.incident.severity == Severity::Critical || ev.event == EventKind::Notified;
        let Some(h) = self.held.as_mut() else {
            return Verdict::Send;
        };
        if never_held {
            return Verdict::Send;
        }
        h.events += 1;
        h.from = h.from.min(ev.at);
        h.to = h.to.max(ev.at);
        if ev.event == EventKind::Raised {
            h.raised += 1;
            *h.by_severity
                .entry(ev.incident.severity.as_str().to_string())
                .or_default() += 1;
        }
        if h.seen.insert(ev.incident.id.clone()) && h.incidents.len() < SUMMARY_LIST {
            h.incidents.push(SummaryItem {
                id: ev.incident.id.clone(),
                rule: ev.incident.rule.clone(),
                point: ev.incident.point.as_ref().map(|p| p.to_string()),
                severity: ev.incident.severity,
                message: ev.incident.message.clone(),
            });
        }
        Verdict::Hold
    }

    /// The summary, once it is due (or at once with `force`); the flood may go on, and the
    /// next raise beyond the limit starts the next summary.
    pub fn flush(&mut self, site: &SiteId, now: Timestamp, force: bool) -> Option<FloodSummary> {
        let due = self.deadline()?;
        if !force && now < due {
            return None;
        }
        let h = self.held.take()?;
        let more = h.seen.len().saturating_sub(h.incidents.len());
        Some(FloodSummary {
            event: "flood_summary".into(),
            summary_id: format!("flood-{}", h.first_event_id),
            site: site.clone(),
            from: h.from,
            to: h.to,
            window_ms: self.cfg.window_ms,
            raised: h.raised,
            events: h.events,
            by_severity: h.by_severity,
            incidents: h.incidents,
            more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::filter::tests::event;

    fn raised(n: usize, sec: i64, severity: Severity) -> IncidentEvent {
        let mut ev = event("mine-01", &format!("rule.{n}"), severity, EventKind::Raised);
        ev.at += chrono::Duration::seconds(sec);
        ev.event_id = format!("E{n}");
        ev.incident.id = format!("I{n}");
        ev
    }

    #[test]
    fn storm_becomes_one_summary_and_critical_goes_through() {
        let mut g = FloodGate::new(FloodConfig {
            max_incidents: 3,
            window_ms: 60_000,
        });
        let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        let site = SiteId::new("mine-01").unwrap();
        for n in 0..3 {
            assert_eq!(
                g.observe(&raised(n, n as i64, Severity::Alarm), now),
                Verdict::Send,
                "the first three go out"
            );
        }
        assert_eq!(
            g.observe(&raised(3, 3, Severity::Alarm), now),
            Verdict::Hold,
            "the fourth within a minute is a flood"
        );
        assert_eq!(
            g.observe(&raised(4, 4, Severity::Critical), now),
            Verdict::Send,
            "critical is never held"
        );
        assert_eq!(
            g.observe(&raised(5, 5, Severity::Warning), now),
            Verdict::Hold
        );
        let mut cleared = raised(3, 6, Severity::Alarm);
        cleared.event = EventKind::Cleared;
        assert_eq!(
            g.observe(&cleared, now),
            Verdict::Hold,
            "later events of the storm are held too"
        );
        assert!(
            g.flush(&site, now + chrono::Duration::seconds(59), false)
                .is_none(),
            "not before the window ends"
        );
        let s = g
            .flush(&site, now + chrono::Duration::seconds(60), false)
            .expect("summary");
        assert_eq!(s.raised, 2);
        assert_eq!(s.events, 3);
        assert_eq!(s.incidents.len(), 2, "distinct incidents: {s:?}");
        assert_eq!(s.by_severity.get("alarm"), Some(&1));
        assert_eq!(s.by_severity.get("warning"), Some(&1));
        assert_eq!(s.summary_id, "flood-E3");
        assert!(!g.holding());
        assert!(
            g.flush(&site, now + chrono::Duration::seconds(120), false)
                .is_none(),
            "one summary per window"
        );
    }

    #[test]
    fn spread_out_raises_are_no_flood() {
        let mut g = FloodGate::new(FloodConfig {
            max_incidents: 2,
            window_ms: 10_000,
        });
        let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        for n in 0..10 {
            assert_eq!(
                g.observe(&raised(n, n as i64 * 6, Severity::Alarm), now),
                Verdict::Send,
                "raise {n}"
            );
        }
    }

    #[test]
    fn primed_window_counts_earlier_raises() {
        let mut g = FloodGate::new(FloodConfig {
            max_incidents: 2,
            window_ms: 10_000,
        });
        let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        g.prime(raised(0, 0, Severity::Alarm).at);
        g.prime(raised(1, 1, Severity::Alarm).at);
        assert_eq!(
            g.observe(&raised(2, 2, Severity::Alarm), now),
            Verdict::Hold
        );
    }

    #[test]
    fn summary_lists_at_most_twenty() {
        let mut g = FloodGate::new(FloodConfig {
            max_incidents: 1,
            window_ms: 60_000,
        });
        let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        for n in 0..40 {
            g.observe(&raised(n, 1, Severity::Info), now);
        }
        let s = g
            .flush(&SiteId::new("mine-01").unwrap(), now, true)
            .unwrap();
        assert_eq!(s.raised, 39);
        assert_eq!(s.incidents.len(), SUMMARY_LIST);
        assert_eq!(s.more, 39 - SUMMARY_LIST);
    }
}
