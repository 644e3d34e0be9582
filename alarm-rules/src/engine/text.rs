//! What a transition says, as typed data ([`Message`]): a point's, a zone's, a site's and an
//! agent's cause, with a composite member's condition. The gateway renders it for people.

use super::machine::Open;
use super::select::{level_values, missing_limit};
use super::state::{Binding, Extra, FaultWhy, PointSt, ZoneSt};
use crate::api::{ActiveWarning, TransitionKind};
use crate::message::{
    Comparison, Condition, FaultCause, LevelPhase, Message, PointTerms, TooOften, WarningTerms,
};
use crate::rule::{Kind, Level, Member, Mode, PointCondition, Rule, Side};
use telemetry::{AgentId, Quantity};

fn comparison(side: Side, inclusive: bool) -> Comparison {
    match (side, inclusive) {
        (Side::High, true) => Comparison::AtLeast,
        (Side::High, false) => Comparison::Above,
        (Side::Low, true) => Comparison::AtMost,
        (Side::Low, false) => Comparison::Below,
    }
}

/// How a value that has cleared `l` stands to its clear value.
fn clear_comparison(l: &Level) -> Comparison {
    comparison(
        match l.side {
            Side::High => Side::Low,
            Side::Low => Side::High,
        },
        !l.inclusive,
    )
}

/// What a point's cause says on a transition, and the threshold it names.
pub(super) fn binding_text(
    rule: &Rule,
    b: &Binding,
    p: &PointSt,
    warnings: &[ActiveWarning],
    missing_factor: f64,
    kind: TransitionKind,
    open: Open,
) -> (Option<f64>, Message) {
    let spec = p.spec.as_deref();
    let point = PointTerms::of(&p.id, spec);
    let value = p.value;
    let cleared = kind == TransitionKind::Cleared;
    match &rule.kind {
        Kind::Threshold { levels, .. } => {
            let l = &levels[open.level as usize];
            let (raise, clear) = level_values(rule, open.level as usize, l, warnings, spec)
                .unwrap_or((l.raise, l.clear));
            let (phase, comparison, label, level) = match kind {
                TransitionKind::Cleared => (
                    LevelPhase::Cleared,
                    clear_comparison(l),
                    &l.clear_label,
                    clear,
                ),
                TransitionKind::Deescalated => (
                    LevelPhase::StillPast,
                    comparison(l.side, l.inclusive),
                    &l.label,
                    raise,
                ),
                _ => (
                    LevelPhase::Crossed,
                    comparison(l.side, l.inclusive),
                    &l.label,
                    raise,
                ),
            };
            let message = Message::Level {
                point,
                value,
                phase,
                comparison,
                label: label.clone(),
                level,
            };
            (Some(level), message)
        }
        Kind::Rate { window_ms, .. } => {
            let by = (!cleared).then_some(open.threshold);
            let message = Message::Rate {
                point,
                value,
                fell: open.level != 0,
                by,
                window_ms: *window_ms,
            };
            (by, message)
        }
        Kind::SensorFault { .. } => {
            let why = match b.extra {
                Extra::Fault {
                    why: FaultWhy::OutOfRange,
                    ..
                } => FaultCause::OutOfRange {
                    range: spec.and_then(|s| s.range),
                },
                Extra::Fault {
                    why: FaultWhy::Stuck,
                    stuck_value,
                    ..
                } => FaultCause::Stuck { value: stuck_value },
                _ => FaultCause::QualityBad,
            };
            let message = Message::SensorFault {
                point,
                value,
                why,
                cleared,
            };
            (None, message)
        }
        Kind::MissingData { .. } => {
            let limit_ms = missing_limit(rule, p, missing_factor).unwrap_or(0).max(0) as u64;
            let message = Message::MissingData {
                point,
                limit_ms,
                cleared,
            };
            (None, message)
        }
        Kind::State {
            label,
            max_duration_ms,
            escalate_to,
            repeats,
            ..
        } => {
            let often = matches!(b.extra, Extra::Active { often: true, .. });
            let too_often = repeats.filter(|_| often && !cleared).map(|r| TooOften {
                max_starts: r.max_starts,
                window_ms: r.window_ms,
            });
            let longer = kind == TransitionKind::Escalated
                && open.severity >= *escalate_to
                && too_often.is_none();
            let message = Message::State {
                point,
                label: label.clone(),
                longer_than_ms: max_duration_ms.filter(|_| longer),
                too_often,
                cleared,
            };
            (None, message)
        }
        Kind::Geofence(g) => {
            let message = Message::State {
                point,
                label: g.label.clone(),
                longer_than_ms: g.dwell_ms,
                too_often: None,
                cleared,
            };
            (None, message)
        }
        Kind::DrivingTime(d) => {
            let (label, max) = match open.level {
                0 => (&d.label, d.max_continuous_ms),
                _ => (&d.window_label, d.max_in_window_ms),
            };
            let message = Message::State {
                point,
                label: label.clone(),
                longer_than_ms: max,
                too_often: None,
                cleared,
            };
            (max.map(|m| m as f64), message)
        }
        _ => (None, Message::Nothing),
    }
}

