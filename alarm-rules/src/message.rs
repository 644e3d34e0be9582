//! What a transition says, as data: which point, value, level and place, never words. The
//! gateway renders it for people in their language (the `presentation` crate); the engine
//! makes no text.

use crate::api::WarningLevel;
use serde::Serialize;
use telemetry::{AgentId, LimitKey, PointId, PointSpec, Quantity, Severity, Unit, Value};

/// A point as a message names it: what it measures and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointTerms {
    pub point: PointId,
    /// `None` where the catalogue does not describe the point.
    pub quantity: Option<Quantity>,
    /// The gas, for `toxic` and `lel` points.
    pub gas: Option<String>,
    pub unit: Option<Unit>,
    pub location: Option<String>,
    /// A vehicle's plate and driver (catalogue tags `plate`, `driver`), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

impl PointTerms {
    pub(crate) fn of(point: &PointId, spec: Option<&PointSpec>) -> Self {
        PointTerms {
            point: point.clone(),
            quantity: spec.map(|s| s.quantity.clone()),
            gas: spec.and_then(|s| s.gas.clone()),
            unit: spec.map(|s| s.unit.clone()),
            location: spec.and_then(|s| s.location.clone()),
            plate: spec.and_then(|s| s.tag("plate")).map(str::to_string),
            driver: spec.and_then(|s| s.tag("driver")).map(str::to_string),
        }
    }
}

/// How a value stands to a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `>=`
    AtLeast,
    /// `>`
    Above,
    /// `<=`
    AtMost,
    /// `<`
    Below,
}

/// Where a threshold transition leaves the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelPhase {
    /// Raised or escalated: the value is past the level.
    Crossed,
    /// De-escalated: back under a higher level, still past this one.
    StillPast,
    /// Cleared: the value is past the level's clear value.
    Cleared,
}

/// Why a sensor is taken for faulty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum FaultCause {
    /// The value lies outside the point's physical range (`None`: the range is unknown).
    OutOfRange { range: Option<[f64; 2]> },
    /// The value has not changed for too long.
    Stuck { value: f64 },
    /// The reading's quality is bad.
    QualityBad,
}

/// A state that became active more than `max_starts` times within `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TooOften {
    pub max_starts: u32,
    pub window_ms: u64,
}

/// A member condition of a composite rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "is", rename_all = "snake_case")]
pub enum Condition {
    AtLeast {
        value: f64,
    },
    Below {
        value: f64,
    },
    Equals {
        value: bool,
    },
    /// An open cause of rules matching `rule`, at least `min_severity`.
    Cause {
        rule: String,
        min_severity: Severity,
    },
    /// Below the point's own alarm setting `limit` (`hh`, `h`, `l`, `ll`).
    BelowLimit {
        limit: LimitKey,
    },
    /// The point is there (a configuration rule's member).
    Present,
}

/// A warning in force that a site-level rule names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningTerms {
    pub id: String,
    /// e.g. `rainstorm`, `earthquake`.
    pub kind: String,
    pub level: WarningLevel,
    pub magnitude: Option<f64>,
}

/// What a transition says.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "says", rename_all = "snake_case")]
pub enum Message {
    /// A threshold level: crossed, still past (after a higher one cleared), or cleared. For
    /// `Cleared`, `comparison`, `label` and `level` are those of the clear side.
    Level {
        point: PointTerms,
        value: Value,
        phase: LevelPhase,
        comparison: Comparison,
        label: String,
        level: f64,
    },
    /// A rate of change within a window: `by` in the point's unit (`None` when cleared).
    Rate {
        point: PointTerms,
        value: Value,
        fell: bool,
        by: Option<f64>,
        window_ms: u64,
    },
    SensorFault {
        point: PointTerms,
        value: Value,
        why: FaultCause,
        cleared: bool,
    },
    /// No reading for longer than `limit_ms`.
    MissingData {
        point: PointTerms,
        limit_ms: u64,
        cleared: bool,
    },
    /// A state (`label`, e.g. "interlock bypassed"); `longer_than_ms` when it escalated for
    /// lasting too long.
    State {
        point: PointTerms,
        label: String,
        longer_than_ms: Option<u64>,
        /// It escalated for becoming active more than `max_starts` times within the window.
        #[serde(skip_serializing_if = "Option::is_none")]
        too_often: Option<TooOften>,
        cleared: bool,
    },
    /// A zone's composite condition no longer holds.
    ZoneCleared { zone: String, rule: String },
    /// All members hold.
    ZoneAll { zone: String, rule: String },
    /// A member holds (`point`: the one that completed it).
    ZoneAny {
        zone: String,
        rule: String,
        point: Option<PointId>,
    },
    /// After `trigger` (a point and the condition it met), `proof` was not shown within
    /// `within_ms` by any of `still_not`.
    ZoneNotProven {
        zone: String,
        proof: Condition,
        within_ms: u64,
        trigger: Option<(PointId, Condition)>,
        still_not: Vec<PointId>,
    },
    /// A zone's configuration lacks something: `points` (the zone's points that need it) have
    /// no point of the `missing` quantities beside them in the zone (`a_without_b`).
    ZoneUnequipped {
        zone: String,
        rule: String,
        points: Vec<PointId>,
        missing: Vec<Quantity>,
    },
    /// A site-level rule (`label`) called for by warnings in force (empty when cleared).
    Warning {
        label: String,
        warnings: Vec<WarningTerms>,
        cleared: bool,
    },
    /// An agent's link.
    Agent { agent: AgentId, online: bool },
    /// The rule no longer applies to the cause (`maybe_removed`: or it left the rule set).
    RuleGone { rule: String, maybe_removed: bool },
    /// Nothing to say (a kind with no point-level text).
    Nothing,
}
