//! `gateway replay`: recorded messages through the same core as the running gateway, on a
//! clock that follows the event time of the input, with an in-memory store. The same input
//! gives the same output byte for byte.

use crate::clock::{Clock, ManualClock, SharedClock};
use crate::config::GatewayConfig;
use crate::core::Core;
use crate::metrics::Metrics;
use crate::store::Store;
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use telemetry::{parse_time, EventKind, Timestamp, TopicScheme};

#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub lines: u64,
    pub bad_lines: u64,
    pub events: u64,
    /// Incidents raised per rule.
    pub raised_per_rule: BTreeMap<String, u64>,
    /// Incidents raised per rule and site.
    pub raised_per_rule_site: BTreeMap<(String, String), u64>,
    /// When each cause was raised (event time), to tell the chattering ones
    /// ([`telemetry::chatters`]).
    pub raises_per_cause: BTreeMap<String, Vec<Timestamp>>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "replay: {} lines ({} unreadable), {} incident events",
            self.lines, self.bad_lines, self.events
        )?;
        for (rule, n) in &self.raised_per_rule {
            writeln!(f, "  {rule}: {n} incidents")?;
        }
        let chattering: Vec<_> = self
            .raises_per_cause
            .iter()
            .filter(|(_, times)| telemetry::chatters(times))
            .collect();
        writeln!(
            f,
            "chattering causes (raised {} times or more within {} h): {}",
            telemetry::CHATTER_RAISES,
            telemetry::CHATTER_WINDOW.num_hours(),
            chattering.len()
        )?;
        for (cause, times) in chattering {
            writeln!(f, "  {cause}: raised {} times", times.len())?;
        }
        Ok(())
    }
}

/// The event time a message carries: the newest reading time of a batch, a status time, a
/// CAP `<sent>`; `None` where it carries none (a birth).
fn event_time(payload: &serde_json::Value) -> Option<Timestamp> {
    if let Some(readings) = payload.get("readings").and_then(|r| r.as_array()) {
        return readings
            .iter()
            .filter_map(|r| r.get("ts")?.as_str().and_then(|t| parse_time(t).ok()))
            .max();
    }
    if let Some(ts) = payload.get("ts").and_then(|t| t.as_str()) {
        return parse_time(ts).ok();
    }
    if let Some(xml) = payload.as_str() {
        let start = xml.find("<sent>").or_else(|| xml.find(":sent>"))?;
        let rest = &xml[start..];
        let open = rest.find('>')? + 1;
        let close = rest[open..].find('<')?;
        return parse_time(rest[open..open + close].trim()).ok();
    }
    None
}

pub async fn replay(
    input: &[u8],
    rules_dir: Option<&Path>,
    language: presentation::Language,
    out: &mut dyn Write,
) -> anyhow::Result<ReplaySummary> {
    let config = GatewayConfig {
        rules_dir: rules_dir.map(Path::to_path_buf),
        ..GatewayConfig::default()
    };
    let rules = crate::app::rules::load_rules(&config)?;
    let store = Store::open("sqlite::memory:").await?;
    // The clock starts at the first event time in the input.
    let start = input
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("payload").and_then(event_time))
        .unwrap_or_else(|| parse_time("2000-01-01T00:00:00Z").expect("literal"));
    let clock = ManualClock::new(start);
    let shared: SharedClock = Arc::new(clock.clone());
    // A hash key drawn per run, like the gateway's: replay's output must not depend on it.
    let engine = alarm_rules::Engine::new(
        rules,
        alarm_rules::EngineConfig {
            hash_seed: rand::random(),
            ..Default::default()
        },
    );
    let mut core = Core::start(
        engine,
        store,
        shared,
        TopicScheme::new(config.mqtt.topic_prefix.clone()),
        crate::core::config::CoreSettings {
            language,
            // Nobody acknowledges in a replay: supervision (overdue events) is the running
            // gateway's, not the rules'.
            supervision: crate::core::supervision::SupervisionConfig {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        },
        Metrics::new(),
    )
    .await
    .context("starting the replay core")?;
    let mut summary = ReplaySummary::default();
    let emit = |events: Vec<telemetry::IncidentEvent>,
                summary: &mut ReplaySummary,
                out: &mut dyn Write|
     -> anyhow::Result<()> {
        for ev in events {
            summary.events += 1;
            if ev.event == EventKind::Raised {
                *summary
                    .raised_per_rule
                    .entry(ev.incident.rule.clone())
                    .or_default() += 1;
                *summary
                    .raised_per_rule_site
                    .entry((ev.incident.rule.clone(), ev.incident.site.to_string()))
                    .or_default() += 1;
                let cause = crate::core::lifecycle::cause_label(&ev.incident);
                summary
                    .raises_per_cause
                    .entry(cause)
                    .or_default()
                    .push(ev.incident.raised_at);
            }
            serde_json::to_writer(&mut *out, &ev)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    for (n, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let msg: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                summary.bad_lines += 1;
                eprintln!("line {}: not JSON: {e}", n + 1);
                continue;
            }
        };
        let (Some(topic), Some(payload)) = (
            msg.get("topic").and_then(|t| t.as_str()),
            msg.get("payload"),
        ) else {
            summary.bad_lines += 1;
            eprintln!("line {}: needs \"topic\" and \"payload\"", n + 1);
            continue;
        };
        if let Some(t) = event_time(payload) {
            // Timers due before this message fire at their own time, in order.
            while let Some(due) = core.next_deadline() {
                if due > t || due <= clock.now() {
                    break;
                }
                clock.advance_to(due);
                let events = core.tick().await?;
                emit(events, &mut summary, out)?;
            }
            clock.advance_to(t);
        }
        let events = core.tick().await?;
        emit(events, &mut summary, out)?;
        let bytes = match payload {
            serde_json::Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other)?,
        };
        let events = core.handle_message(topic, &bytes).await?;
        emit(events, &mut summary, out)?;
    }
    out.flush()?;
    Ok(summary)
}

