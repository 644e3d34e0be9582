//! Golden tests of the standard rule pack through `gateway replay` (issue 5).
//!
//! Every expected event below is written by hand from the tables (the methane table
//! `methane_levels.csv`, GB/T 50493-2019 and the toxic-gas table in `hazchem.toml`, the Coal
//! Mine Safety Regulations' CO and O2 limits), not recorded from the code's output. Each event
//! is compared as one line (see `golden/mod.rs`).

mod golden;

use golden::{ev, of_site, Script};
use serde_json::{json, Value};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------
// Methane: every row of methane_levels.csv.

/// One methane row, copied by hand from /work/shared/methane_levels.csv:
/// (location, alarm %, power-off %, restore below %).
const METHANE_TABLE: [(&str, f64, Option<f64>, Option<f64>); 11] = [
    ("working_face", 1.0, Some(1.5), Some(1.0)),
    ("upper_corner", 1.0, Some(1.5), Some(1.0)),
    ("working_face_return", 1.0, Some(1.0), Some(1.0)),
    ("intake_airway", 0.5, Some(0.5), Some(0.5)),
    ("heading_face", 1.0, Some(1.5), Some(1.0)),
    ("heading_return", 1.0, Some(1.0), Some(1.0)),
    ("shearer", 1.0, Some(1.5), Some(1.0)),
    ("drainage_roadway", 2.5, Some(2.5), Some(2.5)),
    ("main_return", 0.75, None, None),
    ("coal_bunker", 1.5, Some(1.5), Some(1.5)),
    ("substation", 0.5, Some(0.5), Some(0.5)),
];

/// A methane step: the reading, and the event it must cause (event, severity, threshold).
type Step = (f64, Option<(&'static str, &'static str, f64)>);

/// Below, at and past each level, and back, per row (hand-written).
fn methane_steps(location: &str) -> Vec<Step> {
    // Rows with alarm 1.0, power-off 1.5, restore below 1.0.
    let face: Vec<Step> = vec![
        (0.99, None),                                // below the alarm level
        (1.0, Some(("raised", "alarm", 1.0))),       // at the alarm level
        (1.2, None),                                 // past alarm, below power-off
        (1.5, Some(("escalated", "critical", 1.5))), // at the power-off level
        (2.0, None),                                 // past it
        (1.2, None), // back under power-off: held until below restore
        (1.0, None), // at the restore level: not below it
        (0.99, Some(("cleared", "critical", 1.0))), // below restore
        (1.6, Some(("raised", "critical", 1.5))), // both levels at once: one raise, at the highest
        (0.5, Some(("cleared", "critical", 1.0))),
    ];
    // Rows where alarm == power-off == restore = x: the first crossing is critical.
    let same = |x: f64, below: f64, past: f64| -> Vec<Step> {
        vec![
            (below, None),
            (x, Some(("raised", "critical", x))),
            (past, None),
            (x, None),
            (below, Some(("cleared", "critical", x))),
        ]
    };
    match location {
        "working_face" | "upper_corner" | "heading_face" | "shearer" => face,
        "working_face_return" | "heading_return" => same(1.0, 0.99, 1.5),
        "intake_airway" | "substation" => same(0.5, 0.49, 0.8),
        "drainage_roadway" => same(2.5, 2.49, 3.0),
        "coal_bunker" => same(1.5, 1.49, 2.0),
        // Alarm only (no power-off level): clears below the alarm level.
        "main_return" => vec![
            (0.74, None),
            (0.75, Some(("raised", "alarm", 0.75))),
            (1.5, None),
            (0.75, None),
            (0.74, Some(("cleared", "alarm", 0.75))),
        ],
        other => panic!("no hand-written steps for {other}"),
    }
}

#[test]
fn the_hand_written_methane_table_is_the_shared_table() {
    let csv = include_str!("../../alarm-rules/rules/methane_levels.csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        rows.len(),
        METHANE_TABLE.len(),
        "a row was added or removed: write its golden steps"
    );
    let num = |s: &str| {
        if s.is_empty() {
            None
        } else {
            Some(s.parse::<f64>().unwrap())
        }
    };
    for (row, (loc, alarm, po, restore)) in rows.iter().zip(METHANE_TABLE) {
        assert_eq!(
            (row[0], num(row[2]), num(row[3]), num(row[4])),
            (loc, Some(alarm), po, restore)
        );
    }
}

