//! Golden tests of every row of the methane table: below, at and past each level, and back.

mod common;
use alarm_rules::{RuleSet, Subject, TransitionKind};
use common::*;
use telemetry::Severity;

#[test]
fn every_methane_row_below_at_past_and_back() {
    let rows = methane_rows();
    assert_eq!(rows.len(), 11);
    let set = RuleSet::builtin();
    for row in rows {
        let rule = format!("coal.ch4.{}", row.location);
        assert!(set.version(&rule).is_some(), "no rule {rule}");
        let mut e = coal(vec![ch4("CH4-1", &row.location)]);
        let mut s = 0;
        let mut next = || {
            s += 10;
            at(s)
        };
        let ctx = |what: &str| format!("{rule}: {what}");
        // Below the alarm level: nothing.
        assert!(
            num(&mut e, "CH4-1", next(), row.alarm - 0.01).is_empty(),
            "{}",
            ctx("below alarm")
        );
        // At the alarm level: raised once, at critical where alarm == power-off.
        let out = num(&mut e, "CH4-1", next(), row.alarm);
        let first = if row.power_off == Some(row.alarm) {
            Severity::Critical
        } else {
            Severity::Alarm
        };
        assert_eq!(
            kinds(&out),
            vec![(rule.clone(), TransitionKind::Raised, first)],
            "{}",
            ctx("at alarm")
        );
        assert_eq!(out[0].threshold, Some(row.alarm), "{}", ctx("threshold"));
        assert_eq!(
            out[0].cause.subject,
            Subject::Point {
                point: pid("CH4-1")
            }
        );
        // Again at the alarm level: no second raise.
        assert!(
            num(&mut e, "CH4-1", next(), row.alarm).is_empty(),
            "{}",
            ctx("again")
        );
        let mut top = first;
        if let Some(po) = row.power_off {
            if po > row.alarm {
                // Between alarm and power-off: nothing new.
                assert!(
                    num(&mut e, "CH4-1", next(), (row.alarm + po) / 2.0).is_empty(),
                    "{}",
                    ctx("between")
                );
                let out = num(&mut e, "CH4-1", next(), po);
                assert_eq!(
                    kinds(&out),
                    vec![(rule.clone(), TransitionKind::Escalated, Severity::Critical)],
                    "{}",
                    ctx("at power-off")
                );
                assert_eq!(out[0].threshold, Some(po));
                assert!(
                    text(&out[0]).contains("power-off level"),
                    "{}",
                    text(&out[0])
                );
                top = Severity::Critical;
            }
        }
        // Far past every level: nothing new.
        assert!(
            num(&mut e, "CH4-1", next(), row.alarm + 2.0).is_empty(),
            "{}",
            ctx("past")
        );
        // Back to the restore level (or the alarm level without one): still standing.
        let clear = row.restore.unwrap_or(row.alarm);
        assert!(
            num(&mut e, "CH4-1", next(), clear).is_empty(),
            "{}",
            ctx("at restore")
        );
        // Below it: cleared, with the severity it had.
        let out = num(&mut e, "CH4-1", next(), clear - 0.01);
        assert_eq!(
            kinds(&out),
            vec![(rule.clone(), TransitionKind::Cleared, top)],
            "{}",
            ctx("below restore")
        );
        assert_eq!(out[0].threshold, Some(clear));
        assert!(
            num(&mut e, "CH4-1", next(), clear - 0.01).is_empty(),
            "{}",
            ctx("stays clear")
        );
        assert!(e.open_causes().is_empty());
        // And up again is a new raise.
        let out = num(&mut e, "CH4-1", next(), row.alarm);
        assert_eq!(out.len(), 1, "{}", ctx("raise again"));
        assert_eq!(out[0].kind, TransitionKind::Raised);
    }
}

#[test]
fn crossing_several_levels_at_once_raises_once_at_the_highest() {
    let mut e = coal(vec![ch4("CH4-101", "working_face")]);
    assert!(num(&mut e, "CH4-101", at(0), 0.42).is_empty());
    let out = num(&mut e, "CH4-101", at(10), 1.62);
    assert_eq!(out.len(), 1);
    let t = &out[0];
    assert_eq!(
        (t.kind, t.severity, t.threshold),
        (TransitionKind::Raised, Severity::Critical, Some(1.5))
    );
    assert_eq!(
        text(t),
        "CH4 1.62 % >= power-off level 1.5 % at working face"
    );
    assert_eq!(t.value, Some(telemetry::Value::Number(1.62)));
    assert_eq!(t.at, at(10));
    assert_eq!(
        t.rule_version,
        RuleSet::builtin().version("coal.ch4.working_face").unwrap()
    );
    // Values between restore and power-off hold the critical state (power stays cut).
    assert!(num(&mut e, "CH4-101", at(20), 1.2).is_empty());
    let out = num(&mut e, "CH4-101", at(30), 0.9);
    assert_eq!(out[0].kind, TransitionKind::Cleared);
    assert_eq!(
        text(&out[0]),
        "CH4 0.9 % < restore level 1.0 % at working face: cleared"
    );
}

#[test]
fn the_pack_matches_the_table() {
    let set = RuleSet::builtin();
    for row in methane_rows() {
        let canon = set
            .canonical(&format!("coal.ch4.{}", row.location))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&canon).unwrap();
        let levels = v["levels"].as_array().unwrap();
        assert_eq!(
            levels[0]["raise"].as_f64(),
            Some(row.alarm),
            "{}",
            row.location
        );
        assert_eq!(
            levels[0]["clear"].as_f64(),
            Some(row.restore.unwrap_or(row.alarm))
        );
        match row.power_off {
            Some(po) => {
                assert_eq!(levels.len(), 2);
                assert_eq!(levels[1]["raise"].as_f64(), Some(po));
                assert_eq!(levels[1]["severity"], "critical");
            }
            None => assert_eq!(levels.len(), 1),
        }
    }
}

/// The message as people read it, in English (the language these tests pin).
fn text(t: &alarm_rules::Transition) -> String {
    presentation::message_text(&t.message, presentation::Language::En)
}
