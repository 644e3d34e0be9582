//! The JSON wire codec of the contract.
//!
//! Decoding is lenient where the contract says so and precise where it refuses: a batch whose
//! envelope is broken is refused whole with a [`BatchError`]; inside a sound envelope each
//! reading is judged alone, the good ones are taken and each bad one is refused with a
//! [`ReadingError`] that names the reason. Decoding is a pure function of the bytes and the
//! clock passed in.

use crate::catalogue::{AgentStatus, Catalogue, PointSpec};
use crate::ids::{AgentId, IdError, PointId};
use crate::reading::{Batch, Position, Quality, Reading, Value};
use crate::time::{parse_time, truncate, TimeError, Timestamp};
use serde_json::{Map, Value as Json};
use std::collections::HashSet;

/// Bounds on what a decoder accepts; beyond them a payload is refused whole.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeLimits {
    /// The largest payload, in bytes.
    pub max_bytes: usize,
    /// The most readings in one batch (or points in one catalogue).
    pub max_items: usize,
    /// The deepest nesting of arrays and objects.
    pub max_depth: usize,
    /// How far ahead of the clock a reading's time may lie.
    pub max_future: chrono::Duration,
    /// The longest `reason` text kept; longer ones are cut.
    pub max_reason_chars: usize,
    /// The longest free text of a catalogue (a point's name, location, quantity, unit, gas, a
    /// tag's key or value; the site's name), in characters; a point beyond it is refused.
    pub max_text_chars: usize,
    /// The most tags of one point.
    pub max_tags: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 4 * 1024 * 1024,
            max_items: 20_000,
            max_depth: 16,
            max_future: chrono::Duration::minutes(5),
            max_reason_chars: 256,
            max_text_chars: 256,
            max_tags: 32,
        }
    }
}

/// Why a point of a catalogue breaks the text bounds (`None`: within them).
fn point_text_error(p: &PointSpec, limits: &DecodeLimits) -> Option<String> {
    let max = limits.max_text_chars;
    let long = |what: &str, v: &str| {
        (v.chars().count() > max)
            .then(|| format!("point {}: {what} longer than {max} characters", p.point))
    };
    if p.tags.len() > limits.max_tags {
        return Some(format!(
            "point {}: {} tags, more than the limit of {}",
            p.point,
            p.tags.len(),
            limits.max_tags
        ));
    }
    long("quantity", p.quantity.as_str())
        .or_else(|| long("unit", p.unit.as_str()))
        .or_else(|| p.name.as_deref().and_then(|v| long("name", v)))
        .or_else(|| p.location.as_deref().and_then(|v| long("location", v)))
        .or_else(|| p.gas.as_deref().and_then(|v| long("gas", v)))
        .or_else(|| {
            p.tags
                .iter()
                .find_map(|(k, v)| long("a tag key", k).or_else(|| long(&format!("tag {k:?}"), v)))
        })
}

/// Why a whole payload was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("payload of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("payload is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("payload nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("payload is not JSON: {0}")]
    Syntax(String),
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field `agent`: {0}")]
    BadAgent(IdError),
    #[error("payload names agent {payload:?} but was published on the topic of agent {topic:?}")]
    AgentMismatch { topic: String, payload: String },
    #[error("{count} items exceed the limit of {limit}")]
    TooMany { count: usize, limit: usize },
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl BatchError {
    /// A short stable code, for metric labels and dead letters.
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::TooLarge { .. } => "too_large",
            BatchError::NotUtf8 { .. } => "not_utf8",
            BatchError::TooDeep { .. } => "too_deep",
            BatchError::Syntax(_) => "not_json",
            BatchError::NotAnObject => "not_an_object",
            BatchError::MissingField(_) => "missing_field",
            BatchError::WrongType { .. } => "wrong_type",
            BatchError::BadAgent(_) => "bad_id",
            BatchError::AgentMismatch { .. } => "agent_mismatch",
            BatchError::TooMany { .. } => "too_many",
            BatchError::Invalid { .. } => "invalid",
        }
    }
}

