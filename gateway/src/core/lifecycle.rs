//! The incident lifecycle: transitions of the rule engine and operators' actions turned into
//! incident records and their events. Pure: the core persists and sends what this returns.

use alarm_rules::{Cause, Subject, Transition, TransitionKind};
use presentation::Language;
use sha2::{Digest, Sha256};
use telemetry::{
    AgentId, EventKind, Incident, IncidentEvent, IncidentState, PointId, SiteId, Timestamp, Value,
};

/// An incident as the core keeps it: the record and the seq of its last event.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRecord {
    pub incident: Incident,
    pub last_event_seq: u64,
}

/// A stable text key of a cause (for the store and maps).
pub fn cause_key(c: &Cause) -> String {
    match &c.subject {
        Subject::Point { point } => format!("{}|{}|point:{}", c.rule, c.site, point),
        Subject::Agent { agent } => format!("{}|{}|agent:{}", c.rule, c.site, agent),
        Subject::Zone { zone } => format!("{}|{}|zone:{}", c.rule, c.site, zone),
    }
}

/// The cause of an incident as people read it: `rule site subject` (the zone, point or
/// agent). The one spelling of a cause in summaries and figures; [`cause_key`] is the store's.
pub fn cause_label(i: &Incident) -> String {
    let subject = i
        .zone
        .as_deref()
        .or(i.point.as_ref().map(|p| p.as_str()))
        .or(i.agent.as_ref().map(|a| a.as_str()))
        .unwrap_or("");
    format!("{} {} {}", i.rule, i.site, subject)
}

/// The cause of an incident, from its fields.
pub fn cause_of(i: &Incident) -> Option<Cause> {
    let subject = if let Some(zone) = &i.zone {
        Subject::Zone { zone: zone.clone() }
    } else if let Some(point) = &i.point {
        Subject::Point {
            point: point.clone(),
        }
    } else {
        Subject::Agent {
            agent: i.agent.clone()?,
        }
    };
    Some(Cause {
        rule: i.rule.clone(),
        site: i.site.clone(),
        subject,
    })
}

/// A ULID-shaped id derived from the cause, the time it was raised and the incident before it:
/// the same input gives the same id (replay), and ids sort by the time of raising.
pub fn incident_id(cause: &Cause, raised_at: Timestamp, previous: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(cause_key(cause).as_bytes());
    h.update(raised_at.timestamp_micros().to_be_bytes());
    h.update(previous.unwrap_or("").as_bytes());
    let d = h.finalize();
    let mut rand = [0u8; 16];
    rand[6..16].copy_from_slice(&d[..10]);
    let random = u128::from_be_bytes(rand);
    let ms = raised_at.timestamp_millis().max(0) as u64;
    ulid::Ulid::from_parts(ms, random).to_string()
}

fn make_event(
    rec: &mut IncidentRecord,
    kind: EventKind,
    at: Timestamp,
    by: Option<String>,
    tier: Option<String>,
) -> IncidentEvent {
    rec.last_event_seq += 1;
    IncidentEvent {
        event: kind,
        event_id: format!("{}-{}", rec.incident.id, rec.last_event_seq),
        event_seq: rec.last_event_seq,
        at,
        by,
        tier,
        incident: rec.incident.clone(),
    }
}

/// The event of an action on the incident by `by` (an operator, or `gateway`). `note`, if
/// any, is the note of the event's copy of the incident: the record's own note is not changed.
fn action_event(
    rec: &mut IncidentRecord,
    kind: EventKind,
    at: Timestamp,
    by: &str,
    note: Option<String>,
) -> IncidentEvent {
    let mut ev = make_event(rec, kind, at, Some(by.to_string()), None);
    if let Some(note) = note {
        ev.incident.note = Some(note);
    }
    ev
}

