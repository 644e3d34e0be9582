//! Golden tests of the weather linkage pack (`alarm-rules/rules/weather.toml`, issue 8) through
//! `gateway replay`, with the Chinese CAP fixtures of the weather crate and a CENC earthquake
//! document. Expected events are written by hand from the rule file's levels; each is one line:
//! `event rule site/subject severity value threshold @time warnings`.

mod golden;

use golden::{cap, cenc, ev, of_site, Script};
use serde_json::{json, Value};

const ORANGE: &str = "41050041600000_20260728100000/11B03";
const RED: &str = "41050041600000_20260728130000/11B03";
const LIGHTNING: &str = "41052241600000_20260728150000/11B14";
const HEAT: &str = "41010041600000_20260728120000/11B09";

fn mine_points() -> Value {
    json!([
        {"point": "WL-1", "quantity": "water_level", "unit": "m"},
        {"point": "RF-1", "quantity": "rainfall", "unit": "mm/h"},
        {"point": "D-1", "quantity": "displacement", "unit": "mm"}
    ])
}

// ---------------------------------------------------------------------------------------
// Rainstorm orange / red: tailings and open pits, tighter levels and one step more severe.

#[tokio::test]
async fn a_rainstorm_orange_tightens_tailings_and_open_pit_levels_and_raises_severity_until_the_cancel(
) {
    let mut s = Script::default();
    s.birth_in("tail-01", "tailings", "410522", 36.10, 114.30, mine_points())
        .birth_in("tail-02", "tailings", "410622", 35.50, 114.10, mine_points()) // Hebi: not under 410500
        .birth_in("pit-01", "open_pit", "410523", 35.95, 114.35, mine_points())
        .birth_in("chem-01", "hazchem", "410502", 36.10, 114.40, json!([{"point": "TT-1", "quantity": "temperature", "unit": "°C", "location": "tank_farm"}]))
        .birth_in("mine-01", "coal_mine", "410522", 36.30, 114.30, json!([{"point": "WL-1", "quantity": "water_level", "unit": "m"}]));
    for site in ["tail-01", "tail-02"] {
        // Below the base levels of water level (15 m) and rainfall (20 mm/h); displacement past
        // its base warning level (30 mm).
        s.read(site, "WL-1", "2026-07-28T01:00:00Z", json!(14.5))
            .read(site, "RF-1", "2026-07-28T01:00:00Z", json!(16.0))
            .read(site, "D-1", "2026-07-28T01:00:00Z", json!(40.0));
    }
    s.read("pit-01", "WL-1", "2026-07-28T01:00:00Z", json!(4.5))
        .read("pit-01", "RF-1", "2026-07-28T01:00:00Z", json!(16.0))
        .read("pit-01", "D-1", "2026-07-28T01:00:00Z", json!(25.0))
        .read("chem-01", "TT-1", "2026-07-28T01:00:00Z", json!(38.0))
        .read("mine-01", "WL-1", "2026-07-28T01:00:00Z", json!(100.0))
        .push(cap("cn_rainstorm_orange_410500.xml")) // 10:00+08:00 = 02:00Z
        .push(cap("cn_rainstorm_red_410500_update.xml")) // 05:00Z: same linkage (orange or above)
        .read("tail-01", "RF-1", "2026-07-28T06:00:00Z", json!(35.0)) // past the tightened alarm level 30
        .push(cap("cn_rainstorm_410500_cancel.xml")); // 10:00Z
    let events = s.replay().await;

    let at0 = "2026-07-28T01:00:00.000Z";
    let at_orange = "2026-07-28T02:00:00.000Z";
    let at_red = "2026-07-28T05:00:00.000Z";
    let at_cancel = "2026-07-28T10:00:00.000Z";
    assert_eq!(
        of_site(&events, "tail-01"),
        vec![
            ev(
                "raised",
                "tailings.displacement",
                "tail-01",
                "D-1",
                "warning",
                json!(40.0),
                Some(30.0),
                (at0, &[])
            ),
            // Orange: water level 14 m (was 15), rainfall 15 mm/h (was 20), displacement alarm
            // level 35 mm (was 50); each one step more severe.
            ev(
                "raised",
                "tailings.water_level",
                "tail-01",
                "WL-1",
                "alarm",
                json!(14.5),
                Some(14.0),
                (at_orange, &[ORANGE])
            ),
            ev(
                "raised",
                "tailings.rainfall",
                "tail-01",
                "RF-1",
                "alarm",
                json!(16.0),
                Some(15.0),
                (at_orange, &[ORANGE])
            ),
            ev(
                "escalated",
                "tailings.displacement",
                "tail-01",
                "D-1",
                "critical",
                json!(40.0),
                Some(35.0),
                (at_orange, &[ORANGE])
            ),
            // Red (the update) at 05:00Z: the same linkage (orange or above), so no severity
            // changes; each standing incident's warnings move to the red alert, said by the
            // gateway in a `commented` event (in the order of their causes).
            ev(
                "commented",
                "tailings.displacement",
                "tail-01",
                "D-1",
                "critical",
                json!(40.0),
                Some(35.0),
                (at_red, &[RED])
            ),
            ev(
                "commented",
                "tailings.rainfall",
                "tail-01",
                "RF-1",
                "alarm",
                json!(16.0),
                Some(15.0),
                (at_red, &[RED])
            ),
            ev(
                "commented",
                "tailings.water_level",
                "tail-01",
                "WL-1",
                "alarm",
                json!(14.5),
                Some(14.0),
                (at_red, &[RED])
            ),
            // Rain at 35 mm/h passes the tightened alarm level 30: critical.
            ev(
                "escalated",
                "tailings.rainfall",
                "tail-01",
                "RF-1",
                "critical",
                json!(35.0),
                Some(30.0),
                ("2026-07-28T06:00:00.000Z", &[RED])
            ),
            // Cancel: the base levels again.
            ev(
                "cleared",
                "tailings.water_level",
                "tail-01",
                "WL-1",
                "alarm",
                json!(14.5),
                Some(15.0),
                (at_cancel, &[])
            ),
            ev(
                "deescalated",
                "tailings.rainfall",
                "tail-01",
                "RF-1",
                "warning",
                json!(35.0),
                Some(20.0),
                (at_cancel, &[])
            ),
            ev(
                "deescalated",
                "tailings.displacement",
                "tail-01",
                "D-1",
                "warning",
                json!(40.0),
                Some(30.0),
                (at_cancel, &[])
            ),
        ]
    );
    assert_eq!(
        of_site(&events, "pit-01"),
        vec![
            ev(
                "raised",
                "open_pit.water_level",
                "pit-01",
                "WL-1",
                "alarm",
                json!(4.5),
                Some(4.0),
                (at_orange, &[ORANGE])
            ),
            ev(
                "raised",
                "open_pit.rainfall",
                "pit-01",
                "RF-1",
                "alarm",
                json!(16.0),
                Some(15.0),
                (at_orange, &[ORANGE])
            ),
            ev(
                "raised",
                "open_pit.displacement",
                "pit-01",
                "D-1",
                "alarm",
                json!(25.0),
                Some(20.0),
                (at_orange, &[ORANGE])
            ),
            // Red: the same linkage; the warnings move to the red alert.
            ev(
                "commented",
                "open_pit.displacement",
                "pit-01",
                "D-1",
                "alarm",
                json!(25.0),
                Some(20.0),
                (at_red, &[RED])
            ),
            ev(
                "commented",
                "open_pit.rainfall",
                "pit-01",
                "RF-1",
                "alarm",
                json!(16.0),
                Some(15.0),
                (at_red, &[RED])
            ),
            ev(
                "commented",
                "open_pit.water_level",
                "pit-01",
                "WL-1",
                "alarm",
                json!(4.5),
                Some(4.0),
                (at_red, &[RED])
            ),
            ev(
                "cleared",
                "open_pit.water_level",
                "pit-01",
                "WL-1",
                "alarm",
                json!(4.5),
                Some(5.0),
                (at_cancel, &[])
            ),
            ev(
                "cleared",
                "open_pit.rainfall",
                "pit-01",
                "RF-1",
                "alarm",
                json!(16.0),
                Some(20.0),
                (at_cancel, &[])
            ),
            ev(
                "cleared",
                "open_pit.displacement",
                "pit-01",
                "D-1",
                "alarm",
                json!(25.0),
                Some(30.0),
                (at_cancel, &[])
            ),
        ]
    );
    // Outside the warning's region: the base levels only.
    assert_eq!(
        of_site(&events, "tail-02"),
        vec![ev(
            "raised",
            "tailings.displacement",
            "tail-02",
            "D-1",
            "warning",
            json!(40.0),
            Some(30.0),
            (at0, &[])
        )]
    );
    // Under the warning, but no rainstorm linkage for the points of these kinds of site; the
    // coal mine has its stop-and-withdraw check (issue 25, golden_rainstorm_pollution.rs).
    assert_eq!(of_site(&events, "chem-01"), Vec::<String>::new());
    assert!(of_site(&events, "mine-01")
        .iter()
        .all(|l| l.contains(" coal.rainstorm.withdraw mine-01/zone:site ")));
    assert_eq!(events.len(), 21 + 3, "{events:#?}");
}

