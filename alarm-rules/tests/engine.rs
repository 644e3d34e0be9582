//! Behaviour of the engine: quality, ordering, timers, state, composites, warnings, reloads,
//! restarts.

mod common;
use alarm_rules::{
    ActiveWarning, Cause, Engine, EngineConfig, RuleSet, SiteContext, Subject, TransitionKind,
    WarningLevel,
};
use common::*;
use telemetry::{AgentState, Category, Quality, Severity, Value};

#[test]
fn bad_and_calibration_never_raise_nor_clear_uncertain_is_judged() {
    let mut e = coal(vec![ch4("CH4-1", "working_face")]);
    // Bad quality with a high value: no threshold incident (a sensor fault instead).
    let out = feed(
        &mut e,
        &reading_q("CH4-1", at(0), Value::Number(3.0), Quality::Bad),
    );
    assert_eq!(
        kinds(&out),
        vec![(
            "sensor.fault".into(),
            TransitionKind::Raised,
            Severity::Warning
        )]
    );
    let out = feed(
        &mut e,
        &reading_q("CH4-1", at(10), Value::Number(3.0), Quality::Calibration),
    );
    assert!(out.is_empty(), "{out:?}");
    // Uncertain is judged like good, and the transition says so.
    let out = feed(
        &mut e,
        &reading_q("CH4-1", at(20), Value::Number(1.1), Quality::Uncertain),
    );
    let th: Vec<_> = out
        .iter()
        .filter(|t| t.cause.rule == "coal.ch4.working_face")
        .collect();
    assert_eq!(th.len(), 1);
    assert_eq!(
        (th[0].kind, th[0].quality),
        (TransitionKind::Raised, Quality::Uncertain)
    );
    // A bad reading below restore does not clear it.
    let out = feed(
        &mut e,
        &reading_q("CH4-1", at(30), Value::Number(0.1), Quality::Bad),
    );
    assert!(
        out.iter().all(|t| t.cause.rule != "coal.ch4.working_face"),
        "{out:?}"
    );
    let out = feed(
        &mut e,
        &reading_q("CH4-1", at(40), Value::Number(0.1), Quality::Calibration),
    );
    assert!(
        out.iter().all(|t| t.cause.rule != "coal.ch4.working_face"),
        "{out:?}"
    );
    // A good one does.
    let out = num(&mut e, "CH4-1", at(50), 0.1);
    assert!(
        out.iter()
            .any(|t| t.cause.rule == "coal.ch4.working_face" && t.kind == TransitionKind::Cleared),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|t| t.cause.rule == "sensor.fault" && t.kind == TransitionKind::Cleared),
        "{out:?}"
    );
}

#[test]
fn out_of_order_and_replayed_readings_are_not_judged_again() {
    let mut e = coal(vec![ch4("CH4-1", "working_face")]);
    assert_eq!(num(&mut e, "CH4-1", at(10), 1.2).len(), 1);
    assert!(num(&mut e, "CH4-1", at(10), 1.2).is_empty(), "duplicate");
    assert!(
        num(&mut e, "CH4-1", at(5), 0.2).is_empty(),
        "older reading must not clear"
    );
    assert!(
        num(&mut e, "CH4-1", at(5), 1.7).is_empty(),
        "older reading must not escalate"
    );
    assert_eq!(e.open_causes().len(), 1);
}

#[test]
fn late_readings_are_judged_and_marked() {
    let mut e = coal(vec![ch4("CH4-1", "working_face")]);
    let mut out = Vec::new();
    e.on_reading(
        &site(),
        &agent(),
        &reading("CH4-1", at(0), 1.2),
        at(61),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].late);
    assert_eq!(out[0].at, at(0));
    let mut out = Vec::new();
    e.on_reading(
        &site(),
        &agent(),
        &reading("CH4-1", at(100), 0.2),
        at(130),
        &mut out,
    );
    assert!(!out[0].late);
}

