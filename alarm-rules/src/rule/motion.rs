//! Rule kinds for moving things: geofences on positions, accumulated driving time, and the
//! time-of-day window any rule may carry. Their model and their parsing.

use super::{Reader, R};
use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Serialize;
use telemetry::Value;

/// The rules' own time zone unless a rule names one (contract 1.1: Beijing time).
pub(crate) const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// A time-of-day window in a time zone: the rule applies from `from` (inclusive) to `to`
/// (exclusive), wrapping past midnight when `to` is earlier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Window {
    pub from: String,
    pub to: String,
    pub time_zone: String,
    #[serde(skip)]
    from_min: u32,
    #[serde(skip)]
    to_min: u32,
    #[serde(skip)]
    tz: Tz,
}

impl Window {
    /// Whether event time `t_ms` (ms since the epoch) falls in the window.
    pub(crate) fn holds(&self, t_ms: i64) -> bool {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(t_ms) else {
            return false;
        };
        let local = self.tz.from_utc_datetime(&utc.naive_utc());
        let m = local.hour() * 60 + local.minute();
        if self.from_min <= self.to_min {
            (self.from_min..self.to_min).contains(&m)
        } else {
            m >= self.from_min || m < self.to_min
        }
    }
}

impl Window {
    /// The first time after `t_ms` at which the window opens or closes (ms; `None` if the
    /// zone's calendar gives none within two days).
    pub(crate) fn next_edge(&self, t_ms: i64) -> Option<i64> {
        let utc = chrono::DateTime::from_timestamp_millis(t_ms)?;
        let today = self.tz.from_utc_datetime(&utc.naive_utc()).date_naive();
        let mut best: Option<i64> = None;
        for day in [today.pred_opt()?, today, today.succ_opt()?] {
            for m in [self.from_min, self.to_min] {
                let local = day.and_hms_opt(m / 60, m % 60, 0)?;
                let Some(at) = self.tz.from_local_datetime(&local).earliest() else {
                    continue;
                };
                let at = at.timestamp_millis();
                if at > t_ms && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
        }
        best
    }
}

fn minutes(r: &Reader<'_>, key: &str, s: &str) -> R<u32> {
    let bad = || r.err(key, format!("{s:?} is not a time of day HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `active_between = ["HH:MM", "HH:MM"]` and `time_zone` (an IANA name).
pub(super) fn read_window(r: &mut Reader<'_>) -> R<Option<Window>> {
    let tz_name = r.string("time_zone")?;
    let Some(between) = r.take("active_between") else {
        if tz_name.is_some() {
            return Err(r.err("time_zone", "only with active_between"));
        }
        return Ok(None);
    };
    let pair: Option<Vec<String>> = between
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
    let Some([from, to]) = pair.and_then(|v| <[String; 2]>::try_from(v).ok()) else {
        return Err(r.err(
            "active_between",
            "give two times of day, [\"HH:MM\", \"HH:MM\"]",
        ));
    };
    let from_min = minutes(r, "active_between", &from)?;
    let to_min = minutes(r, "active_between", &to)?;
    if from_min == to_min {
        return Err(r.err("active_between", "from and to must differ"));
    }
    let time_zone = tz_name.unwrap_or_else(|| DEFAULT_TIME_ZONE.to_string());
    let tz: Tz = time_zone
        .parse()
        .map_err(|_| r.err("time_zone", format!("{time_zone:?} is not a time zone")))?;
    Ok(Some(Window {
        from,
        to,
        time_zone,
        from_min: from_min % (24 * 60),
        to_min: to_min % (24 * 60),
        tz,
    }))
}

/// The area of a geofence: a circle (metres) or a polygon of `[lat, lon]` vertices.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Area {
    Circle { lat: f64, lon: f64, radius_m: f64 },
    Polygon(Vec<[f64; 2]>),
}

/// Mean Earth radius (m), for distances on the sphere.
const EARTH_M: f64 = 6_371_008.8;

impl Area {
    /// Whether a position lies inside the area.
    pub(crate) fn contains(&self, lat: f64, lon: f64) -> bool {
        match self {
            Area::Circle {
                lat: clat,
                lon: clon,
                radius_m,
            } => {
                let (p1, p2) = (clat.to_radians(), lat.to_radians());
                let dp = p2 - p1;
                let dl = (lon - clon).to_radians();
                let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
                2.0 * EARTH_M * a.sqrt().asin() <= *radius_m
            }
            Area::Polygon(vs) => {
                // Even-odd rule on the plane of degrees (zones are small).
                let mut inside = false;
                let mut j = vs.len() - 1;
                for i in 0..vs.len() {
                    let ([yi, xi], [yj, xj]) = (vs[i], vs[j]);
                    if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
        }
    }
}

/// What raises a geofence rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Fence {
    /// Inside the area (for `dwell_ms` at least, if set).
    Enter,
    /// Outside the area.
    Leave,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Geofence {
    pub severity: telemetry::Severity,
    pub label: String,
    pub area: Area,
    pub trigger: Fence,
    pub dwell_ms: Option<u64>,
}

fn lat_lon(r: &Reader<'_>, key: &str, lat: f64, lon: f64) -> R<()> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(r.err(key, "latitude -90..90, longitude -180..180"));
    }
    Ok(())
}

pub(super) fn read_geofence(r: &mut Reader<'_>) -> R<Geofence> {
    let severity = r.req_severity("severity")?;
    let label = r
        .string("label")?
        .unwrap_or_else(|| "inside geofence".to_string());
    let circle = r.sub("circle")?;
    let polygon = r.take("polygon");
    let area = match (circle, polygon) {
        (Some(mut c), None) => {
            let lat = c.f64("lat")?.ok_or_else(|| c.err("lat", "missing"))?;
            let lon = c.f64("lon")?.ok_or_else(|| c.err("lon", "missing"))?;
            let radius_m = c
                .f64("radius_m")?
                .filter(|m| *m > 0.0)
                .ok_or_else(|| c.err("radius_m", "missing or not above 0"))?;
            lat_lon(&c, "lat", lat, lon)?;
            c.finish()?;
            Area::Circle { lat, lon, radius_m }
        }
        (None, Some(toml::Value::Array(items))) => {
            let mut vs = Vec::with_capacity(items.len());
            for v in items {
                let pair: Option<Vec<f64>> = v.as_array().and_then(|a| {
                    a.iter()
                        .map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)))
                        .collect()
                });
                match pair.as_deref() {
                    Some(&[lat, lon]) => {
                        lat_lon(r, "polygon", lat, lon)?;
                        vs.push([lat, lon]);
                    }
                    _ => return Err(r.err("polygon", "vertices are [lat, lon] pairs")),
                }
            }
            if !(3..=1000).contains(&vs.len()) {
                return Err(r.err("polygon", "3 to 1000 vertices"));
            }
            Area::Polygon(vs)
        }
        (None, Some(_)) => return Err(r.err("polygon", "expected an array of [lat, lon]")),
        _ => return Err(r.err("circle", "give circle or polygon (one of them)")),
    };
    let trigger = match r.string("trigger")?.as_deref() {
        None | Some("enter") => Fence::Enter,
        Some("leave") => Fence::Leave,
        Some(s) => return Err(r.err("trigger", format!("{s:?} is not enter or leave"))),
    };
    let dwell_ms = r.ms("dwell_ms")?;
    if dwell_ms == Some(0) {
        return Err(r.err("dwell_ms", "must be above 0"));
    }
    if dwell_ms.is_some() && trigger != Fence::Enter {
        return Err(r.err("dwell_ms", "only with trigger = \"enter\""));
    }
    Ok(Geofence {
        severity,
        label,
        area,
        trigger,
        dwell_ms,
    })
}

/// Accumulated driving: continuous (reset by a rest) and within a sliding window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Driving {
    pub severity: telemetry::Severity,
    pub label: String,
    pub window_label: String,
    pub speed_above_kmh: f64,
    pub max_continuous_ms: Option<u64>,
    pub rest_ms: u64,
    pub max_in_window_ms: Option<u64>,
    pub window_ms: u64,
}