/// Apply a transition of a cause to its open incident (if any). Returns the record after the
/// change and the event; `previous` names the last incident of the cause, for a new raise.
pub fn apply_transition(
    open: Option<IncidentRecord>,
    t: &Transition,
    previous: Option<String>,
    language: Language,
) -> Option<(IncidentRecord, IncidentEvent)> {
    match (open, t.kind) {
        (None, TransitionKind::Cleared) => None,
        (None, _) => {
            let (agent, point, zone) = subject_fields(&t.cause, t);
            let id = incident_id(&t.cause, t.at, previous.as_deref());
            let mut rec = IncidentRecord {
                incident: Incident {
                    id,
                    rule: t.cause.rule.clone(),
                    rule_version: t.rule_version.clone(),
                    site: t.cause.site.clone(),
                    agent,
                    point,
                    zone,
                    severity: t.severity,
                    state: IncidentState::Active,
                    value: t.value.as_ref().and_then(value_json),
                    threshold: t.threshold,
                    raised_at: t.at,
                    acked_at: None,
                    acked_by: None,
                    cleared_at: None,
                    closed_at: None,
                    closed_by: None,
                    note: None,
                    late: t.late,
                    previous,
                    message: presentation::message_text(&t.message, language),
                    warnings: t.warnings.clone(),
                    shelved_until: None,
                    assigned_to: None,
                    quality: (t.quality != telemetry::Quality::Good).then_some(t.quality),
                    overdue: false,
                    overdue_for: None,
                },
                last_event_seq: 0,
            };
            let ev = make_event(&mut rec, EventKind::Raised, t.at, None, None);
            Some((rec, ev))
        }
        (Some(mut rec), kind) => {
            let i = &mut rec.incident;
            i.value = t.value.as_ref().and_then(value_json);
            i.threshold = t.threshold;
            i.message = presentation::message_text(&t.message, language);
            i.warnings = t.warnings.clone();
            let event = match kind {
                TransitionKind::Cleared => {
                    i.state = IncidentState::Cleared;
                    i.cleared_at = Some(t.at);
                    EventKind::Cleared
                }
                _ if t.severity > i.severity => {
                    i.severity = t.severity;
                    EventKind::Escalated
                }
                _ if t.severity < i.severity => {
                    i.severity = t.severity;
                    EventKind::Deescalated
                }
                // Same severity: the engine restated a condition we already hold.
                _ => return None,
            };
            if let Some(p) = &t.point {
                if i.zone.is_some() {
                    i.point = Some(p.clone());
                }
            }
            let ev = make_event(&mut rec, event, t.at, None, None);
            Some((rec, ev))
        }
    }
}

fn subject_fields(c: &Cause, t: &Transition) -> (Option<AgentId>, Option<PointId>, Option<String>) {
    match &c.subject {
        Subject::Point { point } => (t.agent.clone(), Some(point.clone()), None),
        Subject::Agent { agent } => (Some(agent.clone()), None, None),
        Subject::Zone { zone } => (t.agent.clone(), t.point.clone(), Some(zone.clone())),
    }
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("a note is required")]
    NoteRequired,
    #[error("an operator is required")]
    OperatorRequired,
    #[error("incident {0} is not cleared yet; only a cleared incident can be closed")]
    NotCleared(String),
    #[error("incident {0} is already closed")]
    AlreadyClosed(String),
    #[error("{0}")]
    Invalid(String),
}

fn require_operator(op: &str) -> Result<(), ActionError> {
    require(op, || ActionError::OperatorRequired)
}

/// An action's text (a note, a reason, an assignee) must not be blank: else `missing()`.
fn require(text: &str, missing: impl FnOnce() -> ActionError) -> Result<(), ActionError> {
    if text.trim().is_empty() {
        Err(missing())
    } else {
        Ok(())
    }
}

/// Acknowledge. Again on an acknowledged incident: no change (`None`).
pub fn acknowledge(
    rec: &mut IncidentRecord,
    operator: &str,
    note: Option<&str>,
    at: Timestamp,
) -> Result<Option<IncidentEvent>, ActionError> {
    require_operator(operator)?;
    let i = &mut rec.incident;
    if i.acked_at.is_some() || i.state == IncidentState::Closed {
        return Ok(None);
    }
    i.acked_at = Some(at);
    i.acked_by = Some(operator.to_string());
    if i.state == IncidentState::Active {
        i.state = IncidentState::Acknowledged;
    }
    if let Some(n) = note.filter(|n| !n.trim().is_empty()) {
        i.note = Some(n.to_string());
    }
    Ok(Some(action_event(
        rec,
        EventKind::Acknowledged,
        at,
        operator,
        None,
    )))
}

