//! Incidents and incident events, as the HTTP API, the MQTT topic `incidents/{site}` and the
//! supervision platform see them.

use crate::ids::{AgentId, PointId, SiteId};
use crate::time::{serde_ts, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `info` < `warning` < `alarm` < `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Alarm,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Alarm,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Alarm => "alarm",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}
impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    /// Condition present, not acknowledged.
    Active,
    /// Condition present, acknowledged.
    Acknowledged,
    /// Condition gone (`acked_at` tells whether it was acknowledged).
    Cleared,
    /// Closed by an operator with a disposal note.
    Closed,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Active => "active",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Cleared => "cleared",
            IncidentState::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<IncidentState> {
        Some(match s {
            "active" => IncidentState::Active,
            "acknowledged" => IncidentState::Acknowledged,
            "cleared" => IncidentState::Cleared,
            "closed" => IncidentState::Closed,
            _ => return None,
        })
    }
    /// The condition is still present.
    pub fn is_standing(self) -> bool {
        matches!(self, IncidentState::Active | IncidentState::Acknowledged)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Raised,
    Escalated,
    Deescalated,
    Acknowledged,
    Cleared,
    Closed,
    Shelved,
    Unshelved,
    Commented,
    Assigned,
    Notified,
    /// Past its time to acknowledge or to close (督办): see `Incident::overdue_for`.
    Overdue,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Raised => "raised",
            EventKind::Escalated => "escalated",
            EventKind::Deescalated => "deescalated",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Cleared => "cleared",
            EventKind::Closed => "closed",
            EventKind::Shelved => "shelved",
            EventKind::Unshelved => "unshelved",
            EventKind::Commented => "commented",
            EventKind::Assigned => "assigned",
            EventKind::Notified => "notified",
            EventKind::Overdue => "overdue",
        }
    }
    pub fn parse(s: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// One occurrence of one cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub rule: String,
    pub rule_version: String,
    pub site: SiteId,
    pub agent: Option<AgentId>,
    pub point: Option<PointId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub severity: Severity,
    pub state: IncidentState,
    pub value: Option<serde_json::Value>,
    pub threshold: Option<f64>,
    #[serde(with = "serde_ts")]
    pub raised_at: Timestamp,
    #[serde(with = "serde_ts::option")]
    pub acked_at: Option<Timestamp>,
    pub acked_by: Option<String>,
    #[serde(with = "serde_ts::option")]
    pub cleared_at: Option<Timestamp>,
    #[serde(with = "serde_ts::option")]
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<String>,
    pub note: Option<String>,
    pub late: bool,
    pub previous: Option<String>,
    pub message: String,
    pub warnings: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_ts::option"
    )]
    pub shelved_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// `uncertain` when the reading that raised it was of uncertain quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::reading::Quality>,
    /// Past its time to acknowledge or to close (督办); stays once set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overdue: bool,
    /// What it is overdue for: `acknowledge` or `close` (the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_for: Option<OverdueFor>,
}

/// What an overdue incident was not done in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverdueFor {
    /// Not acknowledged within its time to acknowledge.
    Acknowledge,
    /// Not closed within its time to close.
    Close,
}

/// An incident event: the incident as it is after the event, plus the event's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub event: EventKind,
    pub event_id: String,
    pub event_seq: u64,
    #[serde(with = "serde_ts")]
    pub at: Timestamp,
    /// Who did it, for operators' actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The notification tier, for `notified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(flatten)]
    pub incident: Incident,
}

/// Chattering (ISA-18.2 / IEC 62682): a cause raised [`CHATTER_RAISES`] times or more within
/// [`CHATTER_WINDOW`]. The one definition the gateway's metrics, its alarm-load figures and
/// `replay` use.
pub const CHATTER_RAISES: usize = 3;
/// See [`CHATTER_RAISES`].
pub const CHATTER_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// Whether the times a cause was raised (in any order) hold a chattering run.
pub fn chatters(raised: &[crate::Timestamp]) -> bool {
    let mut t = raised.to_vec();
    t.sort();
    t.windows(CHATTER_RAISES)
        .any(|w| w[CHATTER_RAISES - 1] - w[0] <= CHATTER_WINDOW)
}

#[cfg(test)]
mod chatter_tests {
    use super::*;

    #[test]
    fn three_raises_within_an_hour_chatter() {
        let t0 = crate::parse_time("2026-11-28T10:00:00Z").unwrap();
        let m = chrono::Duration::minutes;
        assert!(!chatters(&[t0, t0 + m(30)]), "two are not enough");
        assert!(chatters(&[t0 + m(60), t0, t0 + m(30)]), "in any order");
        assert!(
            !chatters(&[t0, t0 + m(31), t0 + m(62)]),
            "spread over more than an hour"
        );
        assert!(chatters(&[t0, t0 + m(31), t0 + m(62), t0 + m(70)]));
    }
}