#[test]
fn readings_of_unknown_points_only_meet_catalogue_free_rules() {
    let set = rules(
        r#"
[[rule]]
id = "t.ch4"
kind = "threshold"
select = { quantity = "ch4" }
high = [{ severity = "alarm", raise = 1.0 }]

[[rule]]
id = "t.missing"
kind = "missing_data"
default_interval_ms = 1000
"#,
    );
    let mut e = Engine::new(set, EngineConfig::default());
    assert!(num(&mut e, "X-1", at(0), 5.0).is_empty());
    assert_eq!(e.next_deadline(), Some(at(3)));
    assert!(tick(&mut e, at_ms(2999)).is_empty());
    let out = tick(&mut e, at(3));
    assert_eq!(
        kinds(&out),
        vec![(
            "t.missing".into(),
            TransitionKind::Raised,
            Severity::Warning
        )]
    );
    assert_eq!(out[0].at, at(3));
    // A birth names it: the threshold rule applies now, on the latest value.
    let mut out = Vec::new();
    e.set_catalogue(
        &site(),
        &catalogue(vec![ch4("X-1", "working_face")]),
        at(4),
        &mut out,
    );
    assert_eq!(
        kinds(&out),
        vec![("t.ch4".into(), TransitionKind::Raised, Severity::Alarm)]
    );
    // Data again clears the missing-data cause.
    let out = num(&mut e, "X-1", at(5), 5.0);
    assert_eq!(
        kinds(&out),
        vec![(
            "t.missing".into(),
            TransitionKind::Cleared,
            Severity::Warning
        )]
    );
}

