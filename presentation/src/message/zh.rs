//! Messages in Chinese, as a duty officer reads them: "工作面甲烷 1.62 %，达到断电浓度 1.5 %".

use super::{joined, limit_name, measured, seconds};
use crate::number::num;
use crate::words::{label_word, place_word, quantity_zh, warning_kind_word, warning_level_word};
use crate::Language;
use alarm_rules::{Comparison, Condition, FaultCause, LevelPhase, Message, PointTerms};
use telemetry::{Quantity, Value};

const ZH: Language = Language::ZhCn;

/// The text of a transition's message in Chinese.
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
            let (what, v, u) = terms(point, value);
            let (op, label, l) = (verb(*comparison), label_word(label, ZH), num(*level));
            match phase {
                LevelPhase::Crossed => format!("{what} {v}{u}，{op}{label} {l}{u}"),
                LevelPhase::StillPast => {
                    format!("{what} {v}{u}，已回落至较高等级以下，仍{op}{label} {l}{u}")
                }
                LevelPhase::Cleared => format!("{what} {v}{u}，{op}{label} {l}{u}，已恢复"),
            }
        }
        Message::Rate {
            point,
            value,
            fell,
            by,
            window_ms,
        } => {
            let (what, v, u) = terms(point, value);
            match by {
                None => format!("{what} {v}{u}，变化速率恢复正常，已恢复"),
                Some(by) => format!(
                    "{what} {} 秒内{} {}{u} 以上，当前 {v}{u}",
                    seconds(*window_ms),
                    if *fell { "下降" } else { "上升" },
                    num(*by)
                ),
            }
        }
        Message::SensorFault {
            point,
            value,
            why,
            cleared,
        } => {
            let (what, v, u) = terms(point, value);
            if *cleared {
                return format!("{what}传感器恢复正常，已恢复");
            }
            let why = match why {
                FaultCause::OutOfRange { range } => {
                    let [lo, hi] = range.unwrap_or([f64::NAN, f64::NAN]);
                    format!("数值 {v}{u} 超出量程 {}..{}", num(lo), num(hi))
                }
                FaultCause::Stuck { value } => format!("数值长时间停滞于 {}{u}", num(*value)),
                FaultCause::QualityBad => "数据质量为坏".to_string(),
            };
            format!("{what}传感器故障：{why}")
        }
        Message::MissingData {
            point,
            limit_ms,
            cleared,
        } => {
            let what = subject(point);
            if *cleared {
                format!("{what}数据恢复上传，已恢复")
            } else {
                format!("{what}超过 {} 秒无数据", seconds(*limit_ms))
            }
        }
        Message::State {
            point,
            label,
            longer_than_ms,
            too_often,
            cleared,
        } => {
            let (what, label) = (subject(point), label_word(label, ZH));
            match (cleared, longer_than_ms, too_often) {
                (true, _, _) => format!("{what}不再{label}，已恢复"),
                (false, _, Some(o)) => format!(
                    "{what}{label}：{} 秒内超过 {} 次",
                    seconds(o.window_ms),
                    o.max_starts
                ),
                (false, Some(ms), None) => format!("{what}{label}超过 {} 秒", seconds(*ms)),
                (false, None, None) => format!("{what}{label}"),
            }
        }
        Message::ZoneCleared { zone, rule } => {
            format!("区域 {zone}：规则 {rule} 的条件不再成立，已恢复")
        }
        Message::ZoneAll { zone, rule } => format!("区域 {zone}：规则 {rule} 的全部条件成立"),
        Message::ZoneAny { zone, rule, point } => format!(
            "区域 {zone}：规则 {rule} 的条件成立（{}）",
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
                "区域 {zone}：{}后 {} 秒内未证实 {}（仍未满足：{}）",
                trigger
                    .as_ref()
                    .map(|(p, c)| format!("{p} {}", condition(c)))
                    .unwrap_or_default(),
                seconds(*within_ms),
                condition(proof),
                still_not.join("、")
            )
        }
        Message::ZoneUnequipped {
            zone,
            rule,
            points,
            missing,
        } => {
            let missing = joined(
                missing,
                |q| quantity_zh(q).map_or_else(|| q.as_str().replace('_', " "), str::to_string),
                "或",
            );
            let points = joined(points, |p| p.to_string(), "、");
            format!("区域 {zone}：{points} 旁无{missing}测点（规则 {rule} 无法校验），配置不完整")
        }
        Message::Warning {
            label,
            warnings,
            cleared,
        } => {
            let label = label_word(label, ZH);
            if *cleared {
                return format!("{label}：触发它的预警已解除，已恢复");
            }
            let what: Vec<String> = warnings
                .iter()
                .map(|w| {
                    let kind = warning_kind_word(&w.kind, ZH);
                    match w.magnitude {
                        Some(m) => format!("{kind} {} 级（{}）", num(m), w.id),
                        None => {
                            format!("{kind}{}预警（{}）", warning_level_word(w.level, ZH), w.id)
                        }
                    }
                })
                .collect();
            format!("{label}：{}", what.join("、"))
        }
        Message::Agent { agent, online } => {
            if *online {
                format!("采集终端 {agent} 恢复在线，已恢复")
            } else {
                format!("采集终端 {agent} 离线：通信中断")
            }
        }
        Message::RuleGone {
            rule,
            maybe_removed,
        } => {
            if *maybe_removed {
                format!("规则 {rule} 已删除或不再适用，已恢复")
            } else {
                format!("规则 {rule} 不再适用，已恢复")
            }
        }
        Message::Nothing => String::new(),
    }
}

