//! The warning book with an injected clock: alerts, updates, cancels, repeats, expiry.

mod common;

use common::*;
use weather::{BookError, BookLimits, Outcome, WarningBook, WarningLevel, WeatherConfig};

const ORANGE: &str = "cn_rainstorm_orange_410500.xml";
const RED_UPDATE: &str = "cn_rainstorm_red_410500_update.xml";
const CANCEL: &str = "cn_rainstorm_410500_cancel.xml";
const ORANGE_ID: &str = "41050041600000_20260728100000/11B03";
const RED_ID: &str = "41050041600000_20260728130000/11B03";

fn ids(ws: &[weather::Warning]) -> Vec<&str> {
    ws.iter().map(|w| w.id.as_str()).collect()
}

fn active_ids(book: &WarningBook) -> Vec<String> {
    book.active().iter().map(|w| w.id.clone()).collect()
}

#[test]
fn alert_then_update_then_cancel() {
    let mut clock = TestClock::at("2026-07-28T10:00:05+08:00");
    let mut book = WarningBook::new(WeatherConfig::default());

    let applied = book.apply(&alert(&data(ORANGE)), clock.now()).unwrap();
    assert_eq!(applied.outcome, Outcome::Activated);
    assert_eq!(ids(&applied.change.started), [ORANGE_ID]);
    assert!(applied.change.ended.is_empty());
    assert_eq!(active_ids(&book), [ORANGE_ID]);
    assert_eq!(book.warnings_for(&site_in("410522")).len(), 1);
    assert!(book.warnings_for(&site_in("410622")).is_empty());

    // The update replaces the alert it references.
    let now = clock.set("2026-07-28T13:00:10+08:00");
    let applied = book.apply(&alert(&data(RED_UPDATE)), now).unwrap();
    assert_eq!(applied.outcome, Outcome::Activated);
    assert_eq!(ids(&applied.change.ended), [ORANGE_ID]);
    assert_eq!(ids(&applied.change.started), [RED_ID]);
    assert_eq!(active_ids(&book), [RED_ID]);
    assert_eq!(book.get(RED_ID).unwrap().level, WarningLevel::Red);
    assert!(book.get(ORANGE_ID).is_none());

    // The cancel ends it.
    let now = clock.set("2026-07-28T18:00:00+08:00");
    let applied = book.apply(&alert(&data(CANCEL)), now).unwrap();
    assert_eq!(applied.outcome, Outcome::Cancelled);
    assert_eq!(ids(&applied.change.ended), [RED_ID]);
    assert!(applied.change.started.is_empty(), "a cancel starts nothing");
    assert!(book.active().is_empty());
    assert!(book.is_empty());
    assert_eq!(book.next_deadline(), None);
}

#[test]
fn repeats_are_idempotent() {
    let now = t("2026-07-28T10:01:00+08:00");
    let mut book = WarningBook::new(WeatherConfig::default());
    let a = alert(&data(ORANGE));
    book.apply(&a, now).unwrap();
    for _ in 0..3 {
        let again = book.apply(&a, now).unwrap();
        assert_eq!(again.outcome, Outcome::Repeat);
        assert!(again.change.is_empty());
    }
    assert_eq!(book.len(), 1);
}

#[test]
fn a_cancel_of_an_unknown_alert_is_taken_and_the_late_original_is_ignored() {
    let mut book = WarningBook::new(WeatherConfig::default());
    // Cancel of the red update before the update itself arrives.
    let applied = book
        .apply(&alert(&data(CANCEL)), t("2026-07-28T18:00:00+08:00"))
        .unwrap();
    assert_eq!(applied.outcome, Outcome::NothingToCancel);
    assert!(applied.change.is_empty());
    let late = book
        .apply(&alert(&data(RED_UPDATE)), t("2026-07-28T18:00:05+08:00"))
        .unwrap();
    assert_eq!(late.outcome, Outcome::Superseded);
    assert!(book.active().is_empty());
}

#[test]
fn an_update_that_arrives_first_keeps_the_original_out() {
    let mut book = WarningBook::new(WeatherConfig::default());
    book.apply(&alert(&data(RED_UPDATE)), t("2026-07-28T13:00:10+08:00"))
        .unwrap();
    let late = book
        .apply(&alert(&data(ORANGE)), t("2026-07-28T13:00:20+08:00"))
        .unwrap();
    assert_eq!(late.outcome, Outcome::Superseded);
    assert_eq!(active_ids(&book), [RED_ID]);
}