#[test]
fn missing_data_and_agent_offline() {
    let mut p = ch4("CH4-1", "working_face");
    p.interval_ms = Some(10_000);
    let mut e = coal(vec![p]);
    assert!(num(&mut e, "CH4-1", at(0), 0.2).is_empty());
    assert_eq!(e.next_deadline(), Some(at(30)));
    // Readings move the deadline on (lazily).
    assert!(num(&mut e, "CH4-1", at(20), 0.2).is_empty());
    assert!(tick(&mut e, at(30)).is_empty());
    assert_eq!(e.next_deadline(), Some(at(50)));
    let out = tick(&mut e, at(55));
    assert_eq!(
        kinds(&out),
        vec![(
            "comm.point_missing".into(),
            TransitionKind::Raised,
            Severity::Warning
        )]
    );
    assert!(
        text(&out[0]).contains("no data from CH4"),
        "{}",
        text(&out[0])
    );
    assert_eq!(e.next_deadline(), None);
    // The agent goes offline: an agent cause.
    let mut out = Vec::new();
    e.on_agent_status(&site(), &agent(), AgentState::Offline, at(60), &mut out);
    assert_eq!(
        kinds(&out),
        vec![(
            "comm.agent_offline".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    assert_eq!(out[0].cause.subject, Subject::Agent { agent: agent() });
    assert_eq!(out[0].point, None);
    // An older status (a stale retained one) changes nothing.
    let mut out = Vec::new();
    e.on_agent_status(&site(), &agent(), AgentState::Online, at(59), &mut out);
    assert!(out.is_empty());
    let mut out = Vec::new();
    e.on_agent_status(&site(), &agent(), AgentState::Online, at(70), &mut out);
    assert_eq!(
        kinds(&out),
        vec![(
            "comm.agent_offline".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
    let out = num(&mut e, "CH4-1", at(71), 0.2);
    assert_eq!(
        kinds(&out),
        vec![(
            "comm.point_missing".into(),
            TransitionKind::Cleared,
            Severity::Warning
        )]
    );
}

#[test]
fn points_of_an_offline_agent_do_not_raise_missing_data() {
    let mut p = ch4("CH4-1", "working_face");
    p.interval_ms = Some(10_000);
    let mut e = coal(vec![p]);
    assert!(num(&mut e, "CH4-1", at(0), 0.2).is_empty());
    let mut out = Vec::new();
    e.on_agent_status(&site(), &agent(), AgentState::Offline, at(5), &mut out);
    assert_eq!(out.len(), 1);
    assert!(tick(&mut e, at(100)).is_empty());
    // Back online: the point has its full allowance again from then on.
    let mut out = Vec::new();
    e.on_agent_status(&site(), &agent(), AgentState::Online, at(200), &mut out);
    assert!(tick(&mut e, at(229)).is_empty());
    let out = tick(&mut e, at(230));
    assert_eq!(
        kinds(&out),
        vec![(
            "comm.point_missing".into(),
            TransitionKind::Raised,
            Severity::Warning
        )]
    );
}

#[test]
fn interlock_bypass_escalates_after_its_maximum_duration() {
    let il = with_location(spec("IL-R3", "interlock_bypass", "bool"), "reactor");
    let trip = spec("TR-1", "interlock_trip", "bool");
    let mut e = engine_with(RuleSet::builtin(), Category::Hazchem, vec![il, trip]);
    assert!(boolean(&mut e, "IL-R3", at(0), false).is_empty());
    let out = boolean(&mut e, "IL-R3", at(10), true);
    assert_eq!(
        kinds(&out),
        vec![(
            "interlock.bypass".into(),
            TransitionKind::Raised,
            Severity::Warning
        )]
    );
    assert_eq!(text(&out[0]), "interlock bypass at reactor bypassed");
    let eight_h = 8 * 3600;
    assert_eq!(e.next_deadline(), Some(at(10 + eight_h)));
    // By the clock.
    let out = tick(&mut e, at(10 + eight_h));
    assert_eq!(
        kinds(&out),
        vec![(
            "interlock.bypass".into(),
            TransitionKind::Escalated,
            Severity::Alarm
        )]
    );
    assert!(
        text(&out[0]).contains("for longer than 28800.0 s"),
        "{}",
        text(&out[0])
    );
    assert!(boolean(&mut e, "IL-R3", at(20 + eight_h), true).is_empty());
    let out = boolean(&mut e, "IL-R3", at(30 + eight_h), false);
    assert_eq!(
        kinds(&out),
        vec![(
            "interlock.bypass".into(),
            TransitionKind::Cleared,
            Severity::Alarm
        )]
    );
    // By event time: a reading past the limit escalates at the limit, then its own value counts.
    assert_eq!(boolean(&mut e, "IL-R3", at(100_000), true).len(), 1);
    let out = boolean(&mut e, "IL-R3", at(100_000 + eight_h + 5), true);
    assert_eq!(
        kinds(&out),
        vec![(
            "interlock.bypass".into(),
            TransitionKind::Escalated,
            Severity::Alarm
        )]
    );
    assert_eq!(out[0].at, at(100_000 + eight_h));
    // Trip.
    let out = boolean(&mut e, "TR-1", at(200_000), true);
    assert_eq!(
        kinds(&out),
        vec![(
            "interlock.trip".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
}

fn zone_points() -> Vec<telemetry::PointSpec> {
    vec![
        with_tag(ch4("CH4-101", "working_face"), "zone", "1201"),
        with_tag(spec("FEED-1201", "power_cut", "bool"), "zone", "1201"),
        with_tag(ch4("CH4-201", "working_face"), "zone", "1202"),
    ]
}

/// The coal pack on `zone_points()`: its birth raises the configuration incident of zone 1202
/// (methane, no power_cut point) and nothing else.
fn coal_zones() -> Engine {
    let (e, out) = engine_born(RuleSet::builtin(), Category::CoalMine, zone_points());
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.zone_without_power_cut".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    assert_eq!(
        out[0].cause.subject,
        Subject::Zone {
            zone: "1202".into()
        }
    );
    assert_eq!(out[0].point, Some(pid("CH4-201")));
    e
}

#[test]
fn power_off_failure_when_the_zone_power_is_not_cut_in_time() {
    let mut e = coal_zones();
    assert!(boolean(&mut e, "FEED-1201", at(0), false).is_empty());
    let out = num(&mut e, "CH4-101", at(1), 1.6);
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.working_face".into(),
            TransitionKind::Raised,
            Severity::Critical
        )]
    );
    assert_eq!(e.next_deadline(), Some(at(61)));
    assert!(tick(&mut e, at(60)).is_empty());
    let out = tick(&mut e, at(61));
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.power_off_failure".into(),
            TransitionKind::Raised,
            Severity::Critical
        )]
    );
    let t = &out[0];
    assert_eq!(
        t.cause.subject,
        Subject::Zone {
            zone: "1201".into()
        }
    );
    assert_eq!(t.point, Some(pid("CH4-101")));
    assert_eq!(t.at, at(61));
    assert!(text(t).contains("FEED-1201"), "{}", text(t));
    // Power cut at last: cleared.
    let out = boolean(&mut e, "FEED-1201", at(70), true);
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.power_off_failure".into(),
            TransitionKind::Cleared,
            Severity::Critical
        )]
    );
    // Another zone without a power_cut point: no composite incident.
    assert_eq!(num(&mut e, "CH4-201", at(80), 1.6).len(), 1);
    assert!(tick(&mut e, at(1000))
        .iter()
        .all(|t| t.cause.rule != "coal.ch4.power_off_failure"));
}

