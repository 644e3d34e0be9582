//! Every upstream CAP sample in shared/reference/cap: the valid ones parse into the warnings
//! they mean; the invalid ones are refused with the reason that names their fault.

mod common;

use common::*;
use weather::{
    parse_cap, warnings_from_cap, CapError, CapSeverity, CapVersion, MsgType, WarningBook,
    WarningLevel, WeatherConfig,
};

const VALID: [&str; 12] = [
    "oasis_cap12_appendixA1.xml",
    "oasis_cap12_appendixA2.xml",
    "oasis_cap12_appendixA3.xml",
    "oasis_cap12_appendixA4.xml",
    "ipaws_local_area_emergency_polygon.xml",
    "google_PAAQ_tsunami_cancellation_circle.xml",
    "nws_blizzard_warning_cap11.xml",
    "googlecaplib_canada.cap",
    "googlecaplib_australia.cap",
    "googlecaplib_wcatwc-warning.cap",
    "googlecaplib_earthquake-iso8859-1.cap",
    "googlecaplib_weather.cap",
];

const INVALID: [(&str, &str); 4] = [
    ("googlecaplib_invalid.cap", "scope"),
    ("googlecaplib_xee.cap", "DTD"),
    ("googlecaplib_canada_errors.cap", "references"),
    ("googlecaplib_noaa_errors.cap", "urgency"),
];

#[test]
fn every_reference_file_is_accounted_for() {
    let mut names: Vec<String> = std::fs::read_dir(reference_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml") || n.ends_with(".cap"))
        .collect();
    names.sort();
    for n in &names {
        assert!(
            VALID.contains(&n.as_str()) || INVALID.iter().any(|(i, _)| i == n),
            "{n} is not tested"
        );
    }
    assert_eq!(names.len(), 16);
}

#[test]
fn valid_files_parse_and_make_warnings() {
    let config = WeatherConfig::default();
    for name in VALID {
        let alert =
            parse_cap(&reference(name), &config.cap).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!alert.identifier.is_empty(), "{name}");
        let warnings = warnings_from_cap(&alert, &config);
        assert_eq!(warnings.len(), 1, "{name}: one hazard each");
        let w = &warnings[0];
        assert!(
            w.id.starts_with(&format!("{}/", alert.identifier)),
            "{name}: {}",
            w.id
        );
        assert!(w.expires >= w.effective, "{name}");
    }
}

#[test]
fn invalid_files_are_refused_with_their_reason() {
    let limits = WeatherConfig::default().cap;
    for (name, reason) in INVALID {
        let err = parse_cap(&reference(name), &limits).expect_err(name);
        assert!(err.to_string().contains(reason), "{name}: {err}");
    }
    let err = parse_cap(&reference("googlecaplib_invalid.cap"), &limits).unwrap_err();
    assert_eq!(
        err,
        CapError::Missing {
            element: "scope",
            context: String::new()
        }
    );
    assert_eq!(err.code(), "missing_element");
}

#[test]
fn xxe_is_refused_for_its_dtd_and_nothing_is_resolved() {
    let err = parse_cap(
        &reference("googlecaplib_xee.cap"),
        &WeatherConfig::default().cap,
    )
    .unwrap_err();
    assert_eq!(err, CapError::HasDtd);
    assert_eq!(
        err.to_string().split(' ').take(4).collect::<Vec<_>>(),
        ["document", "has", "a", "DTD"]
    );
    // Without its DOCTYPE, the undeclared entity &xxe; is refused too, never expanded.
    let text = String::from_utf8(reference("googlecaplib_xee.cap")).unwrap();
    let start = text.find("<!DOCTYPE").unwrap();
    let end = text.find("]>").unwrap() + 2;
    let stripped = format!("{}{}", &text[..start], &text[end..]);
    let err = parse_cap(stripped.as_bytes(), &WeatherConfig::default().cap).unwrap_err();
    assert!(matches!(err, CapError::Xml(_)), "{err}");
    // An internal entity declaration is a DTD as well.
    let doc = br#"<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaa">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&a;</alert>"#;
    assert_eq!(
        parse_cap(doc, &WeatherConfig::default().cap).unwrap_err(),
        CapError::HasDtd
    );
}

#[test]
fn iso_8859_1_keeps_its_accents() {
    let a = alert(&reference("googlecaplib_earthquake-iso8859-1.cap"));
    let info = &a.infos[0];
    assert_eq!(
        info.headline.as_deref(),
        Some("EQ 4.6 Usulután, Usulután, El Salvador - PRELIMINARY REPORT")
    );
    assert!(info.areas[0]
        .description
        .starts_with("47 miles (76 km) SSW of Usulután"));
    let w = &warnings_from_cap(&a, &WeatherConfig::default())[0];
    assert_eq!(w.kind, "earthquake");
    assert_eq!(w.magnitude, Some(4.6));
    // The epicentre circle of radius 0 is widened by the earthquake table (M4: 50 km).
    assert_eq!(w.circles[0].radius_km, 50.0);
}