/// Why one reading of a batch was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadingError {
    #[error("reading is not a JSON object")]
    NotAnObject,
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field `point`: {0}")]
    BadPoint(IdError),
    #[error("field `ts`: {0}")]
    BadTime(TimeError),
    #[error("time {ts} lies more than {limit_s} s ahead of the clock ({now})")]
    Future {
        ts: String,
        now: String,
        limit_s: i64,
    },
    #[error("quality {0:?} is not good, uncertain, bad or calibration")]
    BadQuality(String),
    #[error("value is null but quality is {0} (null is only allowed with quality bad)")]
    NullWithoutBad(&'static str),
    #[error("value must be a number, a bool, a position object or null")]
    BadValue,
    #[error("position: {0}")]
    BadPosition(String),
    #[error("unknown field `{0}`")]
    UnknownField(String),
}

impl ReadingError {
    /// A short stable code, for metric labels and dead letters.
    pub fn code(&self) -> &'static str {
        match self {
            ReadingError::NotAnObject => "not_an_object",
            ReadingError::MissingField(_) => "missing_field",
            ReadingError::WrongType { .. } => "wrong_type",
            ReadingError::BadPoint(_) => "bad_id",
            ReadingError::BadTime(TimeError::NoZone(_)) => "time_without_zone",
            ReadingError::BadTime(TimeError::Malformed(_)) => "bad_time",
            ReadingError::Future { .. } => "future",
            ReadingError::BadQuality(_) => "bad_quality",
            ReadingError::NullWithoutBad(_) => "null_without_bad",
            ReadingError::BadValue => "bad_value",
            ReadingError::BadPosition(_) => "bad_position",
            ReadingError::UnknownField(_) => "unknown_field",
        }
    }
}

/// A refused reading: where it stood, which point it named (if any), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedReading {
    pub index: usize,
    pub point: Option<String>,
    pub error: ReadingError,
    /// The reading as it came, cut to a few hundred bytes, for the dead-letter record.
    pub raw: String,
}

/// The outcome of decoding a batch with a sound envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    pub agent: AgentId,
    pub epoch: String,
    pub seq: u64,
    pub readings: Vec<Reading>,
    pub refused: Vec<RefusedReading>,
}

/// Check size, encoding and nesting, then parse.
fn parse_envelope(payload: &[u8], limits: &DecodeLimits) -> Result<Map<String, Json>, BatchError> {
    if payload.len() > limits.max_bytes {
        return Err(BatchError::TooLarge {
            bytes: payload.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|e| BatchError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if nesting_depth(text.as_bytes()) > limits.max_depth {
        return Err(BatchError::TooDeep {
            limit: limits.max_depth,
        });
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(BatchError::NotAnObject),
        Err(e) => Err(BatchError::Syntax(e.to_string())),
    }
}

/// The deepest nesting of `[` and `{` outside strings (a linear scan, before any parsing).
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn agent_field(
    map: &Map<String, Json>,
    topic_agent: Option<&AgentId>,
) -> Result<AgentId, BatchError> {
    let agent = match map.get("agent") {
        None => return Err(BatchError::MissingField("agent")),
        Some(Json::String(s)) => AgentId::new(s.as_str()).map_err(BatchError::BadAgent)?,
        Some(_) => {
            return Err(BatchError::WrongType {
                field: "agent",
                expected: "a string",
            })
        }
    };
    if let Some(t) = topic_agent {
        if *t != agent {
            return Err(BatchError::AgentMismatch {
                topic: t.to_string(),
                payload: agent.to_string(),
            });
        }
    }
    Ok(agent)
}

fn epoch_field(map: &Map<String, Json>) -> Result<String, BatchError> {
    match map.get("epoch") {
        None | Some(Json::Null) => Ok(String::new()),
        Some(Json::String(s)) if s.chars().any(char::is_control) => Err(BatchError::Invalid {
            field: "epoch",
            reason: "holds a control character".into(),
        }),
        Some(Json::String(s)) if s.len() <= 64 => Ok(s.clone()),
        Some(Json::String(_)) => Err(BatchError::Invalid {
            field: "epoch",
            reason: "longer than 64 bytes".into(),
        }),
        Some(_) => Err(BatchError::WrongType {
            field: "epoch",
            expected: "a string",
        }),
    }
}

/// The array `field` of a batch: required, and at most `limits.max_items` long.
fn items_field<'a>(
    map: &'a Map<String, Json>,
    field: &'static str,
    limits: &DecodeLimits,
) -> Result<&'a Vec<Json>, BatchError> {
    let items = match map.get(field) {
        None => return Err(BatchError::MissingField(field)),
        Some(Json::Array(a)) => a,
        Some(_) => {
            return Err(BatchError::WrongType {
                field,
                expected: "an array",
            })
        }
    };
    if items.len() > limits.max_items {
        return Err(BatchError::TooMany {
            count: items.len(),
            limit: limits.max_items,
        });
    }
    Ok(items)
}

/// Decode a reading batch. `topic_agent`, where given, must match the payload's `agent`.
pub fn decode_batch(
    payload: &[u8],
    topic_agent: Option<&AgentId>,
    now: Timestamp,
    limits: &DecodeLimits,
) -> Result<DecodedBatch, BatchError> {
    let map = parse_envelope(payload, limits)?;
    let agent = agent_field(&map, topic_agent)?;
    let epoch = epoch_field(&map)?;
    let seq = match map.get("seq") {
        None => return Err(BatchError::MissingField("seq")),
        Some(Json::Number(n)) => n.as_u64().ok_or(BatchError::WrongType {
            field: "seq",
            expected: "a non-negative integer",
        })?,
        Some(_) => {
            return Err(BatchError::WrongType {
                field: "seq",
                expected: "a non-negative integer",
            })
        }
    };
    let items = items_field(&map, "readings", limits)?;
    let mut readings = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match decode_reading(item, now, limits) {
            Ok(r) => readings.push(r),
            Err(error) => refused.push(RefusedReading {
                index,
                point: item.get("point").and_then(Json::as_str).map(truncate),
                error,
                raw: truncate_raw(item),
            }),
        }
    }
    Ok(DecodedBatch {
        agent,
        epoch,
        seq,
        readings,
        refused,
    })
}

