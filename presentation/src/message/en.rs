//! Messages in English, e.g. "CH4 1.62 % >= power-off level 1.5 % at working face".

use super::{joined, limit_name, measured, seconds};
use crate::number::num;
use crate::words::warning_level_word;
use crate::Language;
use alarm_rules::{Comparison, Condition, FaultCause, LevelPhase, Message, PointTerms};
use telemetry::{Quantity, Value};

/// The text of a transition's message in English.
pub(super) fn text(m: &Message) -> String {
    match m {
        Message::Level {
            point,
            value,
            phase,
            comparison,
            label,
            level,
        } => {
            let (q, v, u, place) = terms(point, value);
            let (op, l) = (op(*comparison), num(*level));
            match phase {
                LevelPhase::Crossed => format!("{q} {v}{u} {op} {label} {l}{u} {place}"),
                LevelPhase::StillPast => {
                    format!(
                        "{q} {v}{u} back under a higher level, still {op} {label} {l}{u} {place}"
                    )
                }
                LevelPhase::Cleared => format!("{q} {v}{u} {op} {label} {l}{u} {place}: cleared"),
            }
        }
        Message::Rate {
            point,
            value,
            fell,
            by,
            window_ms,
        } => {
            let (q, v, u, place) = terms(point, value);
            match by {
                None => format!("{q} {v}{u} {place}: rate of change back to normal: cleared"),
                Some(by) => format!(
                    "{q} {} by {} {u} or more within {} s, now {v}{u} {place}",
                    if *fell { "fell" } else { "rose" },
                    num(*by),
                    seconds(*window_ms)
                ),
            }
        }
        Message::SensorFault {
            point,
            value,
            why,
            cleared,
        } => {
            let (q, v, u, place) = terms(point, value);
            if *cleared {
                return format!("sensor of {q} {place} reads normally again: cleared");
            }
            let why = match why {
                FaultCause::OutOfRange { range } => {
                    let [lo, hi] = range.unwrap_or([f64::NAN, f64::NAN]);
                    format!("value {v}{u} outside the range {}..{}", num(lo), num(hi))
                }
                FaultCause::Stuck { value } => format!("value stuck at {}{u}", num(*value)),
                FaultCause::QualityBad => "quality bad".to_string(),
            };
            format!("sensor fault of {q} {place}: {why}")
        }
        Message::MissingData {
            point,
            limit_ms,
            cleared,
        } => {
            let (q, place) = (quantity_label(point), place(point));
            if *cleared {
                format!("data from {q} {place} again: cleared")
            } else {
                format!("no data from {q} {place} for over {} s", seconds(*limit_ms))
            }
        }
        Message::State {
            point,
            label,
            longer_than_ms,
            too_often,
            cleared,
        } => {
            let (q, place) = (quantity_label(point), place(point));
            match (cleared, longer_than_ms, too_often) {
                (true, _, _) => format!("{q} {place} no longer {label}: cleared"),
                (false, _, Some(o)) => format!(
                    "{q} {place} {label}: more than {} times within {} s",
                    o.max_starts,
                    seconds(o.window_ms)
                ),
                (false, Some(ms), None) => {
                    format!("{q} {place} {label} for longer than {} s", seconds(*ms))
                }
                (false, None, None) => format!("{q} {place} {label}"),
            }
        }
        Message::ZoneCleared { zone, rule } => {
            format!("zone {zone}: condition of {rule} no longer holds: cleared")
        }
        Message::ZoneAll { zone, rule } => format!("zone {zone}: all conditions of {rule} hold"),
        Message::ZoneAny { zone, rule, point } => format!(
            "zone {zone}: a condition of {rule} holds ({})",
            point.as_ref().map(|p| p.as_str()).unwrap_or("")
        ),
        Message::ZoneNotProven {
            zone,
            proof,
            within_ms,
            trigger,
            still_not,
        } => {
            let still_not: Vec<&str> = still_not.iter().map(|p| p.as_str()).collect();
            format!(
                "zone {zone}: {} not proven within {} s after {} (still not: {})",
                condition(proof),
                seconds(*within_ms),
                trigger
                    .as_ref()
                    .map(|(p, c)| format!("{p} {}", condition(c)))
                    .unwrap_or_default(),
                still_not.join(", ")
            )
        }
        Message::ZoneUnequipped {
            zone,
            points,
            missing,
            ..
        } => format!(
            "zone {zone}: no {} point beside {}: configuration incomplete, its power cannot be proven cut",
            joined(missing, |q| q.as_str().replace('_', " "), " or "),
            joined(points, |p| p.to_string(), ", ")
        ),
        Message::Warning {
            label,
            warnings,
            cleared,
        } => {
            if *cleared {
                return format!(
                    "{label}: the warning that called for it is no longer in force: cleared"
                );
            }
            let what: Vec<String> = warnings
                .iter()
                .map(|w| {
                    let kind = w.kind.replace('_', " ");
                    match w.magnitude {
                        Some(m) => format!("{kind} M{} ({})", num(m), w.id),
                        None => format!(
                            "{kind} {} ({})",
                            warning_level_word(w.level, Language::En),
                            w.id
                        ),
                    }
                })
                .collect();
            format!("{label}: {}", what.join(", "))
        }
        Message::Agent { agent, online } => {
            if *online {
                format!("agent {agent} online again: cleared")
            } else {
                format!("agent {agent} offline: communication lost")
            }
        }
        Message::RuleGone {
            rule,
            maybe_removed,
        } => {
            if *maybe_removed {
                format!("rule {rule} removed or no longer applies: cleared")
            } else {
                format!("rule {rule} no longer applies: cleared")
            }
        }
        Message::Nothing => String::new(),
    }
}