pub(super) fn read_driving(r: &mut Reader<'_>) -> R<Driving> {
    let severity = r.req_severity("severity")?;
    let label = r
        .string("label")?
        .unwrap_or_else(|| "continuous driving".to_string());
    let window_label = r
        .string("window_label")?
        .unwrap_or_else(|| "driving within the window".to_string());
    let speed_above_kmh = r.f64("speed_above_kmh")?.unwrap_or(0.0);
    if speed_above_kmh < 0.0 {
        return Err(r.err("speed_above_kmh", "must not be negative"));
    }
    let max_continuous_ms = r.ms("max_continuous_ms")?;
    let rest_ms = r.ms("rest_ms")?;
    let max_in_window_ms = r.ms("max_in_window_ms")?;
    let window_ms = r.ms("window_ms")?;
    let rest_ms = match (max_continuous_ms, rest_ms) {
        (Some(m), Some(rest)) if m > 0 && rest > 0 => rest,
        (None, None) => 0,
        _ => {
            return Err(r.err(
                "max_continuous_ms",
                "give max_continuous_ms and rest_ms (both above 0) together",
            ))
        }
    };
    let window_ms = match (max_in_window_ms, window_ms) {
        (Some(m), Some(w)) if m > 0 && m < w => w,
        (None, None) => 0,
        _ => {
            return Err(r.err(
                "max_in_window_ms",
                "give max_in_window_ms and window_ms together (0 < max < window)",
            ))
        }
    };
    if max_continuous_ms.is_none() && max_in_window_ms.is_none() {
        return Err(r.err(
            "max_continuous_ms",
            "give max_continuous_ms, max_in_window_ms or both",
        ));
    }
    Ok(Driving {
        severity,
        label,
        window_label,
        speed_above_kmh,
        max_continuous_ms,
        rest_ms,
        max_in_window_ms,
        window_ms,
    })
}

/// The speed a value carries: a position's `speed_kmh`, or a number.
pub(crate) fn speed_of(v: &Value) -> Option<f64> {
    match v {
        Value::Position(p) => p.speed_kmh,
        Value::Number(x) => Some(*x),
        _ => None,
    }
    .filter(|s| s.is_finite())
}

/// A state rule's `bits = [0, 3]`: the mask of those bits of a numeric word.
pub(super) fn read_bits(r: &mut Reader<'_>) -> R<Option<u64>> {
    match r.take("bits") {
        None => Ok(None),
        Some(toml::Value::Array(a)) if !a.is_empty() => {
            let mut mask = 0u64;
            for v in a {
                match v.as_integer() {
                    Some(b @ 0..=63) => mask |= 1 << b,
                    _ => return Err(r.err("bits", "bit numbers 0 to 63")),
                }
            }
            Ok(Some(mask))
        }
        Some(_) => Err(r.err("bits", "expected an array of bit numbers")),
    }
}
