//! Weather linkage through `gateway replay`, whose clock is the event time of its input: the
//! Chinese rainstorm warnings written for the tests run as if it were July 2026.

use serde_json::{json, Value};
use std::path::Path;

fn cap(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../weather/tests/data")
            .join(name),
    )
    .unwrap()
}

fn birth(site: &str, region: &str) -> Value {
    json!({"topic": format!("hrs/v1/sites/{site}/edge/birth"), "payload": {"agent": "edge",
        "site": {"category": "tailings", "region": region},
        "points": [{"point": "WL-1", "quantity": "water_level", "unit": "m"}]}})
}

fn reading(site: &str, seq: u64, ts: &str, v: f64) -> Value {
    json!({"topic": format!("hrs/v1/sites/{site}/edge/readings"), "payload": {"agent": "edge", "seq": seq,
        "readings": [{"point": "WL-1", "ts": ts, "value": v}]}})
}

async fn replay(lines: &[Value]) -> Vec<Value> {
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        rules.join("tailings_rules.toml"),
        dir.path().join("tailings_rules.toml"),
    )
    .unwrap();
    let mut out = Vec::new();
    gateway::app::replay::replay(
        input.as_bytes(),
        Some(dir.path()),
        presentation::Language::En,
        &mut out,
    )
    .await
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_warning_tightens_a_level_at_once_and_its_cancel_clears_it() {
    let lines = vec![
        birth("tail-01", "410522"), // under Anyang city (4105..)
        birth("tail-02", "410622"), // Hebi: outside
        reading("tail-01", 1, "2026-07-28T01:00:00Z", 9.0),
        reading("tail-02", 1, "2026-07-28T01:00:00Z", 9.0),
        // 10:00+08:00 = 02:00Z: rainstorm orange for 410500. 9.0 m is now past the tightened 8.0 m.
        json!({"topic": "hrs/v1/weather/cap", "payload": cap("cn_rainstorm_orange_410500.xml")}),
    ];
    let events = replay(&lines).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let raised = &events[0];
    assert_eq!(raised["event"], "raised");
    assert_eq!(
        raised["site"], "tail-01",
        "410500 covers 410522 and not 410622"
    );
    assert_eq!(raised["threshold"], 8.0);
    assert_eq!(raised["value"], 9.0);
    assert_eq!(
        raised["severity"], "alarm",
        "one step more severe under the warning"
    );
    assert_eq!(
        raised["at"], "2026-07-28T02:00:00.000Z",
        "judged at once, at the warning's time, on the latest value"
    );
    assert_eq!(raised["warnings"].as_array().unwrap().len(), 1);
    assert!(raised["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("41050041600000_20260728100000"));
}

#[tokio::test]
async fn the_red_update_restates_the_warnings_and_the_cancel_clears() {
    let lines = vec![
        birth("tail-01", "410522"),
        reading("tail-01", 1, "2026-07-28T01:00:00Z", 9.0),
        json!({"topic": "hrs/v1/weather/cap", "payload": cap("cn_rainstorm_orange_410500.xml")}),
        json!({"topic": "hrs/v1/weather/cap", "payload": cap("cn_rainstorm_red_410500_update.xml")}),
        json!({"topic": "hrs/v1/weather/cap", "payload": cap("cn_rainstorm_410500_cancel.xml")}),
    ];
    let events = replay(&lines).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // Red under the same context rule (orange or higher) keeps the severity: the incident's
    // `warnings` move from the orange alert to the red one in a `commented` event of the
    // gateway; the cancel ends the warning and the normal level applies again.
    assert_eq!(kinds, ["raised", "commented", "cleared"], "{events:#?}");
    let orange = events[0]["warnings"][0].as_str().unwrap();
    let restated = &events[1];
    assert_eq!(restated["by"], "gateway");
    assert_eq!(restated["id"], events[0]["id"], "the same incident");
    assert_eq!(restated["severity"], "alarm");
    assert_eq!(restated["state"], "active");
    let now_shaping: Vec<&str> = restated["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(now_shaping.len(), 1, "{restated}");
    assert_ne!(
        now_shaping[0], orange,
        "the red update replaced the orange alert"
    );
    assert_eq!(
        restated["note"],
        format!("weather warnings now: {}", now_shaping[0])
    );
    let cleared = events.last().unwrap();
    assert_eq!(
        cleared["at"], "2026-07-28T10:00:00.000Z",
        "cleared at the cancel's time"
    );
    assert_eq!(cleared["value"], 9.0);
    // Same input, same output, byte for byte.
    assert_eq!(replay(&lines).await, events);
}

#[tokio::test]
async fn an_expired_warning_ends_by_itself() {
    let lines = vec![
        birth("tail-01", "410522"),
        reading("tail-01", 1, "2026-07-28T01:00:00Z", 9.0),
        json!({"topic": "hrs/v1/weather/cap", "payload": cap("cn_rainstorm_orange_410500.xml")}),
        // A reading after the warning's `expires` (2026-07-29T10:00+08:00 = 02:00Z).
        reading("tail-01", 2, "2026-07-29T03:00:00Z", 9.0),
    ];
    let events = replay(&lines).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["raised", "cleared"], "{events:#?}");
    assert_eq!(
        events[1]["at"], "2026-07-29T02:00:00.000Z",
        "cleared at the warning's expiry, not at the next reading"
    );
}