#[test]
fn expiry_ends_a_warning_at_expires_exactly() {
    let mut clock = TestClock::at("2026-07-28T10:00:00+08:00");
    let mut book = WarningBook::new(WeatherConfig::default());
    book.apply(&alert(&data(ORANGE)), clock.now()).unwrap();
    let expires = t("2026-07-29T10:00:00+08:00");
    assert_eq!(book.next_deadline(), Some(expires));

    let change = book.advance(clock.set("2026-07-29T09:59:59.999+08:00"));
    assert!(change.is_empty());
    assert_eq!(book.active().len(), 1);

    let change = book.advance(clock.set("2026-07-29T10:00:00+08:00"));
    assert_eq!(ids(&change.ended), [ORANGE_ID]);
    assert!(book.active().is_empty());
    assert!(
        book.advance(clock.set("2026-07-30T00:00:00+08:00"))
            .is_empty(),
        "ended once"
    );
}

#[test]
fn default_validity_is_a_setting() {
    let config = WeatherConfig {
        default_validity_h: 2,
        ..WeatherConfig::default()
    };
    let mut book = WarningBook::new(config);
    book.apply(
        &alert(&data("cn_lightning_yellow_polygon.xml")),
        t("2026-07-28T15:00:00+08:00"),
    )
    .unwrap();
    assert_eq!(book.next_deadline(), Some(t("2026-07-28T17:00:00+08:00")));
    assert_eq!(book.advance(t("2026-07-28T17:00:00+08:00")).ended.len(), 1);
}

#[test]
fn an_expired_alert_is_taken_with_nothing_active() {
    let mut book = WarningBook::new(WeatherConfig::default());
    let applied = book
        .apply(&alert(&data(ORANGE)), t("2026-07-29T10:00:00+08:00"))
        .unwrap();
    assert_eq!(applied.outcome, Outcome::Expired);
    assert!(applied.change.is_empty());
    assert!(book.is_empty());
}

#[test]
fn a_warning_effective_later_starts_when_the_clock_gets_there() {
    let mut clock = TestClock::at("2026-07-28T09:00:00+08:00");
    let mut book = WarningBook::new(WeatherConfig::default());
    let applied = book.apply(&alert(&data(ORANGE)), clock.now()).unwrap();
    assert_eq!(applied.outcome, Outcome::Scheduled);
    assert!(applied.change.is_empty());
    assert!(book.active().is_empty());
    assert_eq!(book.pending().len(), 1);
    assert_eq!(book.next_deadline(), Some(t("2026-07-28T10:00:00+08:00")));
    let change = book.advance(clock.set("2026-07-28T10:00:00+08:00"));
    assert_eq!(ids(&change.started), [ORANGE_ID]);
    assert_eq!(book.next_deadline(), Some(t("2026-07-29T10:00:00+08:00")));
}

#[test]
fn test_and_exercise_alerts_make_no_warnings() {
    let mut book = WarningBook::new(WeatherConfig::default());
    for status in ["Test", "Exercise", "Draft", "System"] {
        let text = String::from_utf8(data(ORANGE)).unwrap().replace(
            "<status>Actual</status>",
            &format!("<status>{status}</status>"),
        );
        let text = text.replace(
            "20260728100000</identifier>",
            &format!("20260728100000-{status}</identifier>"),
        );
        let applied = book
            .apply(&alert(text.as_bytes()), t("2026-07-28T10:00:00+08:00"))
            .unwrap();
        assert_eq!(applied.outcome, Outcome::NotActual, "{status}");
    }
    assert!(book.is_empty());
}

#[test]
fn two_hazards_end_separately() {
    let mut book = WarningBook::new(WeatherConfig::default());
    book.apply(
        &alert(&data("cn_two_events_410600.xml")),
        t("2026-07-28T16:00:00+08:00"),
    )
    .unwrap();
    let active = book.active();
    assert_eq!(active.len(), 2);
    assert_eq!(active[0].kind, "hail", "red before blue");
    let change = book.advance(t("2026-07-28T22:00:00+08:00"));
    assert_eq!(ids(&change.ended), ["41060041600000_20260728160000/11B15"]);
    assert_eq!(book.active().len(), 1);
}

#[test]
fn warnings_for_a_site_combine_regions_polygons_and_circles() {
    let mut book = WarningBook::new(WeatherConfig::default());
    let now = t("2026-07-28T15:30:00+08:00");
    for f in [
        ORANGE,
        "cn_lightning_yellow_polygon.xml",
        "cn_high_temperature_circle.xml",
    ] {
        book.apply(&alert(&data(f)), now).unwrap();
    }
    let mine = weather::SiteLocation {
        region: Some(telemetry::RegionCode::new("410522").unwrap()),
        lat: Some(36.1),
        lon: Some(114.35),
    };
    let kinds: Vec<&str> = book
        .warnings_for(&mine)
        .iter()
        .map(|w| w.kind.as_str())
        .collect();
    assert_eq!(kinds, ["rainstorm", "lightning"], "orange before yellow");
    let zhengzhou = site_at(34.76, 113.65);
    let kinds: Vec<&str> = book
        .warnings_for(&zhengzhou)
        .iter()
        .map(|w| w.kind.as_str())
        .collect();
    assert_eq!(kinds, ["high_temperature"]);
}

