//! The rule kinds for vehicles: time-of-day windows in the rules' time zone, geofences
//! (circle, polygon; enter, leave, dwell), driving time (continuous with a rest reset, within a
//! sliding window), bits of a state word and silence while moving.

mod common;
use alarm_rules::{RuleSet, TransitionKind};
use common::*;
use telemetry::{Category, Position, Reading, Severity, Timestamp, Value};

use TransitionKind::{Cleared, Raised};

fn pos(lat: f64, lon: f64, speed: f64) -> Value {
    Value::Position(Position {
        lat,
        lon,
        speed_kmh: Some(speed),
        heading: None,
        alt_m: None,
    })
}

fn at_pos(e: &mut alarm_rules::Engine, ts: Timestamp, v: Value) -> Vec<(String, TransitionKind)> {
    let out = feed(e, &Reading::good(pid("V1"), ts, v));
    out.iter().map(|t| (t.cause.rule.clone(), t.kind)).collect()
}

fn vehicle_engine(text: &str) -> alarm_rules::Engine {
    engine_with(
        rules(text),
        Category::Transport,
        vec![spec("V1", "position", "wgs84")],
    )
}

fn r(id: &str, k: TransitionKind) -> Vec<(String, TransitionKind)> {
    vec![(id.to_string(), k)]
}

const NONE: Vec<(String, TransitionKind)> = Vec::new();

/// What the clock at `now` fires: (rule, kind, event time) of each transition.
fn fired(e: &mut alarm_rules::Engine, now: Timestamp) -> Vec<(String, TransitionKind, Timestamp)> {
    let out = tick(e, now);
    out.iter()
        .map(|t| (t.cause.rule.clone(), t.kind, t.at))
        .collect()
}

fn one(id: &str, k: TransitionKind, at: Timestamp) -> Vec<(String, TransitionKind, Timestamp)> {
    vec![(id.to_string(), k, at)]
}

#[test]
fn a_circle_raises_on_entering_and_clears_on_leaving() {
    let mut e = vehicle_engine(
        "[[rule]]\nid = \"g\"\nkind = \"geofence\"\nseverity = \"alarm\"\ncircle = { lat = 34.0, lon = 113.0, radius_m = 1000 }\n",
    );
    // 0.01 degree of latitude is about 1.1 km.
    assert_eq!(at_pos(&mut e, at(0), pos(34.01, 113.0, 40.0)), NONE);
    assert_eq!(
        at_pos(&mut e, at(10), pos(34.005, 113.0, 40.0)),
        r("g", Raised)
    );
    assert_eq!(at_pos(&mut e, at(20), pos(34.0, 113.0, 40.0)), NONE);
    assert_eq!(
        at_pos(&mut e, at(30), pos(33.99, 113.0, 40.0)),
        r("g", Cleared)
    );
}

#[test]
fn a_polygon_left_raises_and_a_dwell_raises_by_the_clock() {
    let square = "polygon = [[34.0, 113.0], [34.0, 113.1], [34.1, 113.1], [34.1, 113.0]]";
    let mut e = vehicle_engine(&format!(
        "[[rule]]\nid = \"out\"\nkind = \"geofence\"\nseverity = \"warning\"\ntrigger = \"leave\"\n{square}\n\n[[rule]]\nid = \"dwell\"\nkind = \"geofence\"\nseverity = \"alarm\"\ndwell_ms = 120000\n{square}\n"
    ));
    assert_eq!(at_pos(&mut e, at(0), pos(34.05, 113.05, 0.0)), NONE);
    assert_eq!(at_pos(&mut e, at(60), pos(34.05, 113.05, 0.0)), NONE);
    // Inside since 0 s: the dwell completes at 120 s without a reading.
    assert_eq!(fired(&mut e, at(130)), one("dwell", Raised, at(120)));
    let left = at_pos(&mut e, at(200), pos(34.2, 113.05, 30.0));
    // Bindings are judged in rule-id order.
    assert_eq!(
        left,
        vec![("dwell".into(), Cleared), ("out".into(), Raised)]
    );
}