fn condition(c: &PointCondition) -> Condition {
    match c {
        PointCondition::Above(x) => Condition::AtLeast { value: *x },
        PointCondition::Below(x) => Condition::Below { value: *x },
        PointCondition::Equals(b) => Condition::Equals { value: *b },
        PointCondition::Cause { rule, min_severity } => Condition::Cause {
            rule: rule.as_str().to_string(),
            min_severity: *min_severity,
        },
        PointCondition::BelowLimit(k) => Condition::BelowLimit { limit: *k },
        PointCondition::Present => Condition::Present,
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
) -> Message {
    let zone = z.zone.clone();
    let rule = rule.id.clone();
    match (kind, mode) {
        (TransitionKind::Cleared, _) => Message::ZoneCleared { zone, rule },
        (_, Mode::AThenNotB) => Message::ZoneNotProven {
            zone,
            proof: condition(&members[1].condition),
            within_ms,
            trigger: tp.map(|p| (p.id.clone(), condition(&members[0].condition))),
            still_not: z.members[1]
                .iter()
                .map(|&p| points[p as usize].id.clone())
                .collect(),
        },
        (_, Mode::AWithoutB) => Message::ZoneUnequipped {
            zone,
            rule,
            points: z.members[0]
                .iter()
                .map(|&p| points[p as usize].id.clone())
                .collect(),
            missing: members[1]
                .select
                .quantity
                .iter()
                .map(|q| Quantity::parse(q))
                .collect(),
        },
        (_, Mode::All) => Message::ZoneAll { zone, rule },
        (_, Mode::Any) => Message::ZoneAny {
            zone,
            rule,
            point: tp.map(|p| p.id.clone()),
        },
    }
}

/// What a site-level cause says on a transition; `matching`: the warnings that call for it.
pub(super) fn site_text(label: &str, kind: TransitionKind, matching: &[&ActiveWarning]) -> Message {
    let cleared = kind == TransitionKind::Cleared;
    let warnings = if cleared {
        Vec::new()
    } else {
        matching
            .iter()
            .map(|w| WarningTerms {
                id: w.id.clone(),
                kind: w.kind.clone(),
                level: w.level,
                magnitude: w.magnitude,
            })
            .collect()
    };
    Message::Warning {
        label: label.to_string(),
        warnings,
        cleared,
    }
}

/// What an agent's communication cause says on a transition.
pub(super) fn agent_text(agent: &AgentId, kind: TransitionKind) -> Message {
    Message::Agent {
        agent: agent.clone(),
        online: kind == TransitionKind::Cleared,
    }
}

#[cfg(test)]
mod tests {
    use super::{clear_comparison, comparison};
    use crate::message::Comparison;
    use crate::rule::{Level, Side};
    use telemetry::Severity;

    #[test]
    fn a_cleared_level_reads_the_other_way_round() {
        for (side, inclusive, raise, clear) in [
            (Side::High, true, Comparison::AtLeast, Comparison::Below),
            (Side::High, false, Comparison::Above, Comparison::AtMost),
            (Side::Low, true, Comparison::AtMost, Comparison::Above),
            (Side::Low, false, Comparison::Below, Comparison::AtLeast),
        ] {
            let l = Level {
                side,
                severity: Severity::Alarm,
                raise: 1.0,
                clear: 0.8,
                inclusive,
                label: String::new(),
                clear_label: String::new(),
                limit: None,
            };
            assert_eq!(comparison(l.side, l.inclusive), raise);
            assert_eq!(clear_comparison(&l), clear);
        }
    }
}
