//! Supervision of incidents that sit too long (挂牌督办): per severity a time to acknowledge
//! and a time to close, from `[supervision]` (defaults, overridden per site category and per
//! rule). An incident past either becomes overdue: an `overdue` event, sent like every event,
//! and escalated through the escalation tiers. Pure: the core's timer asks [`due`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use telemetry::{Incident, IncidentState, OverdueFor, Severity, Timestamp};

/// The times of one severity, in ms from the raise; 0: not watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Times {
    pub ack_within_ms: u64,
    pub close_within_ms: u64,
}

const fn times(ack_min: u64, close_h: u64) -> Times {
    Times {
        ack_within_ms: ack_min * 60_000,
        close_within_ms: close_h * 3_600_000,
    }
}

/// Times per severity (`info`, `warning`, `alarm`, `critical`).
pub type BySeverity = BTreeMap<Severity, Times>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Watch incidents at all.
    pub enabled: bool,
    /// How often standing incidents are checked.
    pub check_ms: u64,
    /// The times per severity. Defaults: critical 5 min to acknowledge and 4 h to close; alarm
    /// 15 min and 24 h; warning 60 min and 72 h; info not watched.
    pub times: BySeverity,
    /// Per site category (`coal_mine`, `hazchem`, ...): times that replace the defaults of
    /// the severities they name.
    pub by_category: BTreeMap<String, BySeverity>,
    /// Per rule (an id, or a prefix ending in `*`, the longest matching wins): times that
    /// replace the category's and the defaults of the severities they name.
    pub by_rule: BTreeMap<String, BySeverity>,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            enabled: true,
            check_ms: 10_000,
            times: BTreeMap::from([
                (Severity::Critical, times(5, 4)),
                (Severity::Alarm, times(15, 24)),
                (Severity::Warning, times(60, 72)),
            ]),
            by_category: BTreeMap::new(),
            by_rule: BTreeMap::new(),
        }
    }
}

impl SupervisionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.check_ms < 100 {
            anyhow::bail!("supervision.check_ms must be at least 100");
        }
        for pattern in self.by_rule.keys() {
            if pattern.is_empty() || pattern[..pattern.len() - 1].contains('*') {
                anyhow::bail!(
                    "supervision.by_rule {pattern:?}: a rule id, or a prefix ending in *"
                );
            }
        }
        Ok(())
    }

    /// The times in force for an incident of `rule` and `severity` at a site of `category`.
    pub fn times_for(&self, rule: &str, severity: Severity, category: Option<&str>) -> Times {
        let by_rule = self
            .by_rule
            .iter()
            .filter(|(p, _)| match p.strip_suffix('*') {
                Some(prefix) => rule.starts_with(prefix),
                None => p.as_str() == rule,
            })
            .max_by_key(|(p, _)| (p.len(), !p.ends_with('*')))
            .and_then(|(_, t)| t.get(&severity));
        let by_category = category
            .and_then(|c| self.by_category.get(c))
            .and_then(|t| t.get(&severity));
        by_rule
            .or(by_category)
            .or(self.times.get(&severity))
            .copied()
            .unwrap_or_default()
    }
}

/// What an incident has newly become overdue for at `now`, if anything: close when its time to
/// close has passed and it is not closed; else acknowledge when its time to acknowledge has
/// passed and nobody has. A shelved incident waits; what it was marked for already is not
/// marked again.
pub fn due(i: &Incident, t: Times, now: Timestamp) -> Option<OverdueFor> {
    if i.state == IncidentState::Closed || i.shelved_until.is_some_and(|u| u > now) {
        return None;
    }
    let past = |ms: u64| ms > 0 && now >= i.raised_at + chrono::Duration::milliseconds(ms as i64);
    let found = if past(t.close_within_ms) {
        OverdueFor::Close
    } else if i.acked_at.is_none() && past(t.ack_within_ms) {
        OverdueFor::Acknowledge
    } else {
        return None;
    };
    match (i.overdue_for, found) {
        (Some(OverdueFor::Close), _) => None,
        (Some(OverdueFor::Acknowledge), OverdueFor::Acknowledge) => None,
        _ => Some(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(severity: Severity) -> Incident {
        let ev = crate::outbox::filter::tests::event(
            "mine-01",
            "coal.ch4.working_face",
            severity,
            telemetry::EventKind::Raised,
        );
        let mut i = ev.incident;
        i.raised_at = telemetry::parse_time("2026-07-28T02:00:00Z").unwrap();
        i.state = IncidentState::Active;
        i.acked_at = None;
        i
    }

    fn at(minutes: i64) -> Timestamp {
        telemetry::parse_time("2026-07-28T02:00:00Z").unwrap() + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn overdue_to_acknowledge_then_to_close() {
        let c = SupervisionConfig::default();
        let mut i = incident(Severity::Critical);
        let t = c.times_for(&i.rule, i.severity, Some("coal_mine"));
        assert_eq!(due(&i, t, at(4)), None);
        assert_eq!(due(&i, t, at(5)), Some(OverdueFor::Acknowledge));
        i.overdue = true;
        i.overdue_for = Some(OverdueFor::Acknowledge);
        assert_eq!(due(&i, t, at(60)), None, "marked once");
        i.acked_at = Some(at(61));
        i.state = IncidentState::Acknowledged;
        assert_eq!(due(&i, t, at(239)), None);
        assert_eq!(due(&i, t, at(240)), Some(OverdueFor::Close));
        i.overdue_for = Some(OverdueFor::Close);
        assert_eq!(due(&i, t, at(600)), None);
        let mut closed = incident(Severity::Critical);
        closed.state = IncidentState::Closed;
        assert_eq!(due(&closed, t, at(600)), None);
        let mut shelved = incident(Severity::Critical);
        shelved.shelved_until = Some(at(30));
        assert_eq!(due(&shelved, t, at(10)), None);
        assert_eq!(due(&shelved, t, at(31)), Some(OverdueFor::Acknowledge));
        assert_eq!(
            due(
                &incident(Severity::Info),
                c.times_for("x", Severity::Info, None),
                at(10_000)
            ),
            None
        );
    }

    #[test]
    fn a_rule_beats_a_category_beats_the_defaults() {
        let c: SupervisionConfig = toml::from_str(
            r#"
            [by_category.coal_mine.critical]
            ack_within_ms = 120000
            close_within_ms = 7200000
            [by_rule."coal.ch4.*".critical]
            ack_within_ms = 60000
            [by_rule."coal.ch4.working_face".critical]
            ack_within_ms = 30000
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let t = |rule, category| {
            c.times_for(rule, Severity::Critical, category)
                .ack_within_ms
        };
        assert_eq!(t("coal.ch4.working_face", Some("coal_mine")), 30_000);
        assert_eq!(t("coal.ch4.upper_corner", Some("coal_mine")), 60_000);
        assert_eq!(t("coal.co.working_face", Some("coal_mine")), 120_000);
        assert_eq!(t("coal.co.working_face", Some("hazchem")), 300_000);
        assert_eq!(
            c.times_for("x", Severity::Alarm, None).close_within_ms,
            86_400_000
        );
        let bad: SupervisionConfig = toml::from_str("[by_rule.\"co*al\".alarm]\n").unwrap();
        assert!(bad.validate().is_err());
    }
}
