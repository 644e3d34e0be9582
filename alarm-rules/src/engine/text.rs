//! Message text of transitions: what a point's, a zone's, a site's and an agent's cause
//! says, with how a composite member's condition and a warning level read.

use super::machine::Open;
use super::select::{level_values, missing_limit};
use super::state::{Binding, Extra, FaultWhy, PointSt, ZoneSt};
use crate::api::{ActiveWarning, TransitionKind};
use crate::message;
use crate::rule::{Kind, Member, Mode, PointCondition, Rule};
use telemetry::AgentId;

/// What a point's cause says on a transition, and the threshold it names.
pub(super) fn binding_text(
    rule: &Rule,
    b: &Binding,
    p: &PointSt,
    warnings: &[ActiveWarning],
    missing_factor: f64,
    kind: TransitionKind,
    open: Open,
) -> (Option<f64>, String) {
    let spec = p.spec.as_deref();
    let q = message::quantity_label(spec, &p.id);
    let u = message::unit(spec);
    let place = message::place(spec, &p.id);
    let v = message::value_text(&p.value);
    match &rule.kind {
        Kind::Threshold { levels, .. } => {
            let l = &levels[open.level as usize];
            let (raise, clear) = level_values(rule, open.level as usize, l, warnings);
            match kind {
                TransitionKind::Cleared => (
                    Some(clear),
                    format!(
                        "{q} {v}{u} {} {} {}{u} {place}: cleared",
                        l.clear_op(),
                        l.clear_label,
                        message::num(clear)
                    ),
                ),
                TransitionKind::Deescalated => (
                    Some(raise),
                    format!(
                        "{q} {v}{u} back under a higher level, still {} {} {}{u} {place}",
                        l.op(),
                        l.label,
                        message::num(raise)
                    ),
                ),
                _ => (
                    Some(raise),
                    format!(
                        "{q} {v}{u} {} {} {}{u} {place}",
                        l.op(),
                        l.label,
                        message::num(raise)
                    ),
                ),
            }
        }
        Kind::Rate { window_ms, .. } => {
            let dir = if open.level == 0 { "rose" } else { "fell" };
            let secs = *window_ms as f64 / 1000.0;
            match kind {
                TransitionKind::Cleared => (
                    None,
                    format!("{q} {v}{u} {place}: rate of change back to normal: cleared"),
                ),
                _ => (
                    Some(open.threshold),
                    format!(
                        "{q} {dir} by {} {u} or more within {} s, now {v}{u} {place}",
                        message::num(open.threshold),
                        message::num(secs)
                    ),
                ),
            }
        }
        Kind::SensorFault { .. } => {
            let why = match b.extra {
                Extra::Fault {
                    why: FaultWhy::OutOfRange,
                    ..
                } => {
                    let r = p
                        .spec
                        .as_deref()
                        .and_then(|s| s.range)
                        .unwrap_or([f64::NAN, f64::NAN]);
                    format!(
                        "value {v}{u} outside the range {}..{}",
                        message::num(r[0]),
                        message::num(r[1])
                    )
                }
                Extra::Fault {
                    why: FaultWhy::Stuck,
                    stuck_value,
                    ..
                } => format!("value stuck at {}{u}", message::num(stuck_value)),
                _ => "quality bad".to_string(),
            };
            match kind {
                TransitionKind::Cleared => (
                    None,
                    format!("sensor of {q} {place} reads normally again: cleared"),
                ),
                _ => (None, format!("sensor fault of {q} {place}: {why}")),
            }
        }
        Kind::MissingData { .. } => match kind {
            TransitionKind::Cleared => (None, format!("data from {q} {place} again: cleared")),
            _ => {
                let limit = missing_limit(rule, p, missing_factor).unwrap_or(0);
                (
                    None,
                    format!(
                        "no data from {q} {place} for over {} s",
                        message::num(limit as f64 / 1000.0)
                    ),
                )
            }
        },
        Kind::State {
            label,
            max_duration_ms,
            escalate_to,
            ..
        } => match kind {
            TransitionKind::Cleared => (None, format!("{q} {place} no longer {label}: cleared")),
            TransitionKind::Escalated
                if open.severity >= *escalate_to && max_duration_ms.is_some() =>
            {
                (
                    None,
                    format!(
                        "{q} {place} {label} for longer than {} s",
                        message::num(max_duration_ms.unwrap_or(0) as f64 / 1000.0)
                    ),
                )
            }
            _ => (None, format!("{q} {place} {label}")),
        },
        _ => (None, String::new()),
    }
}