#[test]
fn power_cut_in_time_raises_nothing_and_readings_also_advance_the_timer() {
    let mut e = coal_zones();
    assert!(boolean(&mut e, "FEED-1201", at(0), false).is_empty());
    assert_eq!(num(&mut e, "CH4-101", at(1), 1.6).len(), 1);
    assert!(boolean(&mut e, "FEED-1201", at(3), true).is_empty());
    assert!(tick(&mut e, at(200)).is_empty());
    // Not cut; the next reading (event time) past the deadline raises it at the deadline.
    assert!(num(&mut e, "CH4-101", at(300), 0.5).len() == 1); // cleared methane
    assert!(boolean(&mut e, "FEED-1201", at(301), false).is_empty());
    assert_eq!(num(&mut e, "CH4-101", at(302), 1.6).len(), 1);
    let out = num(&mut e, "CH4-101", at(400), 1.7);
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.power_off_failure".into(),
            TransitionKind::Raised,
            Severity::Critical
        )]
    );
    assert_eq!(out[0].at, at(362));
}

const CTX_RULES: &str = r#"
[[rule]]
id = "t.rain.level"
kind = "threshold"
select = { quantity = "water_level" }
high = [{ severity = "warning", raise = 10.0 }, { severity = "alarm", raise = 12.0 }]
[[rule.context]]
warning = "rainstorm"
min_level = "orange"
tighten = [{ level = "warning", raise = 8.0 }]
severity_up = 1

[[rule]]
id = "t.quake.only"
kind = "threshold"
select = { quantity = "displacement" }
high = [{ severity = "alarm", raise = 5.0 }]
[[rule.context]]
warning = "earthquake"
min_magnitude = 4.0
only = true
"#;

fn warning(id: &str, kind: &str, level: WarningLevel, magnitude: Option<f64>) -> ActiveWarning {
    ActiveWarning {
        id: id.into(),
        kind: kind.into(),
        level,
        magnitude,
    }
}