#[test]
fn a_window_is_in_beijing_time_unless_the_rule_names_a_zone() {
    let rule = |id: &str, zone: &str| {
        format!("[[rule]]\nid = \"{id}\"\nkind = \"threshold\"\nactive_between = [\"02:00\", \"05:00\"]\n{zone}high = [{{ severity = \"alarm\", raise = 5 }}]\n\n")
    };
    let text = rule("bj", "") + &rule("utc", "time_zone = \"UTC\"\n");
    let mut e = engine_with(
        rules(&text),
        Category::Transport,
        vec![spec("S", "speed", "km/h")],
    );
    let day = |h: i64| at((h - 10) * 3600); // t0 is 10:00Z
    let ids = |out: Vec<alarm_rules::Transition>| -> Vec<(String, TransitionKind)> {
        out.iter().map(|t| (t.cause.rule.clone(), t.kind)).collect()
    };
    assert_eq!(ids(num(&mut e, "S", day(17), 50.0)), NONE); // 01:00 Beijing
    assert_eq!(ids(num(&mut e, "S", day(18), 50.0)), r("bj", Raised)); // 02:00
    assert_eq!(ids(num(&mut e, "S", day(21), 50.0)), r("bj", Cleared)); // 05:00
    assert_eq!(ids(num(&mut e, "S", day(26), 50.0)), r("utc", Raised)); // 02:00Z next day
    assert_eq!(ids(num(&mut e, "S", day(29), 50.0)), r("utc", Cleared));
}

#[test]
fn a_window_opens_and_closes_by_the_clock() {
    let text = "[[rule]]\nid = \"bj\"\nkind = \"threshold\"\nactive_between = [\"02:00\", \"05:00\"]\nhigh = [{ severity = \"alarm\", raise = 5 }]\n";
    let mut e = engine_with(
        rules(text),
        Category::Transport,
        vec![spec("S", "speed", "km/h")],
    );
    // 01:59 Beijing time (17:59Z), then no reading: raised at 02:00, cleared at 05:00.
    assert!(num(&mut e, "S", at(7 * 3600 + 59 * 60), 50.0).is_empty());
    assert_eq!(
        fired(&mut e, at(8 * 3600 + 300)),
        one("bj", Raised, at(8 * 3600))
    );
    assert_eq!(
        fired(&mut e, at(11 * 3600 + 300)),
        one("bj", Cleared, at(11 * 3600))
    );
    assert!(tick(&mut e, at(30 * 3600)).is_empty());
}

#[test]
fn continuous_driving_raises_by_the_clock_and_a_rest_clears_it() {
    let mut e = vehicle_engine(
        "[[rule]]\nid = \"d\"\nkind = \"driving_time\"\nseverity = \"alarm\"\nspeed_above_kmh = 5\nmax_continuous_ms = 3600000\nrest_ms = 600000\n",
    );
    assert_eq!(at_pos(&mut e, at(0), pos(34.0, 113.0, 60.0)), NONE);
    // A stop of 5 minutes does not break continuous driving.
    assert_eq!(at_pos(&mut e, at(1000), pos(34.0, 113.0, 0.0)), NONE);
    assert_eq!(at_pos(&mut e, at(1300), pos(34.0, 113.0, 60.0)), NONE);
    let out = tick(&mut e, at(4000));
    assert_eq!(kinds(&out), vec![("d".into(), Raised, Severity::Alarm)]);
    assert_eq!((out[0].at, out[0].threshold), (at(3600), Some(3_600_000.0)));
    assert_eq!(at_pos(&mut e, at(4200), pos(34.0, 113.0, 0.0)), NONE);
    // The 10-minute rest completes at 4 800 s.
    assert_eq!(fired(&mut e, at(5000)), one("d", Cleared, at(4800)));
}

