//! Chinese warnings (written for the tests, see tests/data): kind, level and area matching.

mod common;

use common::*;
use weather::{parse_cap, warnings_from_cap, CapError, WarningLevel, WeatherConfig};

fn warnings(file: &str) -> Vec<weather::Warning> {
    warnings_from_cap(&alert(&data(file)), &WeatherConfig::default())
}

#[test]
fn rainstorm_orange_for_anyang() {
    let ws = warnings("cn_rainstorm_orange_410500.xml");
    assert_eq!(
        ws.len(),
        1,
        "the Chinese and English blocks are one warning"
    );
    let w = &ws[0];
    assert_eq!(w.id, "41050041600000_20260728100000/11B03");
    assert_eq!(w.kind, "rainstorm");
    assert_eq!(w.code.as_deref(), Some("11B03"));
    assert_eq!(w.level, WarningLevel::Orange);
    assert_eq!(w.event, "暴雨橙色预警");
    assert_eq!(
        w.headline.as_deref(),
        Some("安阳市气象台发布暴雨橙色预警信号")
    );
    assert_eq!(w.sender, "410500@12379.cn");
    assert_eq!(w.sender_name.as_deref(), Some("安阳市气象台"));
    assert_eq!(w.regions.len(), 1);
    assert_eq!(w.regions[0].as_str(), "410500");
    assert_eq!(w.effective, t("2026-07-28T02:00:00Z"));
    assert_eq!(w.expires, t("2026-07-29T02:00:00Z"));
}

#[test]
fn a_city_warning_touches_its_counties_only() {
    let w = &warnings("cn_rainstorm_orange_410500.xml")[0];
    assert!(w.affects(&site_in("410522")), "安阳县 lies in 安阳市");
    assert!(w.affects(&site_in("410500")));
    assert!(!w.affects(&site_in("410622")), "淇县 lies in 鹤壁市");
    assert!(
        !w.affects(&site_in("410000")),
        "a province-level site is not inside one city"
    );
    assert!(
        !w.affects(&site_at(36.1, 114.35)),
        "no region, and the warning has no geometry"
    );
    assert!(!w.affects(&weather::SiteLocation::default()));
}

#[test]
fn level_from_colour_words_beats_severity() {
    // Severity says Minor (blue); the event says 橙色.
    let text = String::from_utf8(data("cn_rainstorm_orange_410500.xml"))
        .unwrap()
        .replace("Severe", "Minor");
    let w = &warnings_from_cap(&alert(text.as_bytes()), &WeatherConfig::default())[0];
    assert_eq!(w.level, WarningLevel::Orange);
    // Without colour words anywhere, severity decides.
    let text = text
        .replace("暴雨橙色预警", "暴雨预警")
        .replace("Rainstorm Orange Warning", "Rainstorm Warning");
    let text = text
        .replace("orange warning signal", "warning signal")
        .replace("暴雨橙色预警信号", "暴雨预警信号");
    let w = &warnings_from_cap(&alert(text.as_bytes()), &WeatherConfig::default())[0];
    assert_eq!(w.level, WarningLevel::Blue);
    assert_eq!(w.kind, "rainstorm", "from the code");
    let text = text.replace("Minor", "Extreme");
    assert_eq!(
        warnings_from_cap(&alert(text.as_bytes()), &WeatherConfig::default())[0].level,
        WarningLevel::Red
    );
}

#[test]
fn kind_from_words_without_a_code() {
    let text = String::from_utf8(data("cn_rainstorm_orange_410500.xml")).unwrap();
    let text = text.replace("<value>11B03</value>", "<value></value>");
    let w = &warnings_from_cap(&alert(text.as_bytes()), &WeatherConfig::default())[0];
    assert_eq!(w.kind, "rainstorm", "from 暴雨");
    assert_eq!(w.id, "41050041600000_20260728100000/暴雨橙色预警");
    assert_eq!(w.code, None);
    assert_eq!(w.regions.len(), 1);
}

#[test]
fn a_polygon_touches_exactly_the_sites_inside_it() {
    let ws = warnings("cn_lightning_yellow_polygon.xml");
    let w = &ws[0];
    assert_eq!(
        (w.kind.as_str(), w.level),
        ("lightning", WarningLevel::Yellow)
    );
    // No <expires>: 24 hours after effective (= sent).
    assert_eq!(w.effective, t("2026-07-28T15:00:00+08:00"));
    assert_eq!(w.expires, t("2026-07-29T15:00:00+08:00"));
    for (lat, lon, inside) in [
        (36.1, 114.35, true),
        (36.01, 114.21, true),
        (36.19, 114.49, true),
        (36.25, 114.35, false),
        (35.95, 114.35, false),
        (36.1, 114.55, false),
        (36.1, 114.15, false),
    ] {
        assert_eq!(w.affects(&site_at(lat, lon)), inside, "{lat},{lon}");
    }
    // A region alone does not bring a site in: this warning has no region codes.
    assert!(!w.affects(&site_in("410522")));
}

#[test]
fn a_circle_touches_exactly_the_sites_within_its_radius() {
    let w = &warnings("cn_high_temperature_circle.xml")[0];
    assert_eq!(
        (w.kind.as_str(), w.level),
        ("high_temperature", WarningLevel::Orange)
    );
    assert_eq!(w.circles[0].radius_km, 30.0);
    assert!(w.affects(&site_at(34.75, 113.62)), "the centre");
    assert!(w.affects(&site_at(34.9, 113.62)), "16.7 km north");
    assert!(w.affects(&site_at(34.75, 113.94)), "29.3 km east");
    assert!(!w.affects(&site_at(34.75, 113.96)), "31.1 km east");
    assert!(!w.affects(&site_at(35.1, 113.62)), "38.9 km north");
}

