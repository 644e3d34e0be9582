//! Golden tests of the hazardous-chemical process pack and the major-hazard tanks (issue 25)
//! through `gateway replay`. Levels come from each point's own `limits` in its catalogue
//! (contract 1.1); expected events are written by hand from those settings and the rules'
//! behaviour (`process.toml`, `hazchem.toml`).

mod golden;

use golden::{cause, of_rule, of_site, t, Script};
use serde_json::{json, Value};

fn hazchem() -> Value {
    json!({"category": "hazchem"})
}

/// Readings of one point: (seconds after T0, value).
/// Readings of one point: the first `start` seconds after T0, then one every `step` seconds.
fn reads<V: serde::Serialize>(
    s: &mut Script,
    site: &str,
    point: &str,
    (start, step): (i64, i64),
    values: &[V],
) {
    for (k, v) in values.iter().enumerate() {
        s.read(site, point, &t(start + step * k as i64), json!(v));
    }
}

#[tokio::test]
async fn a_key_process_point_past_its_own_h_hh_l_and_ll_settings_and_back() {
    let mut s = Script::default();
    s.birth(
        "chem-r3",
        hazchem(),
        json!([
            {"point": "TT-R3", "quantity": "temperature", "unit": "°C", "location": "reactor",
             "tags": {"process": "nitration", "zone": "R3"}, "limits": {"hh": 90.0, "h": 80.0, "l": 20.0, "ll": 10.0}},
            // Bound to the process but without settings: no level.
            {"point": "PT-R3", "quantity": "pressure", "unit": "kPa", "location": "reactor",
             "tags": {"process": "nitration", "zone": "R3"}}
        ]),
    );
    // 100 s apart: slower than the runaway rate (5 °C within 60 s).
    let values = [50.0, 80.0, 90.0, 85.0, 79.0, 10.0, 9.0, 25.0];
    reads(&mut s, "chem-r3", "TT-R3", (0, 100), &values);
    reads(&mut s, "chem-r3", "PT-R3", (0, 0), &[99999.0]);
    let rule = "process.limits";
    let point = cause(rule, "chem-r3", "TT-R3");
    let ev =
        |event, severity, v: f64, th: f64, secs| point(event, severity, json!(v), Some(th), secs);
    let want = vec![
        ev("raised", "alarm", 80.0, 80.0, 100),       // at H
        ev("escalated", "critical", 90.0, 90.0, 200), // at HH
        ev("deescalated", "alarm", 85.0, 80.0, 300),  // back under HH, still past H
        ev("cleared", "alarm", 79.0, 80.0, 400),      // below H
        ev("raised", "alarm", 10.0, 20.0, 500),       // below L, at LL (not below it)
        ev("escalated", "critical", 9.0, 10.0, 600),  // below LL
        ev("cleared", "critical", 25.0, 10.0, 700),   // back past L
    ];
    assert_eq!(of_site(&s.replay().await, "chem-r3"), want);
}

#[tokio::test]
async fn a_reactor_temperature_rising_5_degrees_within_a_minute_is_a_possible_runaway() {
    let mut s = Script::default();
    s.birth(
        "chem-r4",
        hazchem(),
        json!([{"point": "TT-R4", "quantity": "temperature", "unit": "°C", "location": "reactor"}]),
    );
    s.read("chem-r4", "TT-R4", &t(0), json!(60.0))
        .read("chem-r4", "TT-R4", &t(30), json!(62.0))
        .read("chem-r4", "TT-R4", &t(50), json!(65.5)) // 5.5 °C within 50 s
        .read("chem-r4", "TT-R4", &t(200), json!(65.5)); // steady: no rise within the window
    let rate = cause("process.reactor.temperature_rise", "chem-r4", "TT-R4");
    let want = vec![
        rate("raised", "alarm", json!(65.5), Some(5.0), 50),
        rate("cleared", "alarm", json!(65.5), None, 200),
    ];
    assert_eq!(of_site(&s.replay().await, "chem-r4"), want);
}

#[tokio::test]
async fn cooling_or_feed_flow_below_its_ll_while_the_reactor_runs() {
    let mut s = Script::default();
    s.birth(
        "chem-r5",
        hazchem(),
        json!([
            {"point": "RUN-R5", "quantity": "operation_active", "unit": "bool", "tags": {"operation": "reaction", "zone": "R5"}},
            {"point": "FC-R5", "quantity": "flow", "unit": "m3/h", "tags": {"role": "cooling", "zone": "R5"}, "limits": {"ll": 5.0}},
            {"point": "FF-R5", "quantity": "flow", "unit": "m3/h", "tags": {"role": "feed", "zone": "R5"}, "limits": {"ll": 1.0}}
        ]),
    );
    s.read("chem-r5", "RUN-R5", &t(0), json!(false))
        .read("chem-r5", "FC-R5", &t(0), json!(3.0)) // low, but the reactor does not run
        .read("chem-r5", "FF-R5", &t(0), json!(2.0))
        .read("chem-r5", "RUN-R5", &t(10), json!(true)) // it starts without cooling
        .read("chem-r5", "FC-R5", &t(20), json!(10.0)) // cooling back
        .read("chem-r5", "FF-R5", &t(30), json!(0.5)) // feed lost
        .read("chem-r5", "RUN-R5", &t(40), json!(false)); // stopped
    let cooling = cause("process.reactor.cooling_lost", "chem-r5", "zone:R5(RUN-R5)");
    let feed = cause("process.reactor.feed_lost", "chem-r5", "zone:R5(FF-R5)");
    let want = vec![
        cooling("raised", "critical", json!(true), None, 10),
        cooling("cleared", "critical", json!(true), None, 20),
        feed("raised", "alarm", json!(0.5), None, 30),
        feed("cleared", "alarm", json!(0.5), None, 40),
    ];
    assert_eq!(of_site(&s.replay().await, "chem-r5"), want);
}