#[test]
fn driving_within_a_sliding_window() {
    let mut e = vehicle_engine(
        "[[rule]]\nid = \"w\"\nkind = \"driving_time\"\nseverity = \"warning\"\nmax_in_window_ms = 3600000\nwindow_ms = 7200000\n",
    );
    // 40 min driving, 10 min standing, 20 min driving: 1 h at 70 min.
    assert_eq!(at_pos(&mut e, at(0), pos(34.0, 113.0, 50.0)), NONE);
    assert_eq!(at_pos(&mut e, at(2400), pos(34.0, 113.0, 0.0)), NONE);
    assert_eq!(at_pos(&mut e, at(3000), pos(34.0, 113.0, 50.0)), NONE);
    assert_eq!(fired(&mut e, at(4300)), one("w", Raised, at(4200)));
    assert_eq!(at_pos(&mut e, at(4200), pos(34.0, 113.0, 0.0)), NONE);
    // Falls below 1 h once the first driving (from 0 s) has left the 2 h window: 7 200 s + 1 ms.
    assert_eq!(fired(&mut e, at(8000)), one("w", Cleared, at_ms(7_200_001)));
}

#[test]
fn the_vehicle_pack_emergency_bit_and_silence_while_moving() {
    let mut e = engine_with(
        RuleSet::builtin(),
        Category::Transport,
        vec![
            spec("V1", "position", "wgs84"),
            spec("V1.alarm", "vehicle_alarm", "bits"),
        ],
    );
    // Bits 1 and 2 (terminal overspeed and fatigue): the general terminal alarm only.
    let out = num(&mut e, "V1.alarm", at(0), 6.0);
    assert_eq!(
        kinds(&out),
        vec![("vehicle.terminal_alarm".into(), Raised, Severity::Warning)]
    );
    let out = num(&mut e, "V1.alarm", at(5), 7.0);
    assert_eq!(
        kinds(&out),
        vec![(
            "vehicle.terminal_alarm.emergency".into(),
            Raised,
            Severity::Critical
        )]
    );
    // Moving, then silent for 10 x 30 s (gateway clock): silent.
    assert_eq!(at_pos(&mut e, at(10), pos(34.0, 113.0, 60.0)), NONE);
    let out = tick(&mut e, at(400));
    assert_eq!(
        kinds(&out),
        vec![("vehicle.silent".into(), Raised, Severity::Warning)]
    );
    // Standing, then silent: nothing.
    let out = at_pos(&mut e, at(410), pos(34.0, 113.0, 0.0));
    assert_eq!(out, r("vehicle.silent", Cleared));
    assert!(tick(&mut e, at(1000)).is_empty());
}