/// The raw reading for a dead letter: whole up to 512 bytes, else its first 500 bytes (cut on
/// a character boundary) and `...`.
fn truncate_raw(item: &Json) -> String {
    let mut s = item.to_string();
    if s.len() > 512 {
        let mut end = 500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// The string `field` of a reading, which must be there; `expected` says what it holds.
fn required_str<'a>(
    obj: &'a Map<String, Json>,
    field: &'static str,
    expected: &'static str,
) -> Result<&'a str, ReadingError> {
    match obj.get(field) {
        None => Err(ReadingError::MissingField(field)),
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(ReadingError::WrongType { field, expected }),
    }
}

/// The string `field` of a reading, `None` where it is absent or null.
fn optional_str<'a>(
    obj: &'a Map<String, Json>,
    field: &'static str,
) -> Result<Option<&'a str>, ReadingError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ReadingError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// Decode one reading of a batch.
pub fn decode_reading(
    item: &Json,
    now: Timestamp,
    limits: &DecodeLimits,
) -> Result<Reading, ReadingError> {
    let obj = item.as_object().ok_or(ReadingError::NotAnObject)?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "point" | "ts" | "value" | "quality" | "reason"
        ) {
            return Err(ReadingError::UnknownField(truncate(key)));
        }
    }
    let point =
        PointId::new(required_str(obj, "point", "a string")?).map_err(ReadingError::BadPoint)?;
    let ts = parse_time(required_str(obj, "ts", "an RFC 3339 string")?)
        .map_err(ReadingError::BadTime)?;
    if ts > now + limits.max_future {
        return Err(ReadingError::Future {
            ts: crate::time::format_time(&ts),
            now: crate::time::format_time(&now),
            limit_s: limits.max_future.num_seconds(),
        });
    }
    let quality = match optional_str(obj, "quality")? {
        None => Quality::Good,
        Some(s) => Quality::parse(s).ok_or_else(|| ReadingError::BadQuality(truncate(s)))?,
    };
    let reason =
        optional_str(obj, "reason")?.map(|s| s.chars().take(limits.max_reason_chars).collect());
    let value = match obj.get("value") {
        None => return Err(ReadingError::MissingField("value")),
        Some(Json::Null) => {
            if quality != Quality::Bad {
                return Err(ReadingError::NullWithoutBad(quality.as_str()));
            }
            Value::Null
        }
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => Value::Number(
            n.as_f64()
                .filter(|v| v.is_finite())
                .ok_or(ReadingError::BadValue)?,
        ),
        Some(Json::Object(o)) => Value::Position(decode_position(o)?),
        Some(_) => return Err(ReadingError::BadValue),
    };
    Ok(Reading {
        point,
        ts,
        value,
        quality,
        reason,
    })
}

