//! CENC earthquake reports: parsing, the magnitude table, and the book.

mod common;

use common::*;
use weather::{
    parse_cenc, CencError, EarthquakeConfig, MagnitudeStep, Outcome, WarningBook, WarningLevel,
    WeatherConfig,
};

const REPORT: &str = r#"{"shuju":[
  {"id":"AU20261128100000.00","M":"5.2","EPI_LAT":"34.80","EPI_LON":"113.70","EPI_DEPTH":"10","LOCATION_C":"河南郑州市","O_TIME":"2026-11-28 10:00:00","AUTO_FLAG":"AU","SAVE_TIME":"2026-11-28 10:02:11"},
  {"id":"CC20261127080000.00","M":3.1,"EPI_LAT":30.1,"EPI_LON":103.2,"EPI_DEPTH":8,"LOCATION_C":"四川雅安市","O_TIME":"2026-11-27 08:00:00","AUTO_FLAG":"CC"},
  {"id":"CC20261126000000.00","M":"x","EPI_LAT":"30","EPI_LON":"103","EPI_DEPTH":"8","LOCATION_C":"四川","O_TIME":"2026-11-26 00:00:00","AUTO_FLAG":"CC"},
  {"id":"CC20261126010000.00","M":"4.0","EPI_LAT":"95","EPI_LON":"103","EPI_DEPTH":"8","LOCATION_C":"四川","O_TIME":"2026-11-26 01:00:00","AUTO_FLAG":"CC"},
  {"id":"CC20261126020000.00","M":"4.0","EPI_LAT":"30","EPI_LON":"103","EPI_DEPTH":"","LOCATION_C":"四川","O_TIME":"26/11/2026","AUTO_FLAG":"CC"}
]}"#;

#[test]
fn parses_strings_and_numbers_and_refuses_bad_items_alone() {
    let report = parse_cenc(REPORT.as_bytes(), &WeatherConfig::default()).unwrap();
    assert_eq!(report.quakes.len(), 2);
    let q = &report.quakes[0];
    assert_eq!(q.id, "AU20261128100000.00");
    assert_eq!(q.magnitude, 5.2);
    assert_eq!((q.epicentre.lat, q.epicentre.lon), (34.8, 113.7));
    assert_eq!(q.depth_km, Some(10.0));
    assert_eq!(q.location, "河南郑州市");
    assert_eq!(
        q.origin_time,
        t("2026-11-28T02:00:00Z"),
        "Beijing time is UTC+8"
    );
    assert!(q.automatic);
    assert!(!report.quakes[1].automatic);
    assert_eq!(report.quakes[1].magnitude, 3.1);

    let reasons: Vec<(usize, &str)> = report
        .refused
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3);
    assert_eq!(reasons[0].0, 2);
    assert!(reasons[0].1.contains('M'), "{reasons:?}");
    assert!(reasons[1].1.contains("epicentre"), "{reasons:?}");
    assert!(reasons[2].1.contains("O_TIME"), "{reasons:?}");
    assert_eq!(report.refused[0].id.as_deref(), Some("CC20261126000000.00"));
}

#[test]
fn whole_documents_that_are_not_reports_are_refused() {
    let c = WeatherConfig::default();
    assert!(matches!(
        parse_cenc(b"not json", &c),
        Err(CencError::Json(_))
    ));
    assert!(matches!(
        parse_cenc(b"{\"data\":[]}", &c),
        Err(CencError::Shape(_))
    ));
    assert!(matches!(parse_cenc(b"[]", &c), Err(CencError::Shape(_))));
    let big = vec![b' '; c.cap.max_document_bytes + 1];
    assert!(matches!(
        parse_cenc(&big, &c),
        Err(CencError::TooLarge { .. })
    ));
    let empty = parse_cenc(b"{\"shuju\":[]}", &c).unwrap();
    assert!(empty.quakes.is_empty() && empty.refused.is_empty());
}

#[test]
fn a_quake_warns_a_circle_that_grows_with_magnitude() {
    let config = WeatherConfig::default();
    let report = parse_cenc(REPORT.as_bytes(), &config).unwrap();
    let w = report.quakes[0].to_warning(&config).unwrap();
    assert_eq!(w.id, "cenc/AU20261128100000.00");
    assert_eq!(w.kind, "earthquake");
    assert_eq!(w.magnitude, Some(5.2));
    assert_eq!(w.level, WarningLevel::Yellow);
    assert_eq!(w.circles[0].radius_km, 100.0, "M5: 100 km");
    assert_eq!(w.headline.as_deref(), Some("河南郑州市发生5.2级地震"));
    assert_eq!(w.effective, t("2026-11-28T02:00:00Z"));
    assert_eq!(w.expires, t("2026-11-29T02:00:00Z"), "24 h by default");
    assert!(w.affects(&site_at(34.75, 113.62)), "Zhengzhou, 9 km");
    assert!(w.affects(&site_at(35.6, 113.7)), "89 km");
    assert!(!w.affects(&site_at(35.8, 113.7)), "111 km");
    // M3.1 is below the first step: no warning.
    assert!(report.quakes[1].to_warning(&config).is_none());

    // The table and the validity are settings.
    let config = WeatherConfig {
        earthquake: EarthquakeConfig {
            validity_h: 6,
            steps: vec![MagnitudeStep {
                min_magnitude: 3.0,
                radius_km: 20.0,
                level: WarningLevel::Blue,
            }],
            ..EarthquakeConfig::default()
        },
        ..WeatherConfig::default()
    };
    config.validate().unwrap();
    let w = report.quakes[1].to_warning(&config).unwrap();
    assert_eq!(w.circles[0].radius_km, 20.0);
    assert_eq!(w.expires - w.effective, chrono::Duration::hours(6));
}

#[test]
fn in_the_book_a_formal_report_replaces_the_automatic_one() {
    let mut clock = TestClock::at("2026-11-28T10:01:00+08:00");
    let config = WeatherConfig::default();
    let mut book = WarningBook::new(config.clone());
    let automatic = parse_cenc(REPORT.as_bytes(), &config).unwrap();
    let applied = book.apply_cenc(&automatic, clock.now()).unwrap();
    assert_eq!(applied.outcome, Outcome::Activated);
    assert_eq!(applied.change.started.len(), 1, "M3.1 makes none");
    assert_eq!(
        book.apply_cenc(&automatic, clock.now()).unwrap().outcome,
        Outcome::Repeat
    );

    let formal = r#"{"shuju":[{"id":"CC20261128100000.00","M":"4.9","EPI_LAT":"34.82","EPI_LON":"113.68","EPI_DEPTH":"12","LOCATION_C":"河南郑州市","O_TIME":"2026-11-28 10:00:03","AUTO_FLAG":"CC"}]}"#;
    let formal = parse_cenc(formal.as_bytes(), &config).unwrap();
    let applied = book
        .apply_cenc(&formal, clock.set("2026-11-28T10:10:00+08:00"))
        .unwrap();
    assert_eq!(
        applied
            .change
            .ended
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>(),
        ["cenc/AU20261128100000.00"]
    );
    assert_eq!(applied.change.started[0].id, "cenc/CC20261128100000.00");
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].level, WarningLevel::Blue, "M4.9");
    assert_eq!(active[0].circles[0].radius_km, 50.0);

    // It ends 24 h after the origin time.
    assert_eq!(book.next_deadline(), Some(t("2026-11-29T10:00:03+08:00")));
    let ended = book.advance(clock.set("2026-11-29T10:00:03+08:00")).ended;
    assert_eq!(ended.len(), 1);
    assert!(book.active().is_empty());
}
