//! Golden tests of the coal-mine ventilation and feed rules (issue 25) through `gateway
//! replay`. Expected events are written by hand from the Coal Mine Safety Regulations'
//! figures (CO2 art. 135/172/173, the wind-speed table of art. 136, air temperature art. 655),
//! the fan and feed rules' behaviour, and the configuration check of a methane zone.

mod golden;

use golden::{assert_sites, cause, of_rule, of_site, t, Script};
use serde_json::{json, Value};

fn coal() -> Value {
    json!({"category": "coal_mine"})
}

/// A reading and the event it must cause: (value, Some((event, severity, threshold))) or
/// (value, None).
type Step = (f64, Option<(&'static str, &'static str, f64)>);

/// One site per row, each with one point of `quantity` (in `unit`) at the row's location read
/// every 10 s through the row's steps; the events each site must give, by hand.
fn one_site_per_row(
    s: &mut Script,
    (quantity, unit): (&str, &str),
    rows: Vec<(&str, &str, Vec<Step>)>,
) -> Vec<(String, Vec<String>)> {
    let mut want = Vec::new();
    for (i, (rule, location, steps)) in rows.into_iter().enumerate() {
        let site = format!("{quantity}-{i}-{}", location.replace('_', "-"));
        let expect = cause(rule, &site, "P-1");
        let point =
            json!({"point": "P-1", "quantity": quantity, "unit": unit, "location": location});
        s.birth(&site, coal(), json!([point]));
        let mut lines = Vec::new();
        for (k, (v, e)) in steps.iter().enumerate() {
            let secs = 100 * i as i64 + 10 * k as i64;
            s.read(&site, "P-1", &t(secs), json!(v));
            if let Some((event, severity, th)) = e {
                lines.push(expect(event, severity, json!(v), Some(*th), secs));
            }
        }
        want.push((site.clone(), lines));
    }
    want
}

// ---------------------------------------------------------------------------------------
// Carbon dioxide: intake above 0.5 %, district and face returns above 1.5 % (stop work,
// withdraw: critical), main returns above 0.75 %. "Exceeds": at the level nothing, past it a
// raise, back at it the clear.

/// (rule, location, level %, severity, just below, just above), by hand from the regulation.
const CO2_TABLE: [(&str, &str, f64, &str, f64, f64); 5] = [
    ("coal.co2.intake", "intake_airway", 0.5, "alarm", 0.49, 0.51),
    (
        "coal.co2.return",
        "district_return",
        1.5,
        "critical",
        1.49,
        1.51,
    ),
    (
        "coal.co2.return",
        "working_face_return",
        1.5,
        "critical",
        1.49,
        1.51,
    ),
    (
        "coal.co2.return",
        "heading_return",
        1.5,
        "critical",
        1.49,
        1.51,
    ),
    (
        "coal.co2.main_return",
        "main_return",
        0.75,
        "alarm",
        0.74,
        0.76,
    ),
];

#[tokio::test]
async fn carbon_dioxide_above_each_level_of_the_regulation_and_back() {
    let rows = CO2_TABLE
        .into_iter()
        .map(|(rule, loc, level, severity, below, above)| {
            let steps: Vec<Step> = vec![
                (below, None),
                (level, None), // at the level: not above it
                (above, Some(("raised", severity, level))),
                (2.0, None),
                (level, Some(("cleared", severity, level))),
            ];
            (rule, loc, steps)
        })
        .collect();
    let mut s = Script::default();
    let want = one_site_per_row(&mut s, ("co2", "%"), rows);
    assert_sites(&s.replay().await, &want);
}

// ---------------------------------------------------------------------------------------
// Wind speed: the regulation's table of permitted air speeds (art. 136), by airway kind.

/// (rule, location, minimum m/s, maximum m/s), by hand from the table.
const WIND_TABLE: [(&str, &str, Option<f64>, Option<f64>); 15] = [
    ("coal.wind.face", "working_face", Some(0.25), Some(4.0)),
    ("coal.wind.face", "heading_face", Some(0.25), Some(4.0)),
    (
        "coal.wind.rock_heading",
        "rock_heading",
        Some(0.15),
        Some(4.0),
    ),
    (
        "coal.wind.district_airway",
        "district_airway",
        Some(0.25),
        Some(6.0),
    ),
    (
        "coal.wind.district_airway",
        "district_return",
        Some(0.25),
        Some(6.0),
    ),
    (
        "coal.wind.district_airway",
        "intake_airway",
        Some(0.25),
        Some(6.0),
    ),
    (
        "coal.wind.district_airway",
        "working_face_return",
        Some(0.25),
        Some(6.0),
    ),
    ("coal.wind.main_airway", "main_airway", None, Some(8.0)),
    ("coal.wind.main_airway", "main_return", None, Some(8.0)),
    (
        "coal.wind.trolley_roadway",
        "trolley_roadway",
        Some(1.0),
        Some(8.0),
    ),
    (
        "coal.wind.shaft_personnel",
        "shaft_personnel",
        None,
        Some(8.0),
    ),
    (
        "coal.wind.shaft_material",
        "shaft_material",
        None,
        Some(12.0),
    ),
    (
        "coal.wind.ventilation_shaft",
        "ventilation_shaft",
        None,
        Some(15.0),
    ),
    ("coal.wind.air_bridge", "air_bridge", None, Some(10.0)),
    ("coal.wind.walkway", "walkway", Some(0.15), None),
];