/// Close with a disposal note; only a cleared incident can be closed.
pub fn close(
    rec: &mut IncidentRecord,
    operator: &str,
    note: Option<&str>,
    at: Timestamp,
) -> Result<IncidentEvent, ActionError> {
    let note = note
        .filter(|n| !n.trim().is_empty())
        .ok_or(ActionError::NoteRequired)?;
    require_operator(operator)?;
    let i = &mut rec.incident;
    match i.state {
        IncidentState::Closed => return Err(ActionError::AlreadyClosed(i.id.clone())),
        IncidentState::Active | IncidentState::Acknowledged => {
            return Err(ActionError::NotCleared(i.id.clone()))
        }
        IncidentState::Cleared => {}
    }
    i.state = IncidentState::Closed;
    i.closed_at = Some(at);
    i.closed_by = Some(operator.to_string());
    i.note = Some(note.to_string());
    i.shelved_until = None;
    Ok(action_event(rec, EventKind::Closed, at, operator, None))
}

/// A comment by an operator (kept in the history; the incident's `note` is not changed).
pub fn comment(
    rec: &mut IncidentRecord,
    operator: &str,
    text: &str,
    at: Timestamp,
) -> Result<IncidentEvent, ActionError> {
    require_operator(operator)?;
    require(text, || ActionError::NoteRequired)?;
    Ok(action_event(
        rec,
        EventKind::Commented,
        at,
        operator,
        Some(text.to_string()),
    ))
}

/// The weather warnings that shape a standing incident changed without changing its severity
/// (a rainstorm orange updated to red, a warning that ended): `warnings` is brought up to
/// date, and the gateway says so in a `commented` event (by `gateway`), so every consumer of
/// the events sees the incident's current warnings. `None` when nothing changed.
pub fn restate_warnings(
    rec: &mut IncidentRecord,
    warnings: Vec<String>,
    at: Timestamp,
) -> Option<IncidentEvent> {
    if rec.incident.warnings == warnings || !rec.incident.state.is_standing() {
        return None;
    }
    let text = if warnings.is_empty() {
        "no weather warning shapes this incident any more".to_string()
    } else {
        format!("weather warnings now: {}", warnings.join(", "))
    };
    rec.incident.warnings = warnings;
    Some(action_event(
        rec,
        EventKind::Commented,
        at,
        "gateway",
        Some(text),
    ))
}

/// Assign to an operator.
pub fn assign(
    rec: &mut IncidentRecord,
    operator: &str,
    assignee: &str,
    at: Timestamp,
) -> Result<IncidentEvent, ActionError> {
    require_operator(operator)?;
    require(assignee, || {
        ActionError::Invalid("assignee is required".into())
    })?;
    rec.incident.assigned_to = Some(assignee.to_string());
    Ok(action_event(rec, EventKind::Assigned, at, operator, None))
}

/// Shelve until a time, with a reason. A closed incident cannot be shelved.
pub fn shelve(
    rec: &mut IncidentRecord,
    operator: &str,
    reason: &str,
    until: Timestamp,
    at: Timestamp,
) -> Result<IncidentEvent, ActionError> {
    require_operator(operator)?;
    require(reason, || ActionError::NoteRequired)?;
    if rec.incident.state == IncidentState::Closed {
        return Err(ActionError::AlreadyClosed(rec.incident.id.clone()));
    }
    if until <= at {
        return Err(ActionError::Invalid(
            "`until` must lie in the future".into(),
        ));
    }
    rec.incident.shelved_until = Some(until);
    Ok(action_event(
        rec,
        EventKind::Shelved,
        at,
        operator,
        Some(reason.to_string()),
    ))
}

/// End a shelving (by an operator, or by itself when it expires: `operator` None).
pub fn unshelve(
    rec: &mut IncidentRecord,
    operator: Option<&str>,
    at: Timestamp,
) -> Option<IncidentEvent> {
    rec.incident.shelved_until.take()?;
    Some(make_event(
        rec,
        EventKind::Unshelved,
        at,
        operator.map(str::to_string),
        None,
    ))
}

/// An escalation tier was notified (forwarding, issue 9). Only an incident whose condition
/// stands unacknowledged is escalated: acknowledged, cleared or closed ones give `None`.
pub fn notified(rec: &mut IncidentRecord, tier: &str, at: Timestamp) -> Option<IncidentEvent> {
    // Acknowledgement stops escalation, unless the incident is overdue (督办): then only its
    // closing does.
    let escalating = if rec.incident.overdue {
        rec.incident.state != IncidentState::Closed
    } else {
        rec.incident.state == IncidentState::Active && rec.incident.acked_at.is_none()
    };
    if !escalating {
        return None;
    }
    Some(make_event(
        rec,
        EventKind::Notified,
        at,
        None,
        Some(tier.to_string()),
    ))
}

