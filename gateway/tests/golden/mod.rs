//! What the golden tests of the standard pack share: a script of input lines for
//! `gateway replay`, and each output event as one line,
//! `event rule site/subject severity v=value th=threshold @at w=[warnings]`, to compare with
//! lines written by hand.

#![allow(dead_code)]

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The start of the scripts that count time in seconds.
pub const T0: &str = "2026-11-28T02:00:00Z";

/// `secs` after [`T0`], as the output writes times.
pub fn t(secs: i64) -> String {
    after(T0, secs)
}

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

/// A CENC earthquake document (its `shuju` items) as an input line.
pub fn cenc(items: Value) -> Value {
    json!({"topic": "hrs/v1/weather/cenc", "payload": {"shuju": items}})
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

    /// A birth whose site block names the category only.
    pub fn birth_of(&mut self, site_id: &str, category: &str, points: Value) -> &mut Self {
        self.birth(site_id, json!({ "category": category }), points)
    }

    /// A birth of a site with a region and a position.
    pub fn birth_in(
        &mut self,
        site_id: &str,
        category: &str,
        region: &str,
        lat: f64,
        lon: f64,
        points: Value,
    ) -> &mut Self {
        let site = json!({"category": category, "region": region, "lat": lat, "lon": lon});
        self.birth(site_id, site, points)
    }

    /// One reading `secs` after [`T0`].
    pub fn read_at(&mut self, site: &str, point: &str, secs: i64, value: Value) -> &mut Self {
        self.read(site, point, &t(secs), value)
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

    /// The script through `gateway replay` (messages in English): its output events.
    pub async fn replay(&self) -> Vec<Value> {
        let input: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        let mut out = Vec::new();
        let language = presentation::Language::En;
        gateway::app::replay::replay(input.as_bytes(), None, language, &mut out)
            .await
            .expect("replay");
        let text = String::from_utf8(out).expect("UTF-8 output");
        text.lines()
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

/// When an expected event happens and which warnings shaped it: `secs` after [`T0`] (no
/// warning), or a time as the output writes it (`2026-07-28T02:00:00.000Z`) with warning ids.
pub trait At {
    fn at_and_warnings(&self) -> (String, Value);
}

impl At for i64 {
    fn at_and_warnings(&self) -> (String, Value) {
        (t(*self), json!([]))
    }
}

impl At for (&str, &[&str]) {
    fn at_and_warnings(&self) -> (String, Value) {
        (self.0.to_string(), json!(self.1))
    }
}

impl<const N: usize> At for (&str, &[&str; N]) {
    fn at_and_warnings(&self) -> (String, Value) {
        (self.0, self.1.as_slice()).at_and_warnings()
    }
}

/// An expected event, by hand, as one line: what caused it (`value`, `threshold`), when and
/// under which warnings.
#[allow(clippy::too_many_arguments)]
pub fn ev(
    event: &str,
    rule: &str,
    site: &str,
    subject: &str,
    severity: &str,
    value: Value,
    threshold: Option<f64>,
    at: impl At,
) -> String {
    let (at, warnings) = at.at_and_warnings();
    let threshold = threshold.map_or(Value::Null, |x| json!(x));
    format!(
        "{event} {rule} {site}/{subject} {severity} v={value} th={threshold} @{at} w={warnings}"
    )
}

/// The expected events of one cause, `rule` at `site` about `subject`: a function of the
/// event, the severity, the value and threshold that caused it and the seconds after [`T0`].
pub fn cause<'a>(
    rule: &'a str,
    site: &'a str,
    subject: &'a str,
) -> impl Fn(&str, &str, Value, Option<f64>, i64) -> String + 'a {
    move |event, severity, value, threshold, secs| {
        ev(event, rule, site, subject, severity, value, threshold, secs)
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

/// Each site's events are the lines expected of it, and there are no others.
pub fn assert_sites(events: &[Value], want: &[(String, Vec<String>)]) {
    for (site, lines) in want {
        assert_eq!(&of_site(events, site), lines, "{site}");
    }
    let n: usize = want.iter().map(|(_, l)| l.len()).sum();
    assert_eq!(events.len(), n, "no other events");
}

/// The events of one site and rule, as lines.
pub fn of_rule(events: &[Value], site: &str, rule: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["site"] == site && e["rule"] == rule)
        .map(line)
        .collect()
}
