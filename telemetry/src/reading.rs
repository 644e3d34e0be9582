//! Readings: one value of one point at one event time, with its quality.

use crate::ids::{AgentId, PointId};
use crate::time::{serde_ts, Timestamp};
use serde::{Deserialize, Serialize};

/// How far a reading can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    #[default]
    Good,
    /// Judged like good; incidents say so.
    Uncertain,
    /// Sensor fault or communication failure: never raises a threshold incident.
    Bad,
    /// The sensor is being calibrated: never raises a threshold incident.
    Calibration,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Uncertain => "uncertain",
            Quality::Bad => "bad",
            Quality::Calibration => "calibration",
        }
    }
    /// The integer written to the time series: 0 good, 1 uncertain, 2 bad, 3 calibration.
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn parse(s: &str) -> Option<Quality> {
        Some(match s {
            "good" => Quality::Good,
            "uncertain" => Quality::Uncertain,
            "bad" => Quality::Bad,
            "calibration" => Quality::Calibration,
            _ => return None,
        })
    }
    /// Whether threshold rules may judge a reading of this quality.
    pub fn judgeable(self) -> bool {
        matches!(self, Quality::Good | Quality::Uncertain)
    }
}

/// A vehicle or person position (WGS-84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_m: Option<f64>,
}

/// The value of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Position(Position),
    /// Only with quality `bad`.
    Null,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Number(v) => Some(v),
            Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            Value::Number(v) => Some(v != 0.0),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One reading of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub point: PointId,
    #[serde(with = "serde_ts")]
    pub ts: Timestamp,
    pub value: Value,
    #[serde(default)]
    pub quality: Quality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Reading {
    pub fn good(point: PointId, ts: Timestamp, value: Value) -> Self {
        Reading {
            point,
            ts,
            value,
            quality: Quality::Good,
            reason: None,
        }
    }
    pub fn bad(point: PointId, ts: Timestamp, reason: impl Into<String>) -> Self {
        Reading {
            point,
            ts,
            value: Value::Null,
            quality: Quality::Bad,
            reason: Some(reason.into()),
        }
    }
}

/// A batch of readings as an agent publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub agent: AgentId,
    #[serde(default)]
    pub epoch: String,
    pub seq: u64,
    pub readings: Vec<Reading>,
}