/// Where and what: "工作面甲烷", "测点 CH4-101 甲烷", or the point where nothing is known.
fn subject(p: &PointTerms) -> String {
    let what = quantity(p);
    match &p.location {
        Some(l) => format!("{}{what}", place_word(l, ZH)),
        None if p.plate.is_some() || p.driver.is_some() => {
            format!("车辆 {}{} {what}", p.point, vehicle(p))
        }
        None if p.quantity.is_some() => format!("测点 {} {what}", p.point),
        None => format!("测点 {}", p.point),
    }
}

/// A vehicle's plate and driver: "（豫E12345，驾驶员 张三）", or nothing.
fn vehicle(p: &PointTerms) -> String {
    let driver = p.driver.as_ref().map(|d| format!("驾驶员 {d}"));
    let parts: Vec<String> = p.plate.iter().cloned().chain(driver).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("（{}）", parts.join("，"))
    }
}

/// The subject, the value and the unit (with its leading space; none for booleans).
fn terms(p: &PointTerms, v: &Value) -> (String, String, String) {
    let (v, unit) = match v {
        Value::Bool(true) => ("是".to_string(), String::new()),
        Value::Bool(false) => ("否".to_string(), String::new()),
        v => measured(p, v),
    };
    (subject(p), v, unit)
}

/// A quantity: gases by name ("甲烷"), a named gas of a toxic or combustible point by its
/// formula ("NH3", "H2 可燃气体").
fn quantity(p: &PointTerms) -> String {
    let Some(q) = &p.quantity else {
        return String::new();
    };
    let gas = p.gas.as_deref().map(|g| g.to_ascii_uppercase());
    match (q, gas) {
        (Quantity::Lel, Some(g)) => format!("{g} 可燃气体"),
        (Quantity::Toxic, Some(g)) => g,
        (q, _) => quantity_zh(q)
            .map(str::to_string)
            .unwrap_or_else(|| q.as_str().replace('_', " ")),
    }
}