#[test]
fn warnings_tighten_raise_severity_and_gate_rules_at_once() {
    let mut e = engine_with(
        rules(CTX_RULES),
        Category::Tailings,
        vec![
            spec("WL-1", "water_level", "m"),
            spec("D-1", "displacement", "mm"),
        ],
    );
    assert!(num(&mut e, "WL-1", at(0), 9.0).is_empty());
    assert!(
        num(&mut e, "D-1", at(0), 7.0).is_empty(),
        "only under an earthquake warning"
    );
    let mut out = Vec::new();
    e.set_warnings(
        &site(),
        vec![warning("w-yellow", "rainstorm", WarningLevel::Yellow, None)],
        at(5),
        &mut out,
    );
    assert!(out.is_empty(), "yellow is below the rule's min level");
    let mut out = Vec::new();
    e.set_warnings(
        &site(),
        vec![
            warning("w-orange", "rainstorm", WarningLevel::Orange, None),
            warning("q1", "earthquake", WarningLevel::Red, Some(4.5)),
        ],
        at(10),
        &mut out,
    );
    let mut k = kinds(&out);
    k.sort();
    assert_eq!(
        k,
        vec![
            (
                "t.quake.only".into(),
                TransitionKind::Raised,
                Severity::Alarm
            ),
            (
                "t.rain.level".into(),
                TransitionKind::Raised,
                Severity::Alarm
            ),
        ]
    );
    let rain = out.iter().find(|t| t.cause.rule == "t.rain.level").unwrap();
    assert_eq!(rain.warnings, vec!["w-orange".to_string()]);
    assert_eq!(rain.threshold, Some(8.0));
    assert_eq!(rain.at, at(10));
    // The warnings end: the rain rule falls back (9 < 10), the quake rule no longer applies.
    let mut out = Vec::new();
    e.set_warnings(&site(), vec![], at(20), &mut out);
    let mut k = kinds(&out);
    k.sort();
    assert_eq!(
        k,
        vec![
            (
                "t.quake.only".into(),
                TransitionKind::Cleared,
                Severity::Alarm
            ),
            (
                "t.rain.level".into(),
                TransitionKind::Cleared,
                Severity::Alarm
            ),
        ]
    );
}

#[test]
fn site_levels_are_what_each_point_is_judged_against_under_the_warnings_now() {
    let mut e = engine_with(
        rules(CTX_RULES),
        Category::Tailings,
        vec![
            spec("WL-1", "water_level", "m"),
            spec("D-1", "displacement", "mm"),
        ],
    );
    let levels = |e: &Engine| {
        e.site_levels(&site())
            .into_iter()
            .map(|(p, ls)| {
                let ls: Vec<_> = ls
                    .into_iter()
                    .map(|l| {
                        (
                            l.rule,
                            l.severity,
                            l.side,
                            l.raise,
                            l.tightened,
                            l.applies,
                            l.open,
                        )
                    })
                    .collect();
                (p.to_string(), ls)
            })
            .collect::<Vec<_>>()
    };
    use alarm_rules::LevelSide::High;
    assert_eq!(
        levels(&e),
        vec![
            (
                "WL-1".to_string(),
                vec![
                    (
                        "t.rain.level".into(),
                        Severity::Warning,
                        High,
                        10.0,
                        false,
                        true,
                        false
                    ),
                    (
                        "t.rain.level".into(),
                        Severity::Alarm,
                        High,
                        12.0,
                        false,
                        true,
                        false
                    ),
                ]
            ),
            (
                "D-1".to_string(),
                vec![(
                    "t.quake.only".into(),
                    Severity::Alarm,
                    High,
                    5.0,
                    false,
                    false,
                    false
                )]
            ),
        ]
    );
    // An orange rainstorm: the warning level tightened to 8 and each severity a step up; at 9
    // the tightened level is the open one.
    let mut out = Vec::new();
    e.set_warnings(
        &site(),
        vec![warning("w-orange", "rainstorm", WarningLevel::Orange, None)],
        at(5),
        &mut out,
    );
    num(&mut e, "WL-1", at(6), 9.0);
    assert_eq!(
        levels(&e)[0].1,
        vec![
            (
                "t.rain.level".into(),
                Severity::Alarm,
                High,
                8.0,
                true,
                true,
                true
            ),
            (
                "t.rain.level".into(),
                Severity::Critical,
                High,
                12.0,
                false,
                true,
                false
            ),
        ]
    );
    assert!(e
        .site_levels(&telemetry::SiteId::new("elsewhere").unwrap())
        .is_empty());
}