#[tokio::test]
async fn every_methane_row_below_at_past_each_level_and_back() {
    let mut s = Script::default();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, (loc, ..)) in METHANE_TABLE.iter().enumerate() {
        let site = format!("m-{}", loc.replace('_', "-"));
        s.birth_of(
            &site,
            "coal_mine",
            json!([{"point": "CH4-1", "quantity": "ch4", "unit": "%", "location": loc}]),
        );
        let start = i as i64 * 1000;
        let mut want = Vec::new();
        for (k, (v, e)) in methane_steps(loc).into_iter().enumerate() {
            let secs = start + 10 * k as i64;
            s.read_at(&site, "CH4-1", secs, json!(v));
            if let Some((event, severity, th)) = e {
                want.push(ev(
                    event,
                    &format!("coal.ch4.{loc}"),
                    &site,
                    "CH4-1",
                    severity,
                    json!(v),
                    Some(th),
                    secs,
                ));
            }
        }
        expected.insert(site, want);
    }
    let events = s.replay().await;
    for (site, want) in &expected {
        assert_eq!(&of_site(&events, site), want, "{site}");
    }
    assert_eq!(
        events.len(),
        expected.values().map(Vec::len).sum::<usize>(),
        "no other events"
    );
}

// ---------------------------------------------------------------------------------------
// Power-off failure (AQ 6201; 60 s allowance, project default).

fn zone_birth(s: &mut Script, site: &str) {
    s.birth_of(
        site,
        "coal_mine",
        json!([
            {"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face", "tags": {"zone": "1201"}},
            {"point": "FEED-1201", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "1201"}}
        ]),
    );
}

#[tokio::test]
async fn power_not_cut_within_60_s_of_the_power_off_level_is_a_critical_power_off_failure() {
    let mut s = Script::default();
    zone_birth(&mut s, "m-pof");
    s.read_at("m-pof", "FEED-1201", 0, json!(false))
        .read_at("m-pof", "CH4-101", 0, json!(0.3))
        .read_at("m-pof", "CH4-101", 10, json!(1.6)) // power-off level: the power must go off
        .read_at("m-pof", "FEED-1201", 69, json!(false)) // 59 s: still within the allowance
        .read_at("m-pof", "FEED-1201", 71, json!(false)) // 61 s: past it
        .read_at("m-pof", "FEED-1201", 90, json!(true)) // cut at last
        .read_at("m-pof", "CH4-101", 100, json!(0.5));
    let want = vec![
        ev(
            "raised",
            "coal.ch4.working_face",
            "m-pof",
            "CH4-101",
            "critical",
            json!(1.6),
            Some(1.5),
            10,
        ),
        ev(
            "raised",
            "coal.ch4.power_off_failure",
            "m-pof",
            "zone:1201(CH4-101)",
            "critical",
            json!(1.6),
            None,
            70,
        ),
        ev(
            "cleared",
            "coal.ch4.power_off_failure",
            "m-pof",
            "zone:1201(CH4-101)",
            "critical",
            json!(1.6),
            None,
            90,
        ),
        ev(
            "cleared",
            "coal.ch4.working_face",
            "m-pof",
            "CH4-101",
            "critical",
            json!(0.5),
            Some(1.0),
            100,
        ),
    ];
    assert_eq!(of_site(&s.replay().await, "m-pof"), want);
}

#[tokio::test]
async fn power_cut_in_time_raises_no_power_off_failure() {
    let mut s = Script::default();
    zone_birth(&mut s, "m-cut");
    s.read_at("m-cut", "FEED-1201", 0, json!(false))
        .read_at("m-cut", "CH4-101", 0, json!(0.3))
        .read_at("m-cut", "CH4-101", 10, json!(1.6))
        .read_at("m-cut", "FEED-1201", 30, json!(true)) // cut 20 s after
        .read_at("m-cut", "CH4-101", 200, json!(1.6)) // long past the allowance
        .read_at("m-cut", "CH4-101", 300, json!(0.5));
    let want = vec![
        ev(
            "raised",
            "coal.ch4.working_face",
            "m-cut",
            "CH4-101",
            "critical",
            json!(1.6),
            Some(1.5),
            10,
        ),
        ev(
            "cleared",
            "coal.ch4.working_face",
            "m-cut",
            "CH4-101",
            "critical",
            json!(0.5),
            Some(1.0),
            300,
        ),
    ];
    assert_eq!(of_site(&s.replay().await, "m-cut"), want);
}

// ---------------------------------------------------------------------------------------
// Hazardous-chemical gases (GB/T 50493-2019 art. 5.5.2).