fn level_name(l: crate::api::WarningLevel) -> &'static str {
    use crate::api::WarningLevel as L;
    match l {
        L::Blue => "blue",
        L::Yellow => "yellow",
        L::Orange => "orange",
        L::Red => "red",
    }
}

fn describe_condition(c: &PointCondition) -> String {
    match c {
        PointCondition::Above(x) => format!(">= {}", message::num(*x)),
        PointCondition::Below(x) => format!("< {}", message::num(*x)),
        PointCondition::Equals(true) => "true".to_string(),
        PointCondition::Equals(false) => "false".to_string(),
        PointCondition::Cause { rule, min_severity } => {
            format!("at {min_severity} under {}", rule.as_str())
        }
    }
}

/// What a zone's composite cause says on a transition; `tp`: the point that completed the
/// condition, `points`: the engine's points.
#[allow(clippy::too_many_arguments)]
pub(super) fn zone_text(
    rule: &Rule,
    z: &ZoneSt,
    members: &[Member],
    mode: &Mode,
    within_ms: u64,
    kind: TransitionKind,
    tp: Option<&PointSt>,
    points: &[PointSt],
) -> String {
    match (kind, mode) {
        (TransitionKind::Cleared, _) => format!(
            "zone {}: condition of {} no longer holds: cleared",
            z.zone, rule.id
        ),
        (_, Mode::AThenNotB) => {
            let proof: Vec<&str> = z.members[1]
                .iter()
                .map(|&p| points[p as usize].id.as_str())
                .collect();
            format!(
                "zone {}: {} not proven within {} s after {} (still not: {})",
                z.zone,
                describe_condition(&members[1].condition),
                message::num(within_ms as f64 / 1000.0),
                tp.map(|p| format!("{} {}", p.id, describe_condition(&members[0].condition)))
                    .unwrap_or_default(),
                proof.join(", ")
            )
        }
        (_, Mode::All) => format!("zone {}: all conditions of {} hold", z.zone, rule.id),
        (_, Mode::Any) => format!(
            "zone {}: a condition of {} holds ({})",
            z.zone,
            rule.id,
            tp.map(|p| p.id.as_str()).unwrap_or("")
        ),
    }
}

/// What a site-level cause says on a transition; `matching`: the warnings that call for it.
pub(super) fn site_text(label: &str, kind: TransitionKind, matching: &[&ActiveWarning]) -> String {
    match kind {
        TransitionKind::Cleared => {
            format!("{label}: the warning that called for it is no longer in force: cleared")
        }
        _ => {
            let what: Vec<String> = matching
                .iter()
                .map(|w| match w.magnitude {
                    Some(m) => format!(
                        "{} M{} ({})",
                        w.kind.replace('_', " "),
                        message::num(m),
                        w.id
                    ),
                    None => format!(
                        "{} {} ({})",
                        w.kind.replace('_', " "),
                        level_name(w.level),
                        w.id
                    ),
                })
                .collect();
            format!("{label}: {}", what.join(", "))
        }
    }
}

/// What an agent's communication cause says on a transition.
pub(super) fn agent_text(agent: &AgentId, kind: TransitionKind) -> String {
    match kind {
        TransitionKind::Cleared => format!("agent {} online again: cleared", agent),
        _ => format!("agent {} offline: communication lost", agent),
    }
}