fn decode_position(o: &Map<String, Json>) -> Result<Position, ReadingError> {
    let num = |k: &str| -> Result<Option<f64>, ReadingError> {
        match o.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(ReadingError::BadPosition(format!("`{k}` must be a number"))),
        }
    };
    for key in o.keys() {
        if !matches!(
            key.as_str(),
            "lat" | "lon" | "speed_kmh" | "heading" | "alt_m"
        ) {
            return Err(ReadingError::BadPosition(format!(
                "unknown field `{}`",
                truncate(key)
            )));
        }
    }
    let lat = num("lat")?.ok_or_else(|| ReadingError::BadPosition("`lat` is missing".into()))?;
    let lon = num("lon")?.ok_or_else(|| ReadingError::BadPosition("`lon` is missing".into()))?;
    if !(-90.0..=90.0).contains(&lat) {
        return Err(ReadingError::BadPosition(format!(
            "lat {lat} is outside -90..90"
        )));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(ReadingError::BadPosition(format!(
            "lon {lon} is outside -180..180"
        )));
    }
    let speed_kmh = num("speed_kmh")?;
    if speed_kmh.is_some_and(|s| s < 0.0) {
        return Err(ReadingError::BadPosition("speed_kmh is negative".into()));
    }
    Ok(Position {
        lat,
        lon,
        speed_kmh,
        heading: num("heading")?,
        alt_m: num("alt_m")?,
    })
}

/// Encode a batch in the wire form.
pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    serde_json::to_vec(batch).expect("a batch always serializes")
}

/// A decoded catalogue, with the points that were refused.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCatalogue {
    pub catalogue: Catalogue,
    pub refused: Vec<(usize, String)>,
}

/// Decode a birth (point catalogue). A bad point is refused alone; units and quantities the
/// system does not know are kept as given.
pub fn decode_catalogue(
    payload: &[u8],
    topic_agent: Option<&AgentId>,
    limits: &DecodeLimits,
) -> Result<DecodedCatalogue, BatchError> {
    let map = parse_envelope(payload, limits)?;
    let agent = agent_field(&map, topic_agent)?;
    let epoch = epoch_field(&map)?;
    let site: Option<crate::catalogue::SiteInfo> = match map.get("site") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone()).map_err(|e| BatchError::Invalid {
                field: "site",
                reason: e.to_string(),
            })?,
        ),
    };
    if let Some(name) = site.as_ref().and_then(|s| s.name.as_deref()) {
        if name.chars().count() > limits.max_text_chars {
            return Err(BatchError::Invalid {
                field: "site",
                reason: format!("name longer than {} characters", limits.max_text_chars),
            });
        }
    }
    let items = items_field(&map, "points", limits)?;
    let mut points = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<PointSpec>(item.clone()) {
            Ok(p) if !seen.insert(p.point.clone()) => {
                refused.push((i, format!("point {} is named twice", p.point)))
            }
            Ok(p) => match (p.range, point_text_error(&p, limits)) {
                (_, Some(why)) => refused.push((i, why)),
                (Some([lo, hi]), None) if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) => {
                    refused.push((i, format!("point {}: range [{lo}, {hi}] is empty", p.point)))
                }
                _ => points.push(p),
            },
            Err(e) => refused.push((i, e.to_string())),
        }
    }
    Ok(DecodedCatalogue {
        catalogue: Catalogue {
            agent,
            epoch,
            site,
            points,
        },
        refused,
    })
}

/// Decode an agent status (or last will).
pub fn decode_status(
    payload: &[u8],
    topic_agent: Option<&AgentId>,
    limits: &DecodeLimits,
) -> Result<AgentStatus, BatchError> {
    let map = parse_envelope(payload, limits)?;
    agent_field(&map, topic_agent)?;
    serde_json::from_value(Json::Object(map)).map_err(|e| BatchError::Invalid {
        field: "status",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[[{{{{"}"#), 1);
        assert_eq!(nesting_depth(br#"{"a":"\"[["}"#), 1);
        assert_eq!(nesting_depth(br#"[[[]]]"#), 3);
    }
}