fn verb(c: Comparison) -> &'static str {
    match c {
        Comparison::AtLeast => "达到",
        Comparison::Above => "超过",
        Comparison::AtMost => "降至",
        Comparison::Below => "低于",
    }
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::AtLeast { value } => format!("≥ {}", num(*value)),
        Condition::Below { value } => format!("< {}", num(*value)),
        Condition::Equals { value: true } => "为是".to_string(),
        Condition::Equals { value: false } => "为否".to_string(),
        Condition::Cause { rule, min_severity } => format!(
            "存在规则 {rule} 的{}及以上告警",
            crate::words::severity_word(*min_severity, ZH)
        ),
        Condition::BelowLimit { limit } => format!("低于其{}设定值", limit_name(*limit)),
        Condition::Present => "存在".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_rules::WarningTerms;
    use telemetry::{AgentId, PointId, Unit, WarningLevel};

    fn ch4(location: Option<&str>) -> PointTerms {
        PointTerms {
            point: PointId::new("CH4-101").unwrap(),
            quantity: Some(Quantity::Ch4),
            gas: None,
            unit: Some(Unit::PercentVol),
            location: location.map(str::to_string),
            plate: None,
            driver: None,
        }
    }

    #[test]
    fn a_methane_level_crossed_and_restored() {
        let crossed = Message::Level {
            point: ch4(Some("working_face")),
            value: Value::Number(1.62),
            phase: LevelPhase::Crossed,
            comparison: Comparison::AtLeast,
            label: "power-off level".into(),
            level: 1.5,
        };
        assert_eq!(text(&crossed), "工作面甲烷 1.62 %，达到断电浓度 1.5 %");
        let cleared = Message::Level {
            point: ch4(None),
            value: Value::Number(0.5),
            phase: LevelPhase::Cleared,
            comparison: Comparison::Below,
            label: "restore level".into(),
            level: 1.0,
        };
        assert_eq!(
            text(&cleared),
            "测点 CH4-101 甲烷 0.5 %，低于复电浓度 1.0 %，已恢复"
        );
    }

    #[test]
    fn warnings_and_agents() {
        let w = Message::Warning {
            label: "post-earthquake inspection of the site required".into(),
            warnings: vec![
                WarningTerms {
                    id: "w1".into(),
                    kind: "rainstorm".into(),
                    level: WarningLevel::Orange,
                    magnitude: None,
                },
                WarningTerms {
                    id: "eq1".into(),
                    kind: "earthquake".into(),
                    level: WarningLevel::Red,
                    magnitude: Some(4.6),
                },
            ],
            cleared: false,
        };
        assert_eq!(
            text(&w),
            "需进行震后现场检查：暴雨橙色预警（w1）、地震 4.6 级（eq1）"
        );
        let a = Message::Agent {
            agent: AgentId::new("edge-1").unwrap(),
            online: false,
        };
        assert_eq!(text(&a), "采集终端 edge-1 离线：通信中断");
    }

    #[test]
    fn a_zone_without_its_feed_sensor_and_a_bypass_too_often() {
        let m = Message::ZoneUnequipped {
            zone: "1202".into(),
            rule: "coal.ch4.zone_without_power_cut".into(),
            points: vec![PointId::new("CH4-201").unwrap()],
            missing: vec![Quantity::PowerCut],
        };
        assert_eq!(
            text(&m),
            "区域 1202：CH4-201 旁无断电测点（规则 coal.ch4.zone_without_power_cut 无法校验），配置不完整"
        );
        let bypass = PointTerms {
            point: PointId::new("IL-P").unwrap(),
            quantity: Some(Quantity::InterlockBypass),
            gas: None,
            unit: Some(Unit::Bool),
            location: Some("reactor".into()),
            plate: None,
            driver: None,
        };
        let m = Message::State {
            point: bypass,
            label: "bypassed (key regulated process)".into(),
            longer_than_ms: None,
            too_often: Some(alarm_rules::TooOften {
                max_starts: 2,
                window_ms: 86_400_000,
            }),
            cleared: false,
        };
        assert_eq!(
            text(&m),
            "反应釜联锁旁路处于旁路（重点监管危险化工工艺联锁）：86400.0 秒内超过 2 次"
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
                "车辆 V13800000001（豫E12345，驾驶员 张三） 位置连续驾驶未休息超过 14400.0 秒",
                "车辆 V13800000001（豫E12345，驾驶员 张三） 位置 86.0 km/h，超过高速公路限速 80.0 km/h"
            ]);
    }
}
