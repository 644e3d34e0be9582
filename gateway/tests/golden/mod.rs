//! What the golden tests of the standard pack share: a script of input lines for
//! `gateway replay`, and each output event as one line,
//! `event rule site/subject severity v=value th=threshold @at w=[warnings]`, to compare with
//! lines written by hand.

#![allow(dead_code)]

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// `secs` after `t0` (RFC 3339), as the output writes times (`2026-11-28T02:00:10.000Z`).
pub fn after(t0: &str, secs: i64) -> String {
    let t0: DateTime<Utc> = t0.parse().unwrap();
    (t0 + Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A CAP document of the weather crate's fixtures as an input line.
pub fn cap(name: &str) -> Value {
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../weather/tests/data")
            .join(name),
    )
    .unwrap();
    json!({"topic": "hrs/v1/weather/cap", "payload": xml})
}

/// Input lines for `gateway replay`, one agent (`edge`) per site, seqs counted per site.
#[derive(Default)]
pub struct Script {
    lines: Vec<Value>,
    seq: BTreeMap<String, u64>,
}

impl Script {
    /// A birth; `site` is the birth's site block (category, region, ...).
    pub fn birth(&mut self, site_id: &str, site: Value, points: Value) -> &mut Self {
        self.lines.push(
            json!({"topic": format!("hrs/v1/sites/{site_id}/edge/birth"),
            "payload": {"agent": "edge", "site": site, "points": points}}),
        );
        self
    }

    /// One reading at `ts` (RFC 3339).
    pub fn read(&mut self, site: &str, point: &str, ts: &str, value: Value) -> &mut Self {
        let seq = self.seq.entry(site.to_string()).or_insert(0);
        *seq += 1;
        self.lines.push(json!({"topic": format!("hrs/v1/sites/{site}/edge/readings"),
            "payload": {"agent": "edge", "seq": *seq, "readings": [{"point": point, "ts": ts, "value": value}]}}));
        self
    }

    pub fn push(&mut self, line: Value) -> &mut Self {
        self.lines.push(line);
        self
    }

    pub async fn replay(&self) -> Vec<Value> {
        let input: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        let mut out = Vec::new();
        gateway::app::replay::replay(input.as_bytes(), None, presentation::Language::En, &mut out)
            .await
            .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// An output event as one line.
pub fn line(e: &Value) -> String {
    let subject = match (e["zone"].as_str(), e["point"].as_str()) {
        (Some(z), Some(p)) => format!("zone:{z}({p})"),
        (Some(z), None) => format!("zone:{z}"),
        (None, Some(p)) => p.to_string(),
        (None, None) => format!("agent:{}", e["agent"].as_str().unwrap_or("")),
    };
    format!(
        "{} {} {}/{} {} v={} th={} @{} w={}",
        e["event"].as_str().unwrap(),
        e["rule"].as_str().unwrap(),
        e["site"].as_str().unwrap(),
        subject,
        e["severity"].as_str().unwrap(),
        e["value"],
        e["threshold"],
        e["at"].as_str().unwrap(),
        e["warnings"]
    )
}

/// An expected event, by hand: what caused it (`value`, `threshold`) and when (`at` as the
/// output writes it).
pub struct Ev<'a> {
    pub event: &'a str,
    pub rule: &'a str,
    pub site: &'a str,
    pub subject: &'a str,
    pub severity: &'a str,
    pub value: Value,
    pub threshold: Option<f64>,
    pub at: String,
    pub warnings: &'a [&'a str],
}

impl Ev<'_> {
    pub fn line(&self) -> String {
        format!(
            "{} {} {}/{} {} v={} th={} @{} w={}",
            self.event,
            self.rule,
            self.site,
            self.subject,
            self.severity,
            self.value,
            self.threshold.map_or(Value::Null, |x| json!(x)),
            self.at,
            json!(self.warnings)
        )
    }
}

/// The events of one site, as lines.
pub fn of_site(events: &[Value], site: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["site"] == site)
        .map(line)
        .collect()
}

/// The events of one site and rule, as lines.
pub fn of_rule(events: &[Value], site: &str, rule: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["site"] == site && e["rule"] == rule)
        .map(line)
        .collect()
}
