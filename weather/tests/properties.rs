//! Properties: no input panics a parser; the book never holds a warning out of its time.

mod common;

use common::*;
use proptest::prelude::*;
use weather::{parse_cap, parse_cenc, warnings_from_cap, WarningBook, WeatherConfig};

fn samples() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "googlecaplib_canada.cap",
        "googlecaplib_australia.cap",
        "googlecaplib_earthquake-iso8859-1.cap",
        "googlecaplib_xee.cap",
    ]
    .iter()
    .map(|n| reference(n))
    .collect();
    v.push(data("cn_rainstorm_orange_410500.xml"));
    v.push(data("cn_lightning_yellow_polygon.xml"));
    v
}

/// Parse, and when it parses, turn it into warnings and match them: none of it may panic.
fn exercise(bytes: &[u8]) {
    let config = WeatherConfig::default();
    if let Ok(alert) = parse_cap(bytes, &config.cap) {
        for w in warnings_from_cap(&alert, &config) {
            let _ = w.affects(&site_at(36.1, 114.35));
            let _ = serde_json::to_string(&w).unwrap();
        }
        let mut book = WarningBook::new(config);
        let _ = book.apply(&alert, t("2026-07-28T10:00:00Z"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_cap_parser(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn xml_like_text_never_panics_the_cap_parser(
        text in r#"(<\??[a-z:]{0,8}( [a-z:]{1,8}="[^"<]{0,12}")*/?>|</[a-z:]{0,8}>|&[a-z#0-9]{0,5};|<!\[CDATA\[[^\]]{0,6}\]\]>|[ 0-9a-z,.暴雨]{0,12}){0,40}"#
    ) {
        let doc = format!("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">{text}</alert>");
        exercise(doc.as_bytes());
        exercise(text.as_bytes());
    }

    #[test]
    fn mutated_real_alerts_never_panic_the_cap_parser(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = samples()[which].clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_cenc_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let config = WeatherConfig::default();
        if let Ok(report) = parse_cenc(&bytes, &config) {
            for q in &report.quakes { let _ = q.to_warning(&config); }
        }
    }

    #[test]
    fn cenc_items_with_arbitrary_fields_never_panic(
        m in prop_oneof![Just("\"5.0\"".to_string()), "-?[0-9]{1,3}(\\.[0-9]{0,3})?", "\"[^\"\\\\]{0,8}\"", Just("null".to_string())],
        lat in prop_oneof!["-?[0-9]{1,3}(\\.[0-9]{0,3})?", "\"[^\"\\\\]{0,8}\""],
        time in "\"[0-9: -]{0,20}\"",
    ) {
        let doc = format!(r#"{{"shuju":[{{"id":"x","M":{m},"EPI_LAT":{lat},"EPI_LON":"113","O_TIME":{time},"AUTO_FLAG":"AU"}}]}}"#);
        let config = WeatherConfig::default();
        if let Ok(report) = parse_cenc(doc.as_bytes(), &config) {
            prop_assert_eq!(report.quakes.len() + report.refused.len(), 1);
            let mut book = WarningBook::new(config);
            let _ = book.apply_cenc(&report, t("2026-07-28T10:00:00Z"));
        }
    }

    #[test]
    fn after_advance_every_active_warning_is_in_force(
        steps in proptest::collection::vec((0usize..6, 0i64..60), 1..20),
    ) {
        let files = [
            "cn_rainstorm_orange_410500.xml",
            "cn_rainstorm_red_410500_update.xml",
            "cn_rainstorm_410500_cancel.xml",
            "cn_lightning_yellow_polygon.xml",
            "cn_high_temperature_circle.xml",
            "cn_two_events_410600.xml",
        ];
        let alerts: Vec<_> = files.iter().map(|f| alert(&data(f))).collect();
        let mut book = WarningBook::new(WeatherConfig::default());
        let mut now = t("2026-07-28T08:00:00+08:00");
        for (which, hours) in steps {
            now += chrono::Duration::minutes(hours * 30);
            let _ = book.advance(now);
            book.apply(&alerts[which], now).unwrap();
            for w in book.active() {
                prop_assert!(w.in_force_at(now), "{} at {}", w.id, now);
            }
            prop_assert_eq!(book.active().len() + book.pending().len(), book.len());
        }
    }
}
