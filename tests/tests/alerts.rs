//! The alerting rules of `dashboards/prometheus/alerts.yml`: `promtool check rules` finds them
//! well formed and `promtool test rules` runs their unit tests (`alerts_test.yml`: each alert
//! fires on the series the gateway and agents publish, and the look-alikes that must not
//! page, a standby's 503 among them, do not). That the metrics they name are really published,
//! and that a real Prometheus loads the rules, is checked in `dashboards.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/prometheus")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("promtool is not installed (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn alert_rules_are_well_formed_and_pass_their_unit_tests() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every alert of the file has a unit test that makes it fire, with its severity and
/// a summary that is Chinese first.
#[test]
fn every_alert_is_tested_and_says_what_happened_in_chinese_first() {
    let rules = std::fs::read_to_string(dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir().join("alerts_test.yml")).unwrap();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    for name in &names {
        // A test case that expects the alert (an `exp_labels` under its name).
        let fired = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(name) && case.contains("exp_labels"));
        assert!(fired, "{name}: no unit test makes it fire");
    }
    for l in rules.lines().filter(|l| l.trim().starts_with("summary:")) {
        let text = l
            .trim()
            .trim_start_matches("summary:")
            .trim()
            .trim_matches('"');
        let first = text.chars().next().unwrap();
        assert!(
            ('\u{4e00}'..='\u{9fff}').contains(&first),
            "a summary is Chinese first: {l}"
        );
    }
    for sev in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("severity: "))
    {
        assert!(["critical", "warning"].contains(&sev), "{sev}");
    }
}