#[test]
fn bilingual_canada_is_one_warning_with_both_areas() {
    let a = alert(&reference("googlecaplib_canada.cap"));
    assert_eq!(a.infos.len(), 2);
    assert_eq!(a.infos[1].language, "fr-CA");
    assert_eq!(
        a.infos[1].description.as_deref(),
        Some("C'est l'épreuve - ce message de PAC a été créé pour les buts d'essai seulement.")
    );
    assert_eq!(a.msg_type, MsgType::Update);
    assert_eq!(a.references.len(), 2);
    assert_eq!(a.references[1].identifier, "2.49.0.1.124.60f31a3a.2012");
    let ws = warnings_from_cap(&a, &WeatherConfig::default());
    assert_eq!(ws.len(), 1);
    let w = &ws[0];
    assert_eq!(w.id, "2.49.0.1.124.6bddbc91.2012/thunderstorm");
    assert_eq!(w.kind, "lightning");
    assert_eq!(w.level, WarningLevel::Blue, "Minor");
    assert_eq!(
        w.polygons.len(),
        2,
        "the same two polygons in both languages, once each"
    );
    assert_eq!(w.headline.as_deref(), Some("severe thunderstorm watch"));
    assert!(w.affects(&site_at(42.1, -82.7)), "Essex County");
    assert!(!w.affects(&site_at(43.65, -79.38)), "Toronto");
}

#[test]
fn bilingual_amber_alert_is_one_warning() {
    let a = alert(&reference("oasis_cap12_appendixA4.xml"));
    let ws = warnings_from_cap(&a, &WeatherConfig::default());
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].id, "KAR0-0306112239-SW/CAE");
    assert_eq!(ws[0].kind, "child_abduction");
}

#[test]
fn namespaced_australia_parses_and_merges_its_blocks() {
    let a = alert(&reference("googlecaplib_australia.cap"));
    assert_eq!(a.identifier, "tag:www.rfs.nsw.gov.au2011-10-06:40184");
    assert_eq!(a.infos.len(), 2);
    assert_eq!(a.infos[0].categories, ["Fire", "Met"]);
    let ws = warnings_from_cap(&a, &WeatherConfig::default());
    assert_eq!(
        ws.len(),
        1,
        "same event, same language, two areas: one warning"
    );
    assert_eq!(ws[0].circles.len(), 1, "the same circle twice is kept once");
    assert!(ws[0].affects(&site_at(-35.3888, 147.0598)));
    assert!(!ws[0].affects(&site_at(-35.8, 147.0598)), "46 km away");
}

#[test]
fn cap_1_1_files_parse() {
    for name in ["nws_blizzard_warning_cap11.xml", "googlecaplib_weather.cap"] {
        let a = alert(&reference(name));
        assert_eq!(a.version, CapVersion::V1_1, "{name}");
    }
    let a = alert(&reference("nws_blizzard_warning_cap11.xml"));
    let w = &warnings_from_cap(&a, &WeatherConfig::default())[0];
    assert_eq!(w.kind, "snowstorm");
    assert_eq!(
        alert(&reference("oasis_cap12_appendixA1.xml")).version,
        CapVersion::V1_2
    );
}

#[test]
fn thunderstorm_polygon_from_the_spec() {
    let a = alert(&reference("oasis_cap12_appendixA2.xml"));
    assert_eq!(a.infos[0].severity, CapSeverity::Severe);
    let w = &warnings_from_cap(&a, &WeatherConfig::default())[0];
    assert_eq!(w.id, "KSTO1055887203/SVR");
    assert_eq!(w.level, WarningLevel::Orange);
    assert_eq!(
        w.effective,
        t("2003-06-17T14:57:00-07:00"),
        "no <effective>: sent"
    );
    assert_eq!(w.expires, t("2003-06-17T16:00:00-07:00"));
    assert!(w.affects(&site_at(38.47, -119.9)));
    assert!(!w.affects(&site_at(38.7, -119.9)));
}

#[test]
fn replaying_2003_as_if_it_were_2003() {
    let mut book = WarningBook::new(WeatherConfig::default());
    let a = alert(&reference("oasis_cap12_appendixA2.xml"));
    let applied = book.apply(&a, t("2003-06-17T15:00:00-07:00")).unwrap();
    assert_eq!(applied.change.started.len(), 1);
    assert_eq!(book.next_deadline(), Some(t("2003-06-17T16:00:00-07:00")));
    let ended = book.advance(t("2003-06-17T16:00:00-07:00")).ended;
    assert_eq!(ended.len(), 1);
    assert!(book.active().is_empty());
    // The same file today is taken but long expired.
    let mut book = WarningBook::new(WeatherConfig::default());
    let applied = book.apply(&a, t("2026-01-01T00:00:00Z")).unwrap();
    assert_eq!(applied.outcome, weather::Outcome::Expired);
    assert!(book.active().is_empty());
}