#[test]
fn one_alert_with_two_hazards_is_two_warnings() {
    let ws = warnings("cn_two_events_410600.xml");
    assert_eq!(ws.len(), 2);
    assert_eq!(ws[0].id, "41060041600000_20260728160000/11B06");
    assert_eq!(
        (ws[0].kind.as_str(), ws[0].level),
        ("gale", WarningLevel::Blue)
    );
    assert_eq!(ws[1].id, "41060041600000_20260728160000/11B15");
    assert_eq!(
        (ws[1].kind.as_str(), ws[1].level),
        ("hail", WarningLevel::Red)
    );
    // 行政区划代码 410600 covers all of Hebi; ADCODE and GB2260 name two counties.
    assert!(ws[0].affects(&site_in("410622")));
    assert!(ws[1].affects(&site_in("410622")));
    assert!(ws[1].affects(&site_in("410621")));
    assert!(!ws[1].affects(&site_in("410611")));
    assert_eq!(ws[1].expires, t("2026-07-28T22:00:00+08:00"));
}

#[test]
fn a_bad_region_code_is_refused() {
    let text = String::from_utf8(data("cn_rainstorm_orange_410500.xml"))
        .unwrap()
        .replacen("<value>410500</value>", "<value>4105</value>", 1);
    let err = parse_cap(text.as_bytes(), &WeatherConfig::default().cap).unwrap_err();
    assert!(
        matches!(
            err,
            CapError::Invalid {
                element: "geocode",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("GB/T 2260"), "{err}");
    // A 12-digit statistical code is taken as its county.
    let text = String::from_utf8(data("cn_rainstorm_orange_410500.xml"))
        .unwrap()
        .replace("<value>410500</value>", "<value>410522100000</value>");
    let w = &warnings_from_cap(&alert(text.as_bytes()), &WeatherConfig::default())[0];
    assert_eq!(w.regions[0].as_str(), "410522");
}

#[test]
fn gbk_and_gb18030_documents() {
    for enc in [encoding_rs::GBK, encoding_rs::GB18030] {
        let text = String::from_utf8(data("cn_rainstorm_orange_410500.xml"))
            .unwrap()
            .replace("UTF-8", enc.name());
        let (bytes, _, unmappable) = enc.encode(&text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
        let w = &warnings_from_cap(&alert(&bytes), &WeatherConfig::default())[0];
        assert_eq!(
            w.headline.as_deref(),
            Some("安阳市气象台发布暴雨橙色预警信号"),
            "{}",
            enc.name()
        );
        assert_eq!(w.level, WarningLevel::Orange);
    }
    // Declared UTF-8 but GBK bytes: refused, not garbled.
    let utf8 = String::from_utf8(data("cn_rainstorm_orange_410500.xml")).unwrap();
    let (bytes, _, _) = encoding_rs::GBK.encode(&utf8);
    let err = parse_cap(&bytes, &WeatherConfig::default().cap).unwrap_err();
    assert_eq!(err.code(), "encoding", "{err}");
}

#[test]
fn json_form_has_the_contract_fields() {
    let w = &warnings("cn_rainstorm_orange_410500.xml")[0];
    let json = serde_json::to_value(w).unwrap();
    assert_eq!(json["id"], "41050041600000_20260728100000/11B03");
    assert_eq!(json["type"], "rainstorm");
    assert_eq!(json["code"], "11B03");
    assert_eq!(json["level"], "orange");
    assert_eq!(json["regions"], serde_json::json!(["410500"]));
    assert_eq!(json["headline"], "安阳市气象台发布暴雨橙色预警信号");
    assert_eq!(json["sender"], "410500@12379.cn");
    assert_eq!(json["effective"], "2026-07-28T02:00:00.000Z");
    assert_eq!(json["expires"], "2026-07-29T02:00:00.000Z");
}

#[cfg(feature = "alarm-rules")]
#[test]
fn the_rule_engine_view() {
    let w = &warnings("cn_rainstorm_orange_410500.xml")[0];
    let a = w.to_active_warning();
    assert_eq!(
        (a.id.as_str(), a.kind.as_str()),
        (w.id.as_str(), "rainstorm")
    );
    assert_eq!(a.level, alarm_rules::WarningLevel::Orange);
    assert_eq!(a.magnitude, None);
}

#[test]
fn a_city_heavy_pollution_red_warning_without_a_cma_code() {
    let [w] = &warnings("cn_heavy_pollution_red_410500.xml")[..] else {
        panic!("the Chinese and English blocks are one warning");
    };
    assert_eq!(w.kind, "heavy_pollution");
    assert_eq!(w.level, WarningLevel::Red);
    assert_eq!(w.code, None);
    assert_eq!(w.id, "41050000000000_20261205200000/重污染天气红色预警");
    assert_eq!(w.regions[0].as_str(), "410500");
    assert!(w.affects(&site_in("410522")));
    assert!(!w.affects(&site_in("410622")));
    let cancel = warnings("cn_heavy_pollution_410500_cancel.xml");
    assert_eq!(cancel[0].kind, "heavy_pollution");
}
