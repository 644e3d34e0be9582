//! CENC (China Earthquake Networks Center) earthquake reports in their JSON list form:
//! `{"shuju":[{"id","M","EPI_LAT","EPI_LON","EPI_DEPTH","LOCATION_C","O_TIME","AUTO_FLAG"}]}`.
//! Numbers may come as strings or numbers; `O_TIME` is Beijing time (`2026-11-28 10:00:00`,
//! UTC+08:00) unless it carries a zone. A bad item is refused alone, with its reason; the
//! good items of the same document are kept.

use chrono::{Duration, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use telemetry::{parse_time, Timestamp};

use crate::cap::{AlertKey, MsgType};
use crate::geo::{Circle, LatLon};
use crate::warning::{Warning, WarningSource, WeatherConfig};

/// The sender of CENC warnings (their [`AlertKey::sender`]).
pub const CENC_SENDER: &str = "CENC";

/// The most items taken from one document.
pub const MAX_CENC_ITEMS: usize = 1000;

/// Why a CENC document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CencError {
    #[error("document is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a CENC report: {0}")]
    Shape(String),
    #[error("{found} items, more than the limit of {limit}")]
    TooManyItems { found: usize, limit: usize },
}

impl CencError {
    /// A short stable label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            CencError::TooLarge { .. } => "too_large",
            CencError::Json(_) => "malformed_json",
            CencError::Shape(_) => "not_cenc",
            CencError::TooManyItems { .. } => "limit",
        }
    }
}

/// One reported earthquake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Earthquake {
    pub id: String,
    pub magnitude: f64,
    pub epicentre: LatLon,
    pub depth_km: Option<f64>,
    /// `LOCATION_C`: the place, in Chinese.
    pub location: String,
    #[serde(with = "telemetry::time::serde_ts")]
    pub origin_time: Timestamp,
    /// `AUTO_FLAG` `AU`: an automatic determination, replaced later by the formal one.
    pub automatic: bool,
}

/// An item that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedQuake {
    /// Its position in `shuju`, from 0.
    pub index: usize,
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CencReport {
    pub quakes: Vec<Earthquake>,
    pub refused: Vec<RefusedQuake>,
}

/// Parse a CENC earthquake list. The document size limit is `config.cap.max_document_bytes`.
pub fn parse_cenc(bytes: &[u8], config: &WeatherConfig) -> Result<CencReport, CencError> {
    let limit = config.cap.max_document_bytes;
    if bytes.len() > limit {
        return Err(CencError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| CencError::Json(e.to_string()))?;
    let items = doc
        .get("shuju")
        .and_then(Json::as_array)
        .ok_or_else(|| CencError::Shape("no \"shuju\" array".into()))?;
    if items.len() > MAX_CENC_ITEMS {
        return Err(CencError::TooManyItems {
            found: items.len(),
            limit: MAX_CENC_ITEMS,
        });
    }
    let mut report = CencReport {
        quakes: Vec::new(),
        refused: Vec::new(),
    };
    for (index, item) in items.iter().enumerate() {
        match parse_item(item) {
            Ok(q) => report.quakes.push(q),
            Err(reason) => report.refused.push(RefusedQuake {
                index,
                id: item
                    .get("id")
                    .and_then(Json::as_str)
                    .map(|s| s.chars().take(64).collect()),
                reason,
            }),
        }
    }
    Ok(report)
}

fn field<'a>(item: &'a Json, name: &str) -> Result<&'a Json, String> {
    match item.get(name) {
        None | Some(Json::Null) => Err(format!("{name} is missing")),
        Some(v) => Ok(v),
    }
}

fn number(item: &Json, name: &str) -> Result<f64, String> {
    let v = field(item, name)?;
    let n = match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| format!("{name} {} is not a number", clip(&v.to_string())))
}