/// A what-if run: the same input through two rule sets; what each raised.
#[derive(Debug)]
pub struct WhatIf {
    pub a: ReplaySummary,
    pub b: ReplaySummary,
    /// How the two sets are named in the report (their files).
    pub names: [String; 2],
}

/// Run `input` through rule set `a` and rule set `b` (each the built-in pack plus the files
/// of a directory, as `--rules`), dropping the events: what each raised.
pub async fn what_if(
    input: &[u8],
    a: Option<&Path>,
    b: Option<&Path>,
    language: presentation::Language,
) -> anyhow::Result<WhatIf> {
    let name = |p: Option<&Path>| {
        p.map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in pack".into())
    };
    let sa = replay(input, a, language, &mut std::io::sink()).await?;
    let sb = replay(input, b, language, &mut std::io::sink()).await?;
    Ok(WhatIf {
        a: sa,
        b: sb,
        names: [name(a), name(b)],
    })
}

impl WhatIf {
    /// Causes (`rule site subject`) raised a different number of times: (cause, by a, by b).
    pub fn differing_causes(&self) -> Vec<(String, usize, usize)> {
        let causes: std::collections::BTreeSet<&String> = self
            .a
            .raises_per_cause
            .keys()
            .chain(self.b.raises_per_cause.keys())
            .collect();
        let n = |s: &ReplaySummary, c: &String| s.raises_per_cause.get(c).map_or(0, Vec::len);
        causes
            .into_iter()
            .map(|c| (c.clone(), n(&self.a, c), n(&self.b, c)))
            .filter(|(_, x, y)| x != y)
            .collect()
    }
}

impl std::fmt::Display for WhatIf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b] = &self.names;
        writeln!(f, "what-if over {} lines: A = {a}, B = {b}", self.a.lines)?;
        writeln!(f, "incidents raised per rule and site (A, B):")?;
        let keys: std::collections::BTreeSet<&(String, String)> = self
            .a
            .raised_per_rule_site
            .keys()
            .chain(self.b.raised_per_rule_site.keys())
            .collect();
        let n = |s: &ReplaySummary, k: &(String, String)| {
            s.raised_per_rule_site.get(k).copied().unwrap_or(0)
        };
        for k in keys {
            let (x, y) = (n(&self.a, k), n(&self.b, k));
            let mark = if x == y { "" } else { "  differs" };
            writeln!(f, "  {} {}: A {x}, B {y}{mark}", k.0, k.1)?;
        }
        let differing = self.differing_causes();
        writeln!(f, "causes that differ: {}", differing.len())?;
        for (cause, x, y) in differing {
            writeln!(f, "  {cause}: A raised {x}, B raised {y}")?;
        }
        Ok(())
    }
}
