//! Times as devices write them in their own JSON: RFC 3339, epoch seconds or milliseconds,
//! and local times without a zone read in a zone set per input. Pure functions.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use telemetry::{parse_time, TimeError, Timestamp};

/// How an input's time field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2026-11-28T09:59:59+08:00`; without an offset (`2026-11-28 09:59:59`) only with a zone.
    #[default]
    Rfc3339,
    /// Seconds since 1970-01-01T00:00:00Z, a number (fractions allowed) or a string of one.
    EpochS,
    /// Milliseconds since 1970-01-01T00:00:00Z, a number or a string of one.
    EpochMs,
}

/// Local forms (no zone) read in the input's zone.
const LOCAL_FORMS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// The time a device wrote, as `format` says; `zone` reads times without an offset.
pub fn parse_device_time(
    v: &serde_json::Value,
    format: TimeFormat,
    zone: Option<chrono_tz::Tz>,
) -> Result<Timestamp, String> {
    match format {
        TimeFormat::Rfc3339 => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("time {v} is not a string (set ts_format = \"epoch_ms\" or \"epoch_s\" for numbers)"))?;
            match (parse_time(s), zone) {
                (Ok(t), _) => Ok(t),
                (Err(TimeError::Malformed(_)), None) => Err(format!("time {s:?} is not RFC 3339")),
                (Err(TimeError::NoZone(_)), None) => Err(format!(
                    "time {s:?} has no zone: set ts_zone (e.g. \"Asia/Shanghai\") for this input"
                )),
                (Err(_), Some(tz)) => local_time(s, tz),
            }
        }
        TimeFormat::EpochS | TimeFormat::EpochMs => {
            let n = match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("time {v} is not a number of epoch seconds or milliseconds"))?;
            let ms = if format == TimeFormat::EpochS {
                n * 1000.0
            } else {
                n
            };
            if !(0.0..=253_402_300_799_000.0).contains(&ms) {
                return Err(format!(
                    "time {v} is outside the years 1970..9999 (epoch {})",
                    if format == TimeFormat::EpochS {
                        "seconds"
                    } else {
                        "milliseconds"
                    }
                ));
            }
            let ms = ms.round() as i64;
            DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or_else(|| format!("time {v} is out of range"))
        }
    }
}

fn local_time(s: &str, tz: chrono_tz::Tz) -> Result<Timestamp, String> {
    let naive = LOCAL_FORMS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .ok_or_else(|| format!("time {s:?} is neither RFC 3339 nor a local date and time"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("time {s:?} does not exist in {tz} (a clock change)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        parse_time(s).unwrap()
    }

    #[test]
    fn the_forms_devices_write() {
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let t = at("2026-11-28T01:59:59Z");
        let p = |v, f, z| parse_device_time(&v, f, z);
        assert_eq!(
            p(
                json!("2026-11-28T09:59:59+08:00"),
                TimeFormat::Rfc3339,
                None
            ),
            Ok(t)
        );
        assert_eq!(
            p(json!("2026-11-28 09:59:59"), TimeFormat::Rfc3339, Some(sh)),
            Ok(t)
        );
        assert_eq!(
            p(json!("2026/11/28 09:59:59"), TimeFormat::Rfc3339, Some(sh)),
            Ok(t)
        );
        assert_eq!(
            p(json!("2026-11-28T09:59:59"), TimeFormat::Rfc3339, Some(sh)),
            Ok(t)
        );
        // A zone given on the wire wins over the input's.
        assert_eq!(
            p(json!("2026-11-28T01:59:59Z"), TimeFormat::Rfc3339, Some(sh)),
            Ok(t)
        );
        let ms = t.timestamp_millis();
        assert_eq!(p(json!(ms), TimeFormat::EpochMs, None), Ok(t));
        assert_eq!(p(json!(ms.to_string()), TimeFormat::EpochMs, None), Ok(t));
        assert_eq!(p(json!(ms / 1000), TimeFormat::EpochS, None), Ok(t));
        assert_eq!(
            p(json!(1_795_831_199.25), TimeFormat::EpochS, None),
            Ok(at("2026-11-28T01:59:59.250Z"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_device_time(&json!("2026-11-28 09:59:59"), TimeFormat::Rfc3339, None);
        assert!(e.unwrap_err().contains("set ts_zone"));
        let e = parse_device_time(&json!(1795831199000i64), TimeFormat::Rfc3339, None);
        assert!(e.unwrap_err().contains("epoch_ms"));
        let e = parse_device_time(&json!("soon"), TimeFormat::EpochMs, None);
        assert!(e.unwrap_err().contains("not a number"));
        // Milliseconds read as seconds land beyond year 9999: refused, not silently wrong.
        let e = parse_device_time(&json!(1795831199000i64), TimeFormat::EpochS, None);
        assert!(e.unwrap_err().contains("outside the years"));
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let e = parse_device_time(&json!("28.11.2026"), TimeFormat::Rfc3339, Some(sh));
        assert!(e.unwrap_err().contains("neither RFC 3339"));
    }
}