#[test]
fn a_full_book_refuses_and_changes_nothing() {
    let config = WeatherConfig {
        book: BookLimits {
            max_warnings: 1,
            ..BookLimits::default()
        },
        ..WeatherConfig::default()
    };
    let mut book = WarningBook::new(config);
    let now = t("2026-07-28T16:00:00+08:00");
    book.apply(&alert(&data(ORANGE)), now).unwrap();
    let err = book
        .apply(&alert(&data("cn_two_events_410600.xml")), now)
        .unwrap_err();
    assert_eq!(err, BookError::Full { limit: 1 });
    assert_eq!(book.len(), 1);
    let err = book
        .apply(&alert(&data("cn_lightning_yellow_polygon.xml")), now)
        .unwrap_err();
    assert_eq!(err, BookError::Full { limit: 1 });
    // The refused alert was not remembered: once there is room, it is taken.
    let later = t("2026-07-29T10:00:00+08:00");
    assert_eq!(book.advance(later).ended.len(), 1);
    let applied = book
        .apply(&alert(&data("cn_lightning_yellow_polygon.xml")), later)
        .unwrap();
    assert_eq!(applied.outcome, Outcome::Activated);
}

#[test]
fn remembered_alerts_are_bounded() {
    let config = WeatherConfig {
        book: BookLimits {
            max_remembered_alerts: 2,
            remember_for_h: 1,
            ..BookLimits::default()
        },
        ..WeatherConfig::default()
    };
    let mut book = WarningBook::new(config);
    let now = t("2026-07-29T12:00:00+08:00");
    // Three expired alerts: the oldest identity is forgotten, so it is taken again as new.
    for n in 0..3 {
        let text = String::from_utf8(data(ORANGE))
            .unwrap()
            .replace("20260728100000</identifier>", &format!("x{n}</identifier>"));
        assert_eq!(
            book.apply(&alert(text.as_bytes()), now).unwrap().outcome,
            Outcome::Expired
        );
    }
    let text = String::from_utf8(data(ORANGE))
        .unwrap()
        .replace("20260728100000</identifier>", "x2</identifier>");
    assert_eq!(
        book.apply(&alert(text.as_bytes()), now).unwrap().outcome,
        Outcome::Repeat
    );
    let text = String::from_utf8(data(ORANGE))
        .unwrap()
        .replace("20260728100000</identifier>", "x0</identifier>");
    assert_eq!(
        book.apply(&alert(text.as_bytes()), now).unwrap().outcome,
        Outcome::Expired,
        "x0 was evicted"
    );
    // After remember_for_h they are forgotten by advance.
    book.advance(t("2026-07-29T13:00:00+08:00"));
    let text = String::from_utf8(data(ORANGE))
        .unwrap()
        .replace("20260728100000</identifier>", "x2</identifier>");
    assert_eq!(
        book.apply(&alert(text.as_bytes()), now).unwrap().outcome,
        Outcome::Expired
    );
}

#[test]
fn one_sender_cannot_crowd_out_the_others() {
    let config = WeatherConfig {
        book: BookLimits {
            max_warnings_per_sender: 1,
            ..BookLimits::default()
        },
        ..WeatherConfig::default()
    };
    let mut book = WarningBook::new(config);
    let now = t("2026-07-28T16:00:00+08:00");
    book.apply(&alert(&data(ORANGE)), now).unwrap();
    // A second alert of the same sender (410500) with a warning of its own: refused whole.
    let text = String::from_utf8(data(ORANGE))
        .unwrap()
        .replace("20260728100000</identifier>", "second</identifier>")
        .replace(
            "<eventCode>",
            "<eventCode><valueName>x</valueName><value>y</value></eventCode><eventCode>",
        );
    let err = book.apply(&alert(text.as_bytes()), now).unwrap_err();
    assert_eq!(
        err,
        BookError::SenderFull {
            sender: "410500@12379.cn".into(),
            limit: 1
        }
    );
    assert_eq!(book.len(), 1);
    // Each sender is bounded alone: one with two warnings in one alert is refused, another
    // with one warning gets in beside 410500's.
    let err = book
        .apply(&alert(&data("cn_two_events_410600.xml")), now)
        .unwrap_err();
    assert!(
        matches!(err, BookError::SenderFull { ref sender, .. } if sender == "410600@12379.cn"),
        "{err:?}"
    );
    book.apply(&alert(&data("cn_high_temperature_circle.xml")), now)
        .unwrap();
    assert_eq!(book.len(), 2);
}