#[test]
fn on_delay_and_off_delay_in_event_time() {
    let set = rules(
        r#"
[[rule]]
id = "t.delay"
kind = "threshold"
select = { quantity = "co" }
on_delay_ms = 5000
off_delay_ms = 10000
high = [{ severity = "alarm", raise = 24, clear = 20 }]
"#,
    );
    let mut e = engine_with(set, Category::CoalMine, vec![spec("CO-1", "co", "ppm")]);
    assert!(num(&mut e, "CO-1", at(0), 30.0).is_empty());
    assert_eq!(e.next_deadline(), Some(at(5)));
    assert!(
        num(&mut e, "CO-1", at(2), 22.0).is_empty(),
        "dropped below raise: the on-delay restarts"
    );
    assert!(num(&mut e, "CO-1", at(3), 30.0).is_empty());
    // The next reading comes late; the raise is dated at the end of the on-delay, not later.
    let out = num(&mut e, "CO-1", at(20), 30.0);
    assert_eq!(
        kinds(&out),
        vec![("t.delay".into(), TransitionKind::Raised, Severity::Alarm)]
    );
    assert_eq!(out[0].at, at(8));
    assert!(num(&mut e, "CO-1", at(21), 19.0).is_empty());
    assert!(
        num(&mut e, "CO-1", at(25), 21.0).is_empty(),
        "inside the band: the off-delay restarts"
    );
    assert!(num(&mut e, "CO-1", at(26), 19.0).is_empty());
    let out = tick(&mut e, at(36));
    assert_eq!(
        kinds(&out),
        vec![("t.delay".into(), TransitionKind::Cleared, Severity::Alarm)]
    );
    assert_eq!(out[0].at, at(36));
}

#[test]
fn sensor_fault_out_of_range_and_stuck() {
    let set = rules(
        r#"
[[rule]]
id = "t.fault"
kind = "sensor_fault"
stuck_ms = 60000
stuck_tolerance = 0.001
"#,
    );
    let mut p = spec("P-1", "pressure", "kPa");
    p.range = Some([0.0, 100.0]);
    let mut e = engine_with(set, Category::Hazchem, vec![p]);
    let out = num(&mut e, "P-1", at(0), 120.0);
    assert_eq!(
        kinds(&out),
        vec![("t.fault".into(), TransitionKind::Raised, Severity::Warning)]
    );
    assert!(
        text(&out[0]).contains("outside the range 0.0..100.0"),
        "{}",
        text(&out[0])
    );
    assert_eq!(num(&mut e, "P-1", at(10), 50.0).len(), 1);
    assert!(num(&mut e, "P-1", at(40), 50.0005).is_empty());
    let out = num(&mut e, "P-1", at(70), 50.0);
    assert_eq!(
        kinds(&out),
        vec![("t.fault".into(), TransitionKind::Raised, Severity::Warning)]
    );
    assert!(text(&out[0]).contains("stuck"), "{}", text(&out[0]));
    assert_eq!(num(&mut e, "P-1", at(80), 51.0).len(), 1);
}

#[test]
fn rate_of_change_over_an_event_time_window() {
    let set = rules(
        r#"
[[rule]]
id = "t.rate"
kind = "rate"
select = { quantity = "ch4" }
window_ms = 60000
rise = 0.5
severity = "warning"
"#,
    );
    let mut e = engine_with(set, Category::CoalMine, vec![ch4("CH4-1", "heading_face")]);
    assert!(num(&mut e, "CH4-1", at(0), 0.1).is_empty());
    assert!(num(&mut e, "CH4-1", at(30), 0.4).is_empty());
    let out = num(&mut e, "CH4-1", at(50), 0.65);
    assert_eq!(
        kinds(&out),
        vec![("t.rate".into(), TransitionKind::Raised, Severity::Warning)]
    );
    // 0.1 leaves the window at 60 s; from 0.4 the rise is less than 0.5.
    let out = num(&mut e, "CH4-1", at(70), 0.7);
    assert_eq!(
        kinds(&out),
        vec![("t.rate".into(), TransitionKind::Cleared, Severity::Warning)]
    );
}