/// The quantity, the value, the unit (with its leading space) and the place of a point.
fn terms(p: &PointTerms, v: &Value) -> (String, String, String, String) {
    let (v, u) = measured(p, v);
    (quantity_label(p), v, u, place(p))
}

/// How a point's quantity is named: gases in capitals (`CH4`, `H2S`), others as words.
fn quantity_label(p: &PointTerms) -> String {
    let Some(quantity) = &p.quantity else {
        return p.point.to_string();
    };
    let gas = p.gas.as_deref().map(|g| g.to_ascii_uppercase());
    match (quantity, gas) {
        (Quantity::Lel, Some(g)) => format!("{g} LEL"),
        (Quantity::Lel, None) => "LEL".to_string(),
        (Quantity::FanRunning, _) => "fan".to_string(),
        (Quantity::Toxic, Some(g)) => g,
        (Quantity::Toxic, None) => "toxic gas".to_string(),
        (Quantity::Ch4 | Quantity::Co | Quantity::O2 | Quantity::Co2 | Quantity::H2s, _) => {
            quantity.as_str().to_ascii_uppercase()
        }
        (q, _) => q.as_str().replace('_', " "),
    }
}

/// Where: "at working face", or "at point CH4-101" where no location is known.
fn place(p: &PointTerms) -> String {
    match &p.location {
        Some(l) => format!("at {}", l.replace('_', " ")),
        None => format!("at point {}{}", p.point, vehicle(p)),
    }
}