#[test]
fn refused_settings() {
    let bad = [
        ("kind = \"threshold\"\nactive_between = [\"25:00\", \"05:00\"]\nhigh = [{ severity = \"alarm\", raise = 1 }]", "active_between"),
        ("kind = \"threshold\"\nactive_between = [\"02:00\", \"05:00\"]\ntime_zone = \"Mars/Olympus\"\nhigh = [{ severity = \"alarm\", raise = 1 }]", "time_zone"),
        ("kind = \"threshold\"\ntime_zone = \"UTC\"\nhigh = [{ severity = \"alarm\", raise = 1 }]", "time_zone"),
        ("kind = \"geofence\"\nseverity = \"alarm\"\npolygon = [[34.0, 113.0], [34.1, 113.0]]", "polygon"),
        ("kind = \"geofence\"\nseverity = \"alarm\"\ntrigger = \"leave\"\ndwell_ms = 10\ncircle = { lat = 1, lon = 1, radius_m = 5 }", "dwell_ms"),
        ("kind = \"geofence\"\nseverity = \"alarm\"\ncircle = { lat = 1, lon = 1, radius_m = 5, r = 1 }", "circle.r"),
        ("kind = \"driving_time\"\nseverity = \"alarm\"\nmax_continuous_ms = 10", "max_continuous_ms"),
        ("kind = \"state\"\nseverity = \"alarm\"\nbits = [64]", "bits"),
    ];
    for (body, field) in bad {
        let text = format!("[[rule]]\nid = \"x\"\n{body}\n");
        let err = RuleSet::parse(&[("f.toml".into(), text)], false).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

const CONTINUOUS: &str = "[[rule]]\nid = \"d\"\nkind = \"driving_time\"\nseverity = \"alarm\"\nspeed_above_kmh = 5\nmax_continuous_ms = 3600000\nrest_ms = 600000\n";

/// An engine born again after a restart, with what the old one handed out to be saved.
fn restarted(saved: Vec<alarm_rules::Accumulated>, text: &str) -> alarm_rules::Engine {
    let mut e = alarm_rules::Engine::new(rules(text), alarm_rules::EngineConfig::default());
    for a in saved {
        e.restore_accumulated(a);
    }
    e.set_site(
        &site(),
        alarm_rules::SiteContext {
            category: Some(Category::Transport),
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    e.set_catalogue(
        &site(),
        &catalogue(vec![spec("V1", "position", "wgs84")]),
        at(0),
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    e
}

#[test]
fn driving_time_survives_a_restart() {
    let mut e = vehicle_engine(CONTINUOUS);
    let mut saved = Vec::new();
    // 40 minutes of driving, reported every minute; what changes is handed out to be saved.
    for m in 0..=40 {
        assert_eq!(at_pos(&mut e, at(m * 60), pos(34.0, 113.0, 60.0)), NONE);
        saved.extend(e.take_accumulated());
    }
    // A vehicle that goes on moving only lengthens its drive: one save (the start), not one
    // per reading.
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].point.as_str(), "V1");
    assert_eq!(saved[0].rule, "d");
    // The process dies; a new one takes the saved state up with the birth.
    let mut e = restarted(saved, CONTINUOUS);
    // 20 more minutes of driving: 1 h since the start at 0 s, so the alarm is raised at 3 600 s
    // (a fresh start would have waited until 5 400 s).
    assert_eq!(at_pos(&mut e, at(3000), pos(34.0, 113.0, 60.0)), NONE);
    let out = feed(
        &mut e,
        &Reading::good(pid("V1"), at(3660), pos(34.0, 113.0, 60.0)),
    );
    assert_eq!(kinds(&out), vec![("d".into(), Raised, Severity::Alarm)]);
    assert_eq!(out[0].at, at(3600));
}

#[test]
fn a_rest_begun_before_a_restart_is_kept() {
    let mut e = vehicle_engine(CONTINUOUS);
    let mut saved = Vec::new();
    for (s, v) in [(0, 60.0), (1800, 60.0), (1900, 0.0)] {
        assert_eq!(at_pos(&mut e, at(s), pos(34.0, 113.0, v)), NONE);
        saved.extend(e.take_accumulated());
    }
    let mut e = restarted(saved, CONTINUOUS);
    // Standing still since 1 900 s: the 10-minute rest is complete at 2 500 s, so driving again
    // from 2 600 s for 50 minutes raises nothing.
    assert_eq!(at_pos(&mut e, at(2600), pos(34.0, 113.0, 0.0)), NONE);
    assert_eq!(at_pos(&mut e, at(2601), pos(34.0, 113.0, 60.0)), NONE);
    assert_eq!(at_pos(&mut e, at(5600), pos(34.0, 113.0, 60.0)), NONE);
}

#[test]
fn a_backlog_is_judged_by_its_readings_not_overtaken_by_the_clock() {
    let mut e = vehicle_engine(CONTINUOUS);
    // A terminal's blind-area upload, a day late: driving from 0 s, reported with the clock a
    // day ahead. The continuous limit (3 600 s) lies long behind the clock, yet the clock does
    // not fire it: the readings still to come may show a rest.
    let late = |s: i64| at(s) + chrono::Duration::days(1);
    let mut out = Vec::new();
    let r = |s: i64, v: f64| Reading::good(pid("V1"), at(s), pos(34.0, 113.0, v));
    e.on_reading(&site(), &agent(), &r(0, 60.0), late(0), &mut out);
    e.on_reading(&site(), &agent(), &r(1800, 60.0), late(1800), &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(fired(&mut e, late(1810)), vec![]);
    // The rest: 15 minutes standing, then on; nothing was too long.
    e.on_reading(&site(), &agent(), &r(3000, 0.0), late(3000), &mut out);
    e.on_reading(&site(), &agent(), &r(3900, 60.0), late(3900), &mut out);
    assert!(out.is_empty(), "{out:?}");
    // When the readings stop, the clock fires what is due, as late as they came: 1 h from the
    // new start at 3 900 s.
    assert_eq!(fired(&mut e, late(7400)), vec![]);
    assert_eq!(fired(&mut e, late(7500)), one("d", Raised, at(7500)));
}