#[test]
fn reload_clears_removed_rules_rejudges_changed_ones_and_keeps_the_rest() {
    let mut e = coal(vec![
        ch4("CH4-1", "working_face"),
        spec("CO-1", "co", "ppm"),
    ]);
    assert_eq!(num(&mut e, "CH4-1", at(0), 1.2).len(), 1);
    assert_eq!(num(&mut e, "CO-1", at(0), 30.0).len(), 1);
    let files = vec![(
        "site.toml".to_string(),
        r#"
[[rule]]
id = "coal.co"
enabled = false
kind = "threshold"
high = [{ severity = "alarm", raise = 24.0 }]

[[rule]]
id = "coal.ch4.working_face"
kind = "threshold"
select = { category = "coal_mine", quantity = "ch4", location = "working_face" }
high = [{ severity = "alarm", raise = 0.8 }, { severity = "critical", raise = 1.1, clear = 0.8 }]
"#
        .to_string(),
    )];
    let set = RuleSet::parse(&files, true).unwrap();
    assert_eq!(set.len(), RuleSet::builtin().len() - 1);
    let mut out = Vec::new();
    e.reload(set.clone(), at(10), &mut out);
    let mut k = kinds(&out);
    k.sort();
    assert_eq!(
        k,
        vec![
            (
                "coal.ch4.working_face".into(),
                TransitionKind::Escalated,
                Severity::Critical
            ),
            ("coal.co".into(), TransitionKind::Cleared, Severity::Alarm),
        ]
    );
    let esc = out
        .iter()
        .find(|t| t.cause.rule == "coal.ch4.working_face")
        .unwrap();
    assert_eq!(
        esc.rule_version,
        set.version("coal.ch4.working_face").unwrap()
    );
    // The same set again: nothing changes.
    let mut out = Vec::new();
    e.reload(set, at(20), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.open_causes().len(), 1);
}

#[test]
fn restore_open_prevents_a_double_raise_and_keeps_the_clear() {
    let cause = Cause {
        rule: "coal.ch4.working_face".into(),
        site: site(),
        subject: Subject::Point {
            point: pid("CH4-1"),
        },
    };
    // Restored before anything is known of the site.
    let mut e = Engine::new(RuleSet::builtin(), EngineConfig::default());
    e.restore_open(&cause, Severity::Alarm);
    assert_eq!(e.open_causes(), vec![(cause.clone(), Severity::Alarm)]);
    e.set_site(
        &site(),
        SiteContext {
            category: Some(Category::CoalMine),
            region: None,
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    e.set_catalogue(
        &site(),
        &catalogue(vec![ch4("CH4-1", "working_face")]),
        at(0),
        &mut out,
    );
    assert!(out.is_empty());
    assert!(
        num(&mut e, "CH4-1", at(1), 1.2).is_empty(),
        "standing condition: no second raise"
    );
    let out = num(&mut e, "CH4-1", at(2), 1.6);
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.working_face".into(),
            TransitionKind::Escalated,
            Severity::Critical
        )]
    );
    // Restored after the binding exists; the condition is gone: cleared at the first reading.
    let mut e = coal(vec![ch4("CH4-1", "working_face")]);
    e.restore_open(&cause, Severity::Critical);
    let out = num(&mut e, "CH4-1", at(3), 0.3);
    assert_eq!(
        kinds(&out),
        vec![(
            "coal.ch4.working_face".into(),
            TransitionKind::Cleared,
            Severity::Critical
        )]
    );
}