fn text(item: &Json, name: &str) -> Result<String, String> {
    match field(item, name)? {
        Json::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Json::Number(n) => Ok(n.to_string()),
        v => Err(format!(
            "{name} {} is not a non-empty string",
            clip(&v.to_string())
        )),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(48).collect()
}

/// `O_TIME`: Beijing time without a zone, or RFC 3339 with one.
pub fn parse_beijing_time(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
            return beijing
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("O_TIME {:?} is not a time", clip(s)));
        }
    }
    parse_time(s).map_err(|_| {
        format!(
            "O_TIME {:?} is not \"YYYY-MM-DD hh:mm:ss\" (Beijing time)",
            clip(s)
        )
    })
}

fn parse_item(item: &Json) -> Result<Earthquake, String> {
    if !item.is_object() {
        return Err("item is not an object".into());
    }
    let id = text(item, "id")?;
    if id.len() > 128 {
        return Err("id is longer than 128 bytes".into());
    }
    let magnitude = number(item, "M")?;
    if !(-2.0..=10.0).contains(&magnitude) {
        return Err(format!("M {magnitude} is out of range"));
    }
    let lat = number(item, "EPI_LAT")?;
    let lon = number(item, "EPI_LON")?;
    let epicentre =
        LatLon::new(lat, lon).ok_or_else(|| format!("epicentre {lat},{lon} is out of range"))?;
    let depth_km = match item.get("EPI_DEPTH") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if s.trim().is_empty() => None,
        Some(_) => Some(number(item, "EPI_DEPTH")?),
    };
    let location = match item.get("LOCATION_C") {
        Some(Json::String(s)) => s.trim().chars().take(200).collect(),
        _ => String::new(),
    };
    let origin_time = parse_beijing_time(&text(item, "O_TIME")?)?;
    let automatic = matches!(item.get("AUTO_FLAG").and_then(Json::as_str).map(str::trim), Some(f) if f.eq_ignore_ascii_case("AU"));
    Ok(Earthquake {
        id,
        magnitude,
        epicentre,
        depth_km,
        location,
        origin_time,
        automatic,
    })
}

impl Earthquake {
    /// The warning the quake makes, or `None` below the first step of the earthquake table:
    /// kind `earthquake`, a circle around the epicentre with the step's radius, the step's
    /// level, from the origin time for `earthquake.validity_h` hours.
    pub fn to_warning(&self, config: &WeatherConfig) -> Option<Warning> {
        let step = config.earthquake.step_for(self.magnitude)?;
        let magnitude = format!("{:.1}", self.magnitude);
        let headline = if self.location.is_empty() {
            format!("{magnitude}级地震")
        } else {
            format!("{}发生{magnitude}级地震", self.location)
        };
        Some(Warning {
            id: format!("cenc/{}", self.id),
            kind: "earthquake".into(),
            code: None,
            level: step.level,
            event: "地震".into(),
            magnitude: Some(self.magnitude),
            regions: Vec::new(),
            polygons: Vec::new(),
            circles: vec![Circle {
                center: self.epicentre,
                radius_km: step.radius_km,
            }],
            headline: Some(headline),
            sender: CENC_SENDER.into(),
            sender_name: Some("中国地震台网中心".into()),
            alert: AlertKey {
                sender: CENC_SENDER.into(),
                identifier: self.id.clone(),
            },
            sent: self.origin_time,
            effective: self.origin_time,
            expires: self.origin_time + Duration::hours(i64::from(config.earthquake.validity_h)),
            msg_type: MsgType::Alert,
            references: Vec::new(),
            source: WarningSource::Cenc {
                automatic: self.automatic,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time() {
        let t = parse_beijing_time("2026-11-28 10:00:00").unwrap();
        assert_eq!(t, parse_time("2026-11-28T02:00:00Z").unwrap());
        assert_eq!(
            parse_beijing_time("2026-11-28 10:00:00.5").unwrap(),
            parse_time("2026-11-28T02:00:00.5Z").unwrap()
        );
        assert_eq!(parse_beijing_time("2026-11-28T10:00:00+08:00").unwrap(), t);
        assert!(parse_beijing_time("yesterday").is_err());
    }
}