/// A vehicle's plate and driver: " (豫E12345, driver 张三)", or nothing.
fn vehicle(p: &PointTerms) -> String {
    let driver = p.driver.as_ref().map(|d| format!("driver {d}"));
    let parts: Vec<String> = p.plate.iter().cloned().chain(driver).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn op(c: Comparison) -> &'static str {
    match c {
        Comparison::AtLeast => ">=",
        Comparison::Above => ">",
        Comparison::AtMost => "<=",
        Comparison::Below => "<",
    }
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::AtLeast { value } => format!(">= {}", num(*value)),
        Condition::Below { value } => format!("< {}", num(*value)),
        Condition::Equals { value } => value.to_string(),
        Condition::Cause { rule, min_severity } => format!("at {min_severity} under {rule}"),
        Condition::BelowLimit { limit } => format!("< its {} setting", limit_name(*limit)),
        Condition::Present => "present".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_rules::WarningTerms;
    use telemetry::{AgentId, PointId, Unit, WarningLevel};

    fn point(quantity: Quantity, gas: Option<&str>, location: Option<&str>) -> PointTerms {
        PointTerms {
            point: PointId::new("P-1").unwrap(),
            quantity: Some(quantity),
            gas: gas.map(str::to_string),
            unit: Some(Unit::Ppm),
            location: location.map(str::to_string),
            plate: None,
            driver: None,
        }
    }

    #[test]
    fn quantities_are_named_as_people_write_them() {
        let cases = [
            (point(Quantity::Lel, Some("h2"), None), "H2 LEL"),
            (point(Quantity::Lel, None, None), "LEL"),
            (point(Quantity::Toxic, Some("nh3"), None), "NH3"),
            (point(Quantity::Toxic, None, None), "toxic gas"),
            (point(Quantity::H2s, None, None), "H2S"),
            (point(Quantity::WaterLevel, None, None), "water level"),
        ];
        for (p, want) in cases {
            assert_eq!(quantity_label(&p), want);
        }
        let unknown = PointTerms {
            quantity: None,
            ..point(Quantity::Co, None, None)
        };
        assert_eq!(quantity_label(&unknown), "P-1");
    }

    #[test]
    fn a_rate_a_fault_and_a_state() {
        let p = point(Quantity::Co, None, Some("return_airway"));
        let rate = Message::Rate {
            point: p.clone(),
            value: Value::Number(30.0),
            fell: false,
            by: Some(10.0),
            window_ms: 60_000,
        };
        assert_eq!(
            text(&rate),
            "CO rose by 10.0  ppm or more within 60.0 s, now 30.0 ppm at return airway"
        );
        let fault = Message::SensorFault {
            point: p.clone(),
            value: Value::Number(-3.0),
            why: FaultCause::OutOfRange {
                range: Some([0.0, 1000.0]),
            },
            cleared: false,
        };
        assert_eq!(
            text(&fault),
            "sensor fault of CO at return airway: value -3.0 ppm outside the range 0.0..1000.0"
        );
        let state = Message::State {
            point: p,
            label: "bypassed".into(),
            longer_than_ms: Some(1_800_000),
            too_often: None,
            cleared: false,
        };
        assert_eq!(
            text(&state),
            "CO at return airway bypassed for longer than 1800.0 s"
        );
    }

    #[test]
    fn warnings_agents_and_rules() {
        let w = Message::Warning {
            label: "stop open-pit work".into(),
            warnings: vec![
                WarningTerms {
                    id: "w1".into(),
                    kind: "heavy_rain".into(),
                    level: WarningLevel::Orange,
                    magnitude: None,
                },
                WarningTerms {
                    id: "eq1".into(),
                    kind: "earthquake".into(),
                    level: WarningLevel::Red,
                    magnitude: Some(5.5),
                },
            ],
            cleared: false,
        };
        assert_eq!(
            text(&w),
            "stop open-pit work: heavy rain orange (w1), earthquake M5.5 (eq1)"
        );
        let a = Message::Agent {
            agent: AgentId::new("edge-1").unwrap(),
            online: false,
        };
        assert_eq!(text(&a), "agent edge-1 offline: communication lost");
        let r = Message::RuleGone {
            rule: "coal.ch4".into(),
            maybe_removed: true,
        };
        assert_eq!(
            text(&r),
            "rule coal.ch4 removed or no longer applies: cleared"
        );
    }

    #[test]
    fn a_vehicle_by_its_plate_and_driver_and_its_speed() {
        let v = PointTerms {
            point: PointId::new("V13800000001").unwrap(),
            quantity: Some(Quantity::Position),
            gas: None,
            unit: None,
            location: None,
            plate: Some("豫E12345".into()),
            driver: Some("张三".into()),
        };
        let fatigue = Message::State {
            point: v.clone(),
            label: "continuous driving without rest".into(),
            longer_than_ms: Some(14_400_000),
            too_often: None,
            cleared: false,
        };
        let over = Message::Level {
            point: v,
            value: Value::Position(telemetry::Position {
                lat: 34.7,
                lon: 113.6,
                speed_kmh: Some(86.0),
                heading: None,
                alt_m: None,
            }),
            phase: LevelPhase::Crossed,
            comparison: Comparison::Above,
            label: "expressway limit".into(),
            level: 80.0,
        };
        assert_eq!([text(&fatigue), text(&over)], [
                "position at point V13800000001 (豫E12345, driver 张三) continuous driving without rest for longer than 14400.0 s",
                "position 86.0 km/h > expressway limit 80.0 km/h at point V13800000001 (豫E12345, driver 张三)"
            ]);
    }
}