/// Mark an incident overdue (督办) for `what`: an `overdue` event, its note saying what was
/// not done in time (in `language`).
pub fn overdue(
    rec: &mut IncidentRecord,
    what: telemetry::OverdueFor,
    at: Timestamp,
    language: Language,
) -> IncidentEvent {
    rec.incident.overdue = true;
    rec.incident.overdue_for = Some(what);
    let mut ev = make_event(rec, EventKind::Overdue, at, Some("gateway".into()), None);
    ev.incident.note = Some(
        match (language, what) {
            (Language::ZhCn, telemetry::OverdueFor::Acknowledge) => "督办：超时未确认",
            (Language::ZhCn, telemetry::OverdueFor::Close) => "督办：超时未处置关闭",
            (Language::En, telemetry::OverdueFor::Acknowledge) => {
                "overdue: not acknowledged in time"
            }
            (Language::En, telemetry::OverdueFor::Close) => "overdue: not closed in time",
        }
        .to_string(),
    );
    ev
}

/// The site of an incident (for routing).
/// A transition's value as the incident keeps it (JSON); a value JSON cannot hold (NaN) is
/// left out.
fn value_json(v: &Value) -> Option<serde_json::Value> {
    match v {
        Value::Number(n) => serde_json::Number::from_f64(*n).map(serde_json::Value::Number),
        v => serde_json::to_value(v).ok(),
    }
}