#[tokio::test]
async fn every_row_of_the_wind_speed_table_at_and_past_its_minimum_and_maximum_and_back() {
    let rows = WIND_TABLE
        .into_iter()
        .map(|(rule, loc, min, max)| {
            let mut steps: Vec<Step> = Vec::new();
            if let Some(min) = min {
                // At the minimum: allowed; below it: raised; back at it: cleared.
                steps.push((min, None));
                steps.push((min - 0.05, Some(("raised", "alarm", min))));
                steps.push((min, Some(("cleared", "alarm", min))));
            }
            if let Some(max) = max {
                steps.push((max, None));
                steps.push((max + 0.5, Some(("raised", "alarm", max))));
                steps.push((max, Some(("cleared", "alarm", max))));
            }
            (rule, loc, steps)
        })
        .collect();
    let mut s = Script::default();
    let want = one_site_per_row(&mut s, ("wind_speed", "m/s"), rows);
    assert_sites(&s.replay().await, &want);
}

// ---------------------------------------------------------------------------------------
// Air temperature: faces above 26 °C (shorter hours) and 30 °C (stop work); chambers of
// electrical equipment above 30 °C and 34 °C.

/// (rule, location, shorten-the-hours level °C, stop-work level °C), by hand (art. 655).
const TEMPERATURE_TABLE: [(&str, &str, f64, f64); 4] = [
    ("coal.temperature.face", "working_face", 26.0, 30.0),
    ("coal.temperature.face", "rock_heading", 26.0, 30.0),
    ("coal.temperature.machine_room", "machine_room", 30.0, 34.0),
    ("coal.temperature.machine_room", "substation", 30.0, 34.0),
];

#[tokio::test]
async fn air_temperature_of_faces_and_machine_rooms_past_each_level_and_back() {
    let rows = TEMPERATURE_TABLE
        .into_iter()
        .map(|(rule, loc, shorten, stop)| {
            let steps: Vec<Step> = vec![
                (shorten, None), // "exceeds": at the level nothing
                (shorten + 0.5, Some(("raised", "warning", shorten))),
                (stop, None),
                (stop + 0.5, Some(("escalated", "alarm", stop))),
                (stop - 1.0, Some(("deescalated", "warning", shorten))),
                (shorten, Some(("cleared", "warning", shorten))),
            ];
            (rule, loc, steps)
        })
        .collect();
    let mut s = Script::default();
    let want = one_site_per_row(&mut s, ("temperature", "°C"), rows);
    assert_sites(&s.replay().await, &want);
}

// ---------------------------------------------------------------------------------------
// Fans, the fan-power lockout, feed status.

#[tokio::test]
async fn a_stopped_main_fan_is_critical_and_a_stopped_local_fan_must_cut_its_zone_within_60_s() {
    let mut s = Script::default();
    s.birth(
        "m-fan",
        coal(),
        json!([
            {"point": "FAN-M", "quantity": "fan_running", "unit": "bool", "tags": {"fan": "main"}},
            {"point": "FAN-L", "quantity": "fan_running", "unit": "bool", "tags": {"fan": "local", "zone": "H1"}},
            {"point": "FEED-H1", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "H1"}}
        ]),
    );
    s.read("m-fan", "FAN-M", &t(0), json!(true))
        .read("m-fan", "FAN-L", &t(0), json!(true))
        .read("m-fan", "FEED-H1", &t(0), json!(false))
        .read("m-fan", "FAN-M", &t(5), json!(false)) // main fan stopped
        .read("m-fan", "FAN-M", &t(8), json!(true))
        .read("m-fan", "FAN-L", &t(10), json!(false)) // local fan stopped: the heading's power must go
        .read("m-fan", "FEED-H1", &t(69), json!(false)) // 59 s: within the allowance
        .read("m-fan", "FEED-H1", &t(71), json!(false)) // 61 s: the lockout failed (at 70 s)
        .read("m-fan", "FEED-H1", &t(90), json!(true)) // cut at last
        .read("m-fan", "FAN-L", &t(100), json!(true));
    let main = cause("coal.fan.main_stopped", "m-fan", "FAN-M");
    let local = cause("coal.fan.local_stopped", "m-fan", "FAN-L");
    let lockout = cause("coal.fan.local_lockout_failure", "m-fan", "zone:H1(FAN-L)");
    let want = vec![
        main("raised", "critical", json!(false), None, 5),
        main("cleared", "critical", json!(true), None, 8),
        local("raised", "alarm", json!(false), None, 10),
        lockout("raised", "critical", json!(false), None, 70),
        lockout("cleared", "critical", json!(false), None, 90),
        local("cleared", "alarm", json!(true), None, 100),
    ];
    assert_eq!(of_site(&s.replay().await, "m-fan"), want);
}

