//! Helpers shared by the integration tests.
#![allow(dead_code)]

use alarm_rules::{Engine, EngineConfig, RuleSet, SiteContext, Transition, TransitionKind};
use chrono::{DateTime, Duration};
use std::collections::BTreeMap;
use telemetry::{
    AgentId, Catalogue, Category, PointId, PointSpec, Quality, Quantity, Reading, SiteId,
    Timestamp, Unit, Value,
};

pub fn t0() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .unwrap()
        .to_utc()
}
pub fn at(secs: i64) -> Timestamp {
    t0() + Duration::seconds(secs)
}
pub fn at_ms(ms: i64) -> Timestamp {
    t0() + Duration::milliseconds(ms)
}
pub fn site() -> SiteId {
    SiteId::new("mine-01").unwrap()
}
pub fn agent() -> AgentId {
    AgentId::new("mine-01-edge").unwrap()
}
pub fn pid(s: &str) -> PointId {
    PointId::new(s).unwrap()
}

pub fn spec(point: &str, quantity: &str, unit: &str) -> PointSpec {
    PointSpec::new(pid(point), Quantity::parse(quantity), Unit::parse(unit))
}
pub fn with_location(mut s: PointSpec, loc: &str) -> PointSpec {
    s.location = Some(loc.to_string());
    s
}
pub fn with_tag(mut s: PointSpec, k: &str, v: &str) -> PointSpec {
    s.tags.insert(k.to_string(), v.to_string());
    s
}
pub fn ch4(point: &str, loc: &str) -> PointSpec {
    with_location(spec(point, "ch4", "%"), loc)
}

pub fn catalogue(points: Vec<PointSpec>) -> Catalogue {
    Catalogue {
        agent: agent(),
        epoch: String::new(),
        site: None,
        points,
    }
}

/// An engine with `rules`, one site of `category` and a catalogue whose birth raised nothing.
pub fn engine_with(rules: RuleSet, category: Category, points: Vec<PointSpec>) -> Engine {
    let (e, out) = engine_born(rules, category, points);
    assert!(out.is_empty(), "{out:?}");
    e
}

/// An engine with `rules`, one site of `category` and a catalogue, and what its birth raised.
pub fn engine_born(
    rules: RuleSet,
    category: Category,
    points: Vec<PointSpec>,
) -> (Engine, Vec<Transition>) {
    let mut e = Engine::new(rules, EngineConfig::default());
    e.set_site(
        &site(),
        SiteContext {
            category: Some(category),
            region: None,
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    e.set_catalogue(&site(), &catalogue(points), t0(), &mut out);
    (e, out)
}

pub fn coal(points: Vec<PointSpec>) -> Engine {
    engine_with(RuleSet::builtin(), Category::CoalMine, points)
}

pub fn reading(point: &str, ts: Timestamp, v: f64) -> Reading {
    Reading::good(pid(point), ts, Value::Number(v))
}
pub fn reading_q(point: &str, ts: Timestamp, v: Value, q: Quality) -> Reading {
    Reading {
        point: pid(point),
        ts,
        value: v,
        quality: q,
        reason: None,
    }
}

/// Feed one reading (clock = reading time) and return the transitions.
pub fn feed(e: &mut Engine, r: &Reading) -> Vec<Transition> {
    let mut out = Vec::new();
    e.on_reading(&site(), &agent(), r, r.ts, &mut out);
    out
}
pub fn num(e: &mut Engine, point: &str, ts: Timestamp, v: f64) -> Vec<Transition> {
    feed(e, &reading(point, ts, v))
}
pub fn boolean(e: &mut Engine, point: &str, ts: Timestamp, v: bool) -> Vec<Transition> {
    feed(e, &Reading::good(pid(point), ts, Value::Bool(v)))
}
pub fn tick(e: &mut Engine, now: Timestamp) -> Vec<Transition> {
    let mut out = Vec::new();
    e.tick(now, &mut out);
    out
}

pub fn kinds(ts: &[Transition]) -> Vec<(String, TransitionKind, telemetry::Severity)> {
    ts.iter()
        .map(|t| (t.cause.rule.clone(), t.kind, t.severity))
        .collect()
}

pub fn rules(text: &str) -> RuleSet {
    RuleSet::parse(&[("test.toml".to_string(), text.to_string())], false)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Rows of the methane table shipped with the pack.
pub struct MethaneRow {
    pub location: String,
    pub alarm: f64,
    pub power_off: Option<f64>,
    pub restore: Option<f64>,
}
pub fn methane_rows() -> Vec<MethaneRow> {
    let text = include_str!("../../rules/methane_levels.csv");
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let opt = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.parse::<f64>().unwrap())
            }
        };
        rows.push(MethaneRow {
            location: f[0].to_string(),
            alarm: f[2].parse().unwrap(),
            power_off: opt(f[3]),
            restore: opt(f[4]),
        });
    }
    rows
}

pub fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