#[tokio::test]
async fn a_key_process_interlock_bypassed_too_often_or_too_long_is_critical_and_not_doubled() {
    const H4: i64 = 4 * 3600;
    let mut s = Script::default();
    s.birth(
        "chem-il",
        hazchem(),
        json!([
            {"point": "IL-P", "quantity": "interlock_bypass", "unit": "bool", "tags": {"process": "chlorination"}},
            {"point": "IL-G", "quantity": "interlock_bypass", "unit": "bool"}
        ]),
    );
    // Bypassed at 10, 30 and 50 s: the third within 24 h is too often.
    let bypasses = [false, true, false, true, false, true, false];
    reads(&mut s, "chem-il", "IL-P", (0, 10), &bypasses);
    reads(&mut s, "chem-il", "IL-G", (0, 10), &[false, true, false]);
    // A day later the earlier bypasses are out of the window; this one lasts past 4 h.
    s.read("chem-il", "IL-P", &t(100_000), json!(true))
        .read("chem-il", "IL-G", &t(100_000 + H4 + 5), json!(false)) // the clock passes 4 h
        .read("chem-il", "IL-P", &t(100_000 + H4 + 10), json!(false));
    let events = s.replay().await;
    let rule = "process.interlock.bypass";
    let point = cause(rule, "chem-il", "IL-P");
    let ev_p = |event, severity, v: bool, secs| point(event, severity, json!(v), None, secs);
    assert_eq!(
        of_rule(&events, "chem-il", rule),
        vec![
            ev_p("raised", "alarm", true, 10),
            ev_p("cleared", "alarm", false, 20),
            ev_p("raised", "alarm", true, 30),
            ev_p("cleared", "alarm", false, 40),
            ev_p("raised", "critical", true, 50),
            ev_p("cleared", "critical", false, 60),
            ev_p("raised", "alarm", true, 100_000),
            ev_p("escalated", "critical", true, 100_000 + H4),
            ev_p("cleared", "critical", false, 100_000 + H4 + 10),
        ]
    );
    let general = cause("interlock.bypass", "chem-il", "IL-G");
    assert_eq!(
        of_rule(&events, "chem-il", "interlock.bypass"),
        vec![
            general("raised", "warning", json!(true), None, 10),
            general("cleared", "warning", json!(false), None, 20),
        ],
        "the key-process interlock has one incident, not two"
    );
    let too_often = events
        .iter()
        .find(|e| e["rule"] == rule && e["severity"] == "critical" && e["event"] == "raised")
        .unwrap();
    assert_eq!(
        too_often["message"],
        "interlock bypass at point IL-P bypassed (key regulated process): more than 2 times within 86400.0 s"
    );
}

#[tokio::test]
async fn major_hazard_tanks_past_their_own_level_temperature_and_pressure_settings() {
    let mut s = Script::default();
    s.birth(
        "chem-tank",
        hazchem(),
        json!([
            {"point": "LT-1", "quantity": "level", "unit": "m", "location": "tank_farm", "limits": {"h": 18.0, "hh": 19.0}},
            {"point": "TT-1", "quantity": "temperature", "unit": "°C", "location": "tank_farm", "limits": {"h": 40.0, "hh": 50.0}},
            {"point": "PT-1", "quantity": "pressure", "unit": "kPa", "location": "tank_farm", "limits": {"h": 1500.0, "hh": 1600.0}},
            // No settings: no level (the issue 8 placeholders are gone).
            {"point": "PT-2", "quantity": "pressure", "unit": "kPa", "location": "tank_farm"}
        ]),
    );
    reads(
        &mut s,
        "chem-tank",
        "LT-1",
        (0, 10),
        &[17.9, 18.0, 19.0, 17.9],
    );
    reads(&mut s, "chem-tank", "TT-1", (40, 10), &[45.0, 39.0]);
    reads(&mut s, "chem-tank", "PT-1", (60, 10), &[1600.0, 1499.0]);
    reads(&mut s, "chem-tank", "PT-2", (80, 0), &[5000.0]);
    let (level, temp, pressure) = (
        "hazchem.tank.level",
        "hazchem.tank.temperature",
        "hazchem.tank.pressure",
    );
    let ev = |event, rule, point, severity, v: f64, th: f64, secs| {
        cause(rule, "chem-tank", point)(event, severity, json!(v), Some(th), secs)
    };
    let want = vec![
        ev("raised", level, "LT-1", "alarm", 18.0, 18.0, 10),
        ev("escalated", level, "LT-1", "critical", 19.0, 19.0, 20),
        ev("cleared", level, "LT-1", "critical", 17.9, 19.0, 30),
        ev("raised", temp, "TT-1", "alarm", 45.0, 40.0, 40),
        ev("cleared", temp, "TT-1", "alarm", 39.0, 40.0, 50),
        ev("raised", pressure, "PT-1", "critical", 1600.0, 1600.0, 60),
        ev("cleared", pressure, "PT-1", "critical", 1499.0, 1600.0, 70),
    ];
    assert_eq!(of_site(&s.replay().await, "chem-tank"), want);
}