fn feed_zone() -> Value {
    json!([
        {"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face", "tags": {"zone": "1201"}},
        {"point": "CMD-1201", "quantity": "power_off_command", "unit": "bool", "tags": {"zone": "1201"}},
        {"point": "FEED-1201", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "1201"}}
    ])
}

#[tokio::test]
async fn a_power_off_command_whose_feed_stays_live_and_a_feed_off_without_a_command() {
    let mut s = Script::default();
    s.birth("m-feed", coal(), feed_zone());
    s.read("m-feed", "CH4-101", &t(0), json!(0.3))
        .read("m-feed", "CMD-1201", &t(0), json!(false))
        .read("m-feed", "FEED-1201", &t(0), json!(false))
        .read("m-feed", "CMD-1201", &t(10), json!(true)) // commanded off
        .read("m-feed", "FEED-1201", &t(39), json!(false)) // 29 s: within 30 s
        .read("m-feed", "FEED-1201", &t(41), json!(false)) // still live: not executed (at 40 s)
        .read("m-feed", "FEED-1201", &t(50), json!(true)) // executed at last
        .read("m-feed", "CMD-1201", &t(60), json!(false)) // command ends, feed stays off
        .read("m-feed", "FEED-1201", &t(70), json!(false)); // power back
    let z = "zone:1201(CMD-1201)";
    let not_executed = cause("coal.feed.command_not_executed", "m-feed", z);
    let off = cause("coal.feed.off_without_command", "m-feed", z);
    let want = vec![
        not_executed("raised", "critical", json!(true), None, 40),
        not_executed("cleared", "critical", json!(true), None, 50),
        off("raised", "warning", json!(false), None, 60),
        off("cleared", "warning", json!(false), None, 70),
    ];
    assert_eq!(of_site(&s.replay().await, "m-feed"), want);
}

// ---------------------------------------------------------------------------------------
// Configuration: a methane zone without a power_cut point (feed sensor).

#[tokio::test]
async fn a_methane_zone_without_a_power_cut_point_raises_the_configuration_incident() {
    let mut s = Script::default();
    let ch4 = |point: &str, loc: &str, zone: &str| json!({"point": point, "quantity": "ch4", "unit": "%", "location": loc, "tags": {"zone": zone}});
    // Zone 1202: a face sensor and no feed sensor. Zone 1203: a main return sensor (alarm
    // only, no power-off level): nothing to prove.
    s.birth(
        "m-cfg",
        coal(),
        json!([
            ch4("CH4-201", "working_face", "1202"),
            ch4("CH4-301", "main_return", "1203")
        ]),
    );
    s.read("m-cfg", "CH4-201", &t(0), json!(0.3))
        .read("m-cfg", "CH4-301", &t(100), json!(0.3));
    // The next birth adds the zone's feed sensor.
    s.birth(
        "m-cfg",
        coal(),
        json!([
            ch4("CH4-201", "working_face", "1202"),
            ch4("CH4-301", "main_return", "1203"),
            {"point": "FEED-1202", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "1202"}}
        ]),
    );
    let rule = "coal.ch4.zone_without_power_cut";
    let config = cause(rule, "m-cfg", "zone:1202(CH4-201)");
    let events = s.replay().await;
    let want = vec![
        // At the birth (the replay clock starts at the first reading's time): no value yet.
        config("raised", "alarm", Value::Null, None, 0),
        config("cleared", "alarm", json!(0.3), None, 100),
    ];
    assert_eq!(of_rule(&events, "m-cfg", rule), want);
    assert_eq!(of_site(&events, "m-cfg"), want, "nothing else");
    let raised = events.iter().find(|e| e["event"] == "raised").unwrap();
    assert_eq!(
        raised["message"],
        "zone 1202: no power cut point beside CH4-201: configuration incomplete, its power cannot be proven cut"
    );
}

#[test]
fn the_wind_table_covers_every_wind_rule_of_the_pack() {
    for rule in alarm_rules::RuleSet::builtin().ids() {
        if rule.starts_with("coal.wind.") {
            assert!(
                WIND_TABLE.iter().any(|row| row.0 == rule),
                "{rule}: write its golden steps"
            );
        }
    }
}