// ---------------------------------------------------------------------------------------
// Lightning yellow: loading at a hazchem site.

#[tokio::test]
async fn loading_at_a_hazchem_site_under_a_lightning_yellow_warning_is_an_incident() {
    let ops = json!([
        {"point": "LOAD-1", "quantity": "operation_active", "unit": "bool", "location": "loading_bay", "tags": {"operation": "loading"}},
        {"point": "HOT-1", "quantity": "operation_active", "unit": "bool", "location": "reactor", "tags": {"operation": "hot_work"}}
    ]);
    let mut s = Script::default();
    // The warning's polygon: 36.0..36.2 N, 114.2..114.5 E.
    s.birth_in("chem-01", "hazchem", "410522", 36.10, 114.40, ops.clone())
        .birth_in("chem-02", "hazchem", "410522", 36.50, 114.30, ops.clone()) // north of the polygon
        .birth_in("tail-01", "tailings", "410522", 36.10, 114.30, ops); // in it, not hazchem
    for site in ["chem-01", "chem-02", "tail-01"] {
        s.read(site, "LOAD-1", "2026-07-28T06:30:00Z", json!(true))
            .read(site, "HOT-1", "2026-07-28T06:30:00Z", json!(true));
    }
    s.push(cap("cn_lightning_yellow_polygon.xml")) // 15:00+08:00 = 07:00Z, no <expires>: 24 h
        .read("chem-01", "LOAD-1", "2026-07-28T07:30:00Z", json!(false))
        .read("chem-01", "LOAD-1", "2026-07-28T08:00:00Z", json!(true))
        .read("chem-01", "HOT-1", "2026-07-29T07:00:00Z", json!(true)); // the warning has expired
    let events = s.replay().await;
    let rule = "hazchem.loading.lightning";
    assert_eq!(
        of_site(&events, "chem-01"),
        vec![
            ev(
                "raised",
                rule,
                "chem-01",
                "LOAD-1",
                "alarm",
                json!(true),
                None,
                ("2026-07-28T07:00:00.000Z", &[LIGHTNING])
            ),
            ev(
                "cleared",
                rule,
                "chem-01",
                "LOAD-1",
                "alarm",
                json!(false),
                None,
                ("2026-07-28T07:30:00.000Z", &[LIGHTNING])
            ),
            ev(
                "raised",
                rule,
                "chem-01",
                "LOAD-1",
                "alarm",
                json!(true),
                None,
                ("2026-07-28T08:00:00.000Z", &[LIGHTNING])
            ),
            ev(
                "cleared",
                rule,
                "chem-01",
                "LOAD-1",
                "alarm",
                json!(true),
                None,
                ("2026-07-29T07:00:00.000Z", &[])
            ),
        ]
    );
    assert_eq!(
        events.len(),
        4,
        "nothing at chem-02 (outside), tail-01 (not hazchem) or for hot work: {events:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// High temperature orange: tank temperature and pressure at hazchem sites.

#[tokio::test]
async fn a_high_temperature_orange_warning_tightens_tank_temperature_and_pressure() {
    let tanks = json!([
        {"point": "TT-1", "quantity": "temperature", "unit": "°C", "location": "tank_farm", "limits": {"h": 40.0, "hh": 50.0}},
        {"point": "PT-1", "quantity": "pressure", "unit": "kPa", "location": "tank_farm", "limits": {"h": 1500.0, "hh": 1600.0}},
        {"point": "TT-R", "quantity": "temperature", "unit": "°C", "location": "reactor"}
    ]);
    let mut s = Script::default();
    // The warning's circle: 30 km around 34.75 N 113.62 E (Zhengzhou).
    s.birth_in("chem-zz", "hazchem", "410122", 34.76, 113.65, tanks.clone())
        .birth_in("chem-ay", "hazchem", "410522", 36.10, 114.40, tanks);
    for site in ["chem-zz", "chem-ay"] {
        // Below the tanks' H settings (40 degC, 1500 kPa), past them 5 degC / 100 kPa lower.
        s.read(site, "TT-1", "2026-07-28T03:00:00Z", json!(37.0))
            .read(site, "PT-1", "2026-07-28T03:00:00Z", json!(1450.0))
            .read(site, "TT-R", "2026-07-28T03:00:00Z", json!(38.0));
    }
    s.push(cap("cn_high_temperature_circle.xml")) // 12:00+08:00 = 04:00Z, until 12:00Z
        .read("chem-zz", "TT-1", "2026-07-28T05:00:00Z", json!(46.0)) // past the tightened alarm level 45
        .read("chem-zz", "TT-R", "2026-07-28T12:00:00Z", json!(38.0)); // the warning has expired
    let events = s.replay().await;
    let at = "2026-07-28T04:00:00.000Z";
    let end = "2026-07-28T12:00:00.000Z";
    assert_eq!(
        of_site(&events, "chem-zz"),
        vec![
            // The tanks' settings 5 degC / 100 kPa lower, same severities (H: alarm, HH:
            // critical; no severity step for heat).
            ev(
                "raised",
                "hazchem.tank.temperature",
                "chem-zz",
                "TT-1",
                "alarm",
                json!(37.0),
                Some(35.0),
                (at, &[HEAT])
            ),
            ev(
                "raised",
                "hazchem.tank.pressure",
                "chem-zz",
                "PT-1",
                "alarm",
                json!(1450.0),
                Some(1400.0),
                (at, &[HEAT])
            ),
            ev(
                "escalated",
                "hazchem.tank.temperature",
                "chem-zz",
                "TT-1",
                "critical",
                json!(46.0),
                Some(45.0),
                ("2026-07-28T05:00:00.000Z", &[HEAT])
            ),
            // Expired: the tanks' own settings (HH 50, H 40 degC; H 1500 kPa).
            ev(
                "deescalated",
                "hazchem.tank.temperature",
                "chem-zz",
                "TT-1",
                "alarm",
                json!(46.0),
                Some(40.0),
                (end, &[])
            ),
            ev(
                "cleared",
                "hazchem.tank.pressure",
                "chem-zz",
                "PT-1",
                "alarm",
                json!(1450.0),
                Some(1500.0),
                (end, &[])
            ),
        ]
    );
    assert_eq!(
        events.len(),
        5,
        "nothing outside the circle (chem-ay) or for the reactor: {events:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Earthquakes: one inspection incident per tailings or coal-mine site under the quake's circle.

#[tokio::test]
async fn a_magnitude_4_quake_raises_one_inspection_per_covered_tailings_and_coal_site() {
    let mut s = Script::default();
    s.birth_in("tail-01", "tailings", "410522", 36.10, 114.30, mine_points()) // 4.5 km from the epicentre
        .birth_in("mine-01", "coal_mine", "410522", 36.30, 114.30, json!([{"point": "CH4-1", "quantity": "ch4", "unit": "%", "location": "main_return"}])) // 22 km
        .birth_in("mine-far", "coal_mine", "130400", 37.50, 114.30, json!([{"point": "CH4-1", "quantity": "ch4", "unit": "%", "location": "main_return"}])) // 156 km
        .birth_in("chem-01", "hazchem", "410522", 36.10, 114.40, json!([{"point": "TT-1", "quantity": "temperature", "unit": "°C", "location": "tank_farm"}]))
        .birth_in("pit-01", "open_pit", "410523", 36.05, 114.35, mine_points());
    s.read("tail-01", "WL-1", "2026-07-28T08:00:05Z", json!(10.0))
        // 16:00 Beijing time = 08:00Z; M4.6: a circle of 50 km.
        .push(cenc(json!([{"id": "CC20260728160000", "M": "4.6", "EPI_LAT": "36.10", "EPI_LON": "114.35", "EPI_DEPTH": "10",
            "LOCATION_C": "河南安阳市安阳县", "O_TIME": "2026-07-28 16:00:00", "AUTO_FLAG": "M"}])))
        // An aftershock below M4: no warning at all.
        .read("tail-01", "WL-1", "2026-07-28T08:30:05Z", json!(10.0))
        .push(cenc(json!([{"id": "CC20260728163000", "M": "3.5", "EPI_LAT": "36.11", "EPI_LON": "114.34", "O_TIME": "2026-07-28 16:30:00"}])))
        // M6.1 at 37.0 N 115.5 E: a circle of 200 km; strong (M6 and more): critical.
        .read("tail-01", "WL-1", "2026-07-28T09:00:05Z", json!(10.0))
        .push(cenc(json!([{"id": "CC20260728170000", "M": "6.1", "EPI_LAT": "37.00", "EPI_LON": "115.50", "O_TIME": "2026-07-28 17:00:00"}])))
        // The first quake's warning ends (24 h); the M6.1 one goes on.
        .read("tail-01", "WL-1", "2026-07-29T08:00:05Z", json!(10.0))
        // And the M6.1's.
        .read("tail-01", "WL-1", "2026-07-29T09:00:05Z", json!(10.0));
    let events = s.replay().await;
    let q1 = "cenc/CC20260728160000";
    let q3 = "cenc/CC20260728170000";
    // The M6.1 warning ends exactly 24 h after its origin time (17:00 Beijing = 09:00Z): replay
    // fires the timer at its own time, before the next line.
    let (at1, at3, end) = (
        "2026-07-28T08:00:05.000Z",
        "2026-07-28T09:00:05.000Z",
        "2026-07-29T09:00:00.000Z",
    );
    let rule = "quake.inspection";
    assert_eq!(
        of_site(&events, "tail-01"),
        vec![
            ev(
                "raised",
                rule,
                "tail-01",
                "zone:site",
                "alarm",
                json!(4.6),
                Some(4.0),
                (at1, &[q1])
            ),
            ev(
                "escalated",
                rule,
                "tail-01",
                "zone:site",
                "critical",
                json!(6.1),
                Some(6.0),
                (at3, &[q1, q3])
            ),
            // The first quake's warning ends (24 h after its origin): the inspection stands
            // for the M6.1 alone, and says so.
            ev(
                "commented",
                rule,
                "tail-01",
                "zone:site",
                "critical",
                json!(6.1),
                Some(6.0),
                ("2026-07-29T08:00:00.000Z", &[q3])
            ),
            ev(
                "cleared",
                rule,
                "tail-01",
                "zone:site",
                "critical",
                Value::Null,
                None,
                (end, &[])
            ),
        ]
    );
    assert_eq!(
        of_site(&events, "mine-01"),
        vec![
            ev(
                "raised",
                rule,
                "mine-01",
                "zone:site",
                "alarm",
                json!(4.6),
                Some(4.0),
                (at1, &[q1])
            ),
            ev(
                "escalated",
                rule,
                "mine-01",
                "zone:site",
                "critical",
                json!(6.1),
                Some(6.0),
                (at3, &[q1, q3])
            ),
            ev(
                "commented",
                rule,
                "mine-01",
                "zone:site",
                "critical",
                json!(6.1),
                Some(6.0),
                ("2026-07-29T08:00:00.000Z", &[q3])
            ),
            ev(
                "cleared",
                rule,
                "mine-01",
                "zone:site",
                "critical",
                Value::Null,
                None,
                (end, &[])
            ),
        ]
    );
    assert_eq!(
        of_site(&events, "mine-far"),
        vec![
            ev(
                "raised",
                rule,
                "mine-far",
                "zone:site",
                "critical",
                json!(6.1),
                Some(6.0),
                (at3, &[q3])
            ),
            ev(
                "cleared",
                rule,
                "mine-far",
                "zone:site",
                "critical",
                Value::Null,
                None,
                (end, &[])
            ),
        ]
    );
    assert_eq!(
        events.len(),
        10,
        "nothing for hazchem or open-pit sites: {events:#?}"
    );
    let raised = &events[0];
    assert!(
        raised["message"].as_str().unwrap().contains("inspection"),
        "{raised}"
    );
}