pub fn site_of(i: &Incident) -> &SiteId {
    &i.site
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_rules::Message;
    use telemetry::{parse_time, Quality, Severity};

    fn t(s: &str) -> Timestamp {
        parse_time(s).unwrap()
    }

    fn transition(kind: TransitionKind, severity: Severity, at: &str, value: f64) -> Transition {
        Transition {
            cause: Cause {
                rule: "coal.ch4.working_face".into(),
                site: SiteId::new("mine-01").unwrap(),
                subject: Subject::Point {
                    point: PointId::new("CH4-101").unwrap(),
                },
            },
            kind,
            severity,
            agent: Some(AgentId::new("edge").unwrap()),
            point: Some(PointId::new("CH4-101").unwrap()),
            value: Some(Value::Number(value)),
            threshold: Some(1.0),
            at: t(at),
            rule_version: "v1".into(),
            message: Message::Nothing,
            warnings: vec![],
            quality: Quality::Good,
            late: false,
        }
    }

    #[test]
    fn restated_warnings_only_when_they_change_on_a_standing_incident() {
        let mut raise = transition(
            TransitionKind::Raised,
            Severity::Alarm,
            "2026-07-28T02:00:00Z",
            9.0,
        );
        raise.warnings = vec!["orange".into()];
        let (mut rec, _) = apply_transition(None, &raise, None, Language::En).unwrap();
        let at = t("2026-07-28T05:00:00Z");
        assert!(restate_warnings(&mut rec, vec!["orange".into()], at).is_none());
        let ev = restate_warnings(&mut rec, vec!["red".into()], at).unwrap();
        assert_eq!(ev.event, EventKind::Commented);
        assert_eq!(ev.by.as_deref(), Some("gateway"));
        assert_eq!(ev.event_seq, 2);
        assert_eq!(ev.incident.warnings, vec!["red".to_string()]);
        assert_eq!(
            ev.incident.note.as_deref(),
            Some("weather warnings now: red")
        );
        assert_eq!(rec.incident.warnings, vec!["red".to_string()]);
        assert_eq!(rec.incident.severity, Severity::Alarm, "severity untouched");
        let ev = restate_warnings(&mut rec, vec![], at).unwrap();
        assert_eq!(
            ev.incident.note.as_deref(),
            Some("no weather warning shapes this incident any more")
        );
        // A cleared incident keeps the warnings it had.
        let clear = transition(
            TransitionKind::Cleared,
            Severity::Alarm,
            "2026-07-28T06:00:00Z",
            7.0,
        );
        let (mut rec, _) = apply_transition(Some(rec), &clear, None, Language::En).unwrap();
        assert!(restate_warnings(&mut rec, vec!["red".into()], at).is_none());
    }

    #[test]
    fn raise_escalate_clear_ack_close() {
        let (rec, ev) = apply_transition(
            None,
            &transition(
                TransitionKind::Raised,
                Severity::Alarm,
                "2026-11-28T10:00:00Z",
                1.1,
            ),
            None,
            Language::En,
        )
        .unwrap();
        assert_eq!(ev.event, EventKind::Raised);
        assert_eq!(ev.event_seq, 1);
        assert_eq!(ev.event_id, format!("{}-1", rec.incident.id));
        assert_eq!(rec.incident.state, IncidentState::Active);
        // The same severity restated: no event.
        assert!(apply_transition(
            Some(rec.clone()),
            &transition(
                TransitionKind::Raised,
                Severity::Alarm,
                "2026-11-28T10:00:01Z",
                1.2
            ),
            None,
            Language::En
        )
        .is_none());
        let (rec, ev) = apply_transition(
            Some(rec),
            &transition(
                TransitionKind::Escalated,
                Severity::Critical,
                "2026-11-28T10:00:02Z",
                1.6,
            ),
            None,
            Language::En,
        )
        .unwrap();
        assert_eq!(
            (ev.event, ev.event_seq, rec.incident.severity),
            (EventKind::Escalated, 2, Severity::Critical)
        );
        let mut rec = rec;
        // Close before clear: refused.
        assert!(matches!(
            close(&mut rec, "li", Some("done"), t("2026-11-28T10:00:03Z")),
            Err(ActionError::NotCleared(_))
        ));
        let ev = acknowledge(&mut rec, "wang", None, t("2026-11-28T10:00:04Z"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (ev.event, rec.incident.state),
            (EventKind::Acknowledged, IncidentState::Acknowledged)
        );
        assert!(
            acknowledge(&mut rec, "zhao", None, t("2026-11-28T10:00:05Z"))
                .unwrap()
                .is_none(),
            "again: no change"
        );
        assert_eq!(rec.incident.acked_by.as_deref(), Some("wang"));
        let (mut rec, ev) = apply_transition(
            Some(rec),
            &transition(
                TransitionKind::Cleared,
                Severity::Critical,
                "2026-11-28T10:00:06Z",
                0.5,
            ),
            None,
            Language::En,
        )
        .unwrap();
        assert_eq!(
            (ev.event, rec.incident.state),
            (EventKind::Cleared, IncidentState::Cleared)
        );
        assert_eq!(rec.incident.cleared_at, Some(t("2026-11-28T10:00:06Z")));
        assert_eq!(
            close(&mut rec, "li", None, t("2026-11-28T10:00:07Z")),
            Err(ActionError::NoteRequired)
        );
        let ev = close(
            &mut rec,
            "li",
            Some("ventilation restored"),
            t("2026-11-28T10:00:08Z"),
        )
        .unwrap();
        assert_eq!((ev.event, ev.event_seq), (EventKind::Closed, 5));
        assert!(matches!(
            close(&mut rec, "li", Some("again"), t("2026-11-28T10:00:09Z")),
            Err(ActionError::AlreadyClosed(_))
        ));
    }

    #[test]
    fn ids_are_derived_and_sort_by_time() {
        let a = transition(
            TransitionKind::Raised,
            Severity::Alarm,
            "2026-11-28T10:00:00Z",
            1.1,
        );
        let b = transition(
            TransitionKind::Raised,
            Severity::Alarm,
            "2026-11-28T10:00:01Z",
            1.1,
        );
        assert_eq!(
            incident_id(&a.cause, a.at, None),
            incident_id(&a.cause, a.at, None)
        );
        assert_ne!(
            incident_id(&a.cause, a.at, None),
            incident_id(&a.cause, a.at, Some("x"))
        );
        assert!(incident_id(&a.cause, a.at, None) < incident_id(&b.cause, b.at, None));
        let (rec, _) = apply_transition(None, &b, Some("PREV".into()), Language::En).unwrap();
        assert_eq!(rec.incident.previous.as_deref(), Some("PREV"));
        assert_eq!(cause_of(&rec.incident), Some(b.cause.clone()));
        assert_eq!(
            cause_key(&b.cause),
            "coal.ch4.working_face|mine-01|point:CH4-101"
        );
    }

    #[test]
    fn a_clear_without_an_open_incident_is_nothing() {
        assert!(apply_transition(
            None,
            &transition(
                TransitionKind::Cleared,
                Severity::Alarm,
                "2026-11-28T10:00:00Z",
                0.1
            ),
            None,
            Language::En
        )
        .is_none());
    }
}