#[test]
fn site_category_selects_rules() {
    // Same points at a hazchem site: coal methane rules do not apply; CO follows the toxic table.
    let mut e = engine_with(
        RuleSet::builtin(),
        Category::Hazchem,
        vec![ch4("CH4-1", "working_face"), spec("CO-1", "co", "ppm")],
    );
    assert!(num(&mut e, "CH4-1", at(0), 3.0).is_empty());
    assert!(num(&mut e, "CO-1", at(0), 24.0).is_empty());
    let out = num(&mut e, "CO-1", at(1), 26.0);
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.toxic.co".into(),
            TransitionKind::Raised,
            Severity::Alarm
        )]
    );
    // A toxic point with a gas.
    let mut h2s = with_location(spec("H2S-3", "toxic", "ppm"), "tank_farm");
    h2s.gas = Some("h2s".into());
    let mut e = engine_with(
        RuleSet::builtin(),
        Category::Hazchem,
        vec![h2s, spec("O2-1", "o2", "%")],
    );
    let out = num(&mut e, "H2S-3", at(0), 15.0);
    assert_eq!(
        kinds(&out),
        vec![(
            "hazchem.toxic.h2s".into(),
            TransitionKind::Raised,
            Severity::Critical
        )]
    );
    assert_eq!(
        text(&out[0]),
        "H2S 15.0 ppm >= 200 % OEL 14.1 ppm at tank farm"
    );
    assert!(num(&mut e, "O2-1", at(0), 19.5).is_empty());
    assert_eq!(num(&mut e, "O2-1", at(1), 19.4).len(), 1);
    assert_eq!(num(&mut e, "O2-1", at(2), 19.5).len(), 1, "cleared at 19.5");
    assert!(num(&mut e, "O2-1", at(3), 23.5).is_empty());
    assert_eq!(
        num(&mut e, "O2-1", at(4), 23.6)[0].kind,
        TransitionKind::Raised
    );
}

#[test]
fn category_from_the_birth_when_no_registry_says() {
    let mut e = Engine::new(RuleSet::builtin(), EngineConfig::default());
    let mut cat = catalogue(vec![ch4("CH4-1", "working_face")]);
    cat.site = Some(telemetry::SiteInfo {
        name: None,
        category: Some(Category::CoalMine),
        region: None,
        lat: None,
        lon: None,
        emission_reduction_list: false,
    });
    let mut out = Vec::new();
    e.set_catalogue(&site(), &cat, at(0), &mut out);
    assert_eq!(num(&mut e, "CH4-1", at(1), 1.0).len(), 1);
}

#[test]
fn open_causes_are_sorted_and_complete() {
    let mut e = coal(vec![ch4("B-1", "working_face"), ch4("A-1", "working_face")]);
    num(&mut e, "B-1", at(0), 1.0);
    num(&mut e, "A-1", at(0), 1.6);
    let open = e.open_causes();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].0.subject, Subject::Point { point: pid("A-1") });
    assert_eq!(open[0].1, Severity::Critical);
}

#[test]
fn restored_causes_no_rule_takes_up_are_cleared() {
    let mut e = Engine::new(RuleSet::builtin(), EngineConfig::default());
    let gone = Cause {
        rule: "coal.ch4.old_rule".into(),
        site: site(),
        subject: Subject::Point {
            point: pid("CH4-1"),
        },
    };
    let moved = Cause {
        rule: "coal.ch4.upper_corner".into(),
        site: site(),
        subject: Subject::Point {
            point: pid("CH4-1"),
        },
    };
    e.restore_open(&gone, Severity::Alarm);
    e.restore_open(&moved, Severity::Critical);
    e.set_site(
        &site(),
        SiteContext {
            category: Some(Category::CoalMine),
            region: None,
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    // The point is now at the working face: neither restored cause has a rule that takes it up.
    e.set_catalogue(
        &site(),
        &catalogue(vec![ch4("CH4-1", "working_face")]),
        at(0),
        &mut out,
    );
    let mut k = kinds(&out);
    k.sort();
    assert_eq!(
        k,
        vec![
            (
                "coal.ch4.old_rule".into(),
                TransitionKind::Cleared,
                Severity::Alarm
            ),
            (
                "coal.ch4.upper_corner".into(),
                TransitionKind::Cleared,
                Severity::Critical
            ),
        ]
    );
    assert!(e.open_causes().is_empty());
}

/// The message as people read it, in English (the language these tests pin).
fn text(t: &alarm_rules::Transition) -> String {
    presentation::message_text(&t.message, presentation::Language::En)
}