/// The toxic table of hazchem.toml, by hand: (gas, just below 100 %, 100 % OEL, 200 % OEL) in ppm.
const TOXIC_TABLE: [(&str, f64, f64, f64); 6] = [
    ("h2s", 7.0, 7.05, 14.1),
    ("co", 25.6, 25.7, 51.4),
    ("cl2", 0.3, 0.339, 0.678),
    ("nh3", 42.0, 42.3, 84.6),
    ("hcn", 0.8, 0.889, 1.778),
    ("benzene", 3.0, 3.07, 6.14),
];

#[tokio::test]
async fn every_toxic_gas_at_100_and_200_percent_of_its_limit() {
    let mut s = Script::default();
    let points: Vec<Value> = TOXIC_TABLE
        .iter()
        .map(|(gas, ..)| json!({"point": format!("TOX-{gas}"), "quantity": "toxic", "gas": gas, "unit": "ppm", "location": "tank_farm"}))
        .collect();
    s.birth_of("chem-tox", "hazchem", Value::Array(points));
    let mut want = Vec::new();
    for (i, (gas, below, oel, twice)) in TOXIC_TABLE.iter().enumerate() {
        let p = format!("TOX-{gas}");
        let rule = format!("hazchem.toxic.{gas}");
        let t0 = 100 * i as i64;
        s.read_at("chem-tox", &p, t0, json!(below))
            .read_at("chem-tox", &p, t0 + 10, json!(oel))
            .read_at("chem-tox", &p, t0 + 20, json!(twice))
            .read_at("chem-tox", &p, t0 + 30, json!(0.0));
        want.push(ev(
            "raised",
            &rule,
            "chem-tox",
            &p,
            "alarm",
            json!(oel),
            Some(*oel),
            t0 + 10,
        ));
        want.push(ev(
            "escalated",
            &rule,
            "chem-tox",
            &p,
            "critical",
            json!(twice),
            Some(*twice),
            t0 + 20,
        ));
        want.push(ev(
            "cleared",
            &rule,
            "chem-tox",
            &p,
            "critical",
            json!(0.0),
            Some(*twice),
            t0 + 30,
        ));
    }
    assert_eq!(of_site(&s.replay().await, "chem-tox"), want);
}

#[tokio::test]
async fn lel_25_and_50_and_oxygen_at_a_hazchem_site() {
    let mut s = Script::default();
    s.birth_of(
        "chem-01",
        "hazchem",
        json!([
            {"point": "LEL-1", "quantity": "lel", "gas": "ch4", "unit": "%LEL", "location": "loading_bay"},
            {"point": "O2-1", "quantity": "o2", "unit": "%", "location": "warehouse"}
        ]),
    );
    for (secs, v) in [
        (0, 24.9),
        (10, 25.0),
        (20, 49.9),
        (30, 50.0),
        (40, 49.9),
        (50, 24.9),
    ] {
        s.read_at("chem-01", "LEL-1", secs, json!(v));
    }
    for (secs, v) in [
        (100, 19.5),
        (110, 19.4),
        (120, 19.5),
        (130, 23.5),
        (140, 23.6),
        (150, 23.5),
    ] {
        s.read_at("chem-01", "O2-1", secs, json!(v));
    }
    let want = vec![
        ev(
            "raised",
            "hazchem.lel",
            "chem-01",
            "LEL-1",
            "alarm",
            json!(25.0),
            Some(25.0),
            10,
        ),
        ev(
            "escalated",
            "hazchem.lel",
            "chem-01",
            "LEL-1",
            "critical",
            json!(50.0),
            Some(50.0),
            30,
        ),
        ev(
            "deescalated",
            "hazchem.lel",
            "chem-01",
            "LEL-1",
            "alarm",
            json!(49.9),
            Some(25.0),
            40,
        ),
        ev(
            "cleared",
            "hazchem.lel",
            "chem-01",
            "LEL-1",
            "alarm",
            json!(24.9),
            Some(25.0),
            50,
        ),
        // O2: deficiency below 19.5 %, enrichment above 23.5 %.
        ev(
            "raised",
            "hazchem.o2",
            "chem-01",
            "O2-1",
            "alarm",
            json!(19.4),
            Some(19.5),
            110,
        ),
        ev(
            "cleared",
            "hazchem.o2",
            "chem-01",
            "O2-1",
            "alarm",
            json!(19.5),
            Some(19.5),
            120,
        ),
        ev(
            "raised",
            "hazchem.o2",
            "chem-01",
            "O2-1",
            "alarm",
            json!(23.6),
            Some(23.5),
            140,
        ),
        ev(
            "cleared",
            "hazchem.o2",
            "chem-01",
            "O2-1",
            "alarm",
            json!(23.5),
            Some(23.5),
            150,
        ),
    ];
    assert_eq!(of_site(&s.replay().await, "chem-01"), want);
}

#[tokio::test]
async fn co_24_ppm_and_o2_20_percent_at_a_coal_mine() {
    let mut s = Script::default();
    s.birth_of(
        "m-air",
        "coal_mine",
        json!([
            {"point": "CO-1", "quantity": "co", "unit": "ppm", "location": "working_face_return"},
            {"point": "O2-1", "quantity": "o2", "unit": "%", "location": "intake_airway"}
        ]),
    );
    s.read_at("m-air", "CO-1", 0, json!(23.9))
        .read_at("m-air", "CO-1", 10, json!(24.0))
        .read_at("m-air", "CO-1", 20, json!(23.9))
        .read_at("m-air", "O2-1", 30, json!(20.0))
        .read_at("m-air", "O2-1", 40, json!(19.9))
        .read_at("m-air", "O2-1", 50, json!(20.0));
    let want = vec![
        ev(
            "raised",
            "coal.co",
            "m-air",
            "CO-1",
            "alarm",
            json!(24.0),
            Some(24.0),
            10,
        ),
        ev(
            "cleared",
            "coal.co",
            "m-air",
            "CO-1",
            "alarm",
            json!(23.9),
            Some(24.0),
            20,
        ),
        ev(
            "raised",
            "coal.o2.low",
            "m-air",
            "O2-1",
            "alarm",
            json!(19.9),
            Some(20.0),
            40,
        ),
        ev(
            "cleared",
            "coal.o2.low",
            "m-air",
            "O2-1",
            "alarm",
            json!(20.0),
            Some(20.0),
            50,
        ),
    ];
    assert_eq!(of_site(&s.replay().await, "m-air"), want);
}

// ---------------------------------------------------------------------------------------
// Interlocks: every kind of site.

#[tokio::test]
async fn interlock_bypass_warns_at_once_escalates_after_8_h_and_a_trip_is_an_alarm_at_any_site() {
    const EIGHT_H: i64 = 8 * 3600;
    for category in ["coal_mine", "hazchem", "tailings", "non_coal_mine"] {
        let site = format!("il-{}", category.replace('_', "-"));
        let mut s = Script::default();
        s.birth_of(
            &site,
            category,
            json!([
                {"point": "IL-1", "quantity": "interlock_bypass", "unit": "bool", "location": "reactor"},
                {"point": "TR-1", "quantity": "interlock_trip", "unit": "bool"}
            ]),
        );
        s.read_at(&site, "IL-1", 0, json!(false))
            .read_at(&site, "TR-1", 0, json!(false))
            .read_at(&site, "IL-1", 10, json!(true)) // bypassed: a warning at once
            .read_at(&site, "TR-1", 10 + EIGHT_H - 1, json!(false)) // not yet 8 h
            .read_at(&site, "TR-1", 10 + EIGHT_H + 5, json!(false)) // the clock passes 8 h
            .read_at(&site, "TR-1", 10 + EIGHT_H + 10, json!(true)) // tripped
            .read_at(&site, "IL-1", 10 + EIGHT_H + 20, json!(false))
            .read_at(&site, "TR-1", 10 + EIGHT_H + 30, json!(false));
        let want = vec![
            ev(
                "raised",
                "interlock.bypass",
                &site,
                "IL-1",
                "warning",
                json!(true),
                None,
                10,
            ),
            ev(
                "escalated",
                "interlock.bypass",
                &site,
                "IL-1",
                "alarm",
                json!(true),
                None,
                10 + EIGHT_H,
            ),
            ev(
                "raised",
                "interlock.trip",
                &site,
                "TR-1",
                "alarm",
                json!(true),
                None,
                10 + EIGHT_H + 10,
            ),
            ev(
                "cleared",
                "interlock.bypass",
                &site,
                "IL-1",
                "alarm",
                json!(false),
                None,
                10 + EIGHT_H + 20,
            ),
            ev(
                "cleared",
                "interlock.trip",
                &site,
                "TR-1",
                "alarm",
                json!(false),
                None,
                10 + EIGHT_H + 30,
            ),
        ];
        assert_eq!(of_site(&s.replay().await, &site), want, "{category}");
    }
}
