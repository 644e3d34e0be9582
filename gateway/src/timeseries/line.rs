//! InfluxDB line protocol for readings, as the contract's "Time series" section says: one point
//! per reading, measurement `reading`, tags `agent`, `category`, `location`, `point`,
//! `quantity`, `site` (those that are known, keys sorted as InfluxDB prefers), fields `value`
//! (float; a bool as 0 or 1) and `quality` (integer 0..3), for positions `lat`, `lon`,
//! `speed_kmh`, `heading` (and `alt_m`), and the reading's own timestamp in milliseconds.
//!
//! Pure: no I/O, no clock.

use std::fmt::Write as _;
use telemetry::{AgentId, Category, PointSpec, Reading, SiteId, Value};

/// The measurement every reading is written to.
pub const MEASUREMENT: &str = "reading";
/// The tag keys the writer may set, in the order it writes them.
pub const TAGS: [&str; 6] = ["agent", "category", "location", "point", "quantity", "site"];
/// The field keys the writer may set.
pub const FIELDS: [&str; 7] = [
    "value",
    "quality",
    "lat",
    "lon",
    "speed_kmh",
    "heading",
    "alt_m",
];

/// Append one line (with its trailing newline) for `reading` to `out`.
pub fn encode_reading(
    out: &mut String,
    site: &SiteId,
    agent: &AgentId,
    reading: &Reading,
    spec: Option<&PointSpec>,
    category: Option<&Category>,
) {
    out.push_str(MEASUREMENT);
    tag(out, "agent", agent.as_str());
    if let Some(c) = category {
        tag(out, "category", c.as_str());
    }
    if let Some(l) = spec.and_then(|s| s.location.as_deref()) {
        tag(out, "location", l);
    }
    tag(out, "point", reading.point.as_str());
    if let Some(s) = spec {
        tag(out, "quantity", s.quantity.as_str());
    }
    tag(out, "site", site.as_str());
    out.push(' ');
    // Fields: the value first, quality always (a line needs at least one field).
    match reading.value {
        Value::Number(v) => float_field(out, "value", v),
        Value::Bool(b) => out.push_str(if b { "value=1," } else { "value=0," }),
        Value::Position(p) => {
            float_field(out, "lat", p.lat);
            float_field(out, "lon", p.lon);
            if let Some(v) = p.speed_kmh {
                float_field(out, "speed_kmh", v);
            }
            if let Some(v) = p.heading {
                float_field(out, "heading", v);
            }
            if let Some(v) = p.alt_m {
                float_field(out, "alt_m", v);
            }
        }
        Value::Null => {}
    }
    let _ = write!(
        out,
        "quality={}i {}",
        reading.quality.code(),
        reading.ts.timestamp_millis()
    );
    out.push('\n');
}

/// `,key=value` with the value escaped; an empty value is left out (InfluxDB refuses it).
fn tag(out: &mut String, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(',');
    out.push_str(key);
    out.push('=');
    escape_key(out, value);
}

/// A float field followed by a comma; NaN and infinities (which line protocol cannot carry)
/// are left out.
fn float_field(out: &mut String, key: &str, v: f64) {
    if v.is_finite() {
        // `Display` of f64 never uses an exponent and gives the shortest exact form; without
        // an `i` suffix line protocol reads it as a float.
        let _ = write!(out, "{key}={v},");
    }
}

/// Escape a tag value (or key): commas, equals signs, spaces and backslashes get a backslash;
/// line breaks (which would end the line) become spaces.
fn escape_key(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            ',' | '=' | ' ' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use telemetry::{PointId, Position, Quality, Quantity, Unit};

    fn ids() -> (SiteId, AgentId) {
        (
            SiteId::new("mine-01").unwrap(),
            AgentId::new("mine-01-edge").unwrap(),
        )
    }

    fn at(ms: i64) -> telemetry::Timestamp {
        chrono::Utc.timestamp_millis_opt(ms).unwrap()
    }

    /// The line of one reading of the test site and agent.
    fn line(r: &Reading, spec: Option<&PointSpec>, category: Option<&Category>) -> String {
        let (site, agent) = ids();
        let mut out = String::new();
        encode_reading(&mut out, &site, &agent, r, spec, category);
        out
    }

    #[test]
    fn number_with_catalogue_and_category() {
        let mut spec = PointSpec::new(
            PointId::new("CH4-101").unwrap(),
            Quantity::Ch4,
            Unit::PercentVol,
        );
        spec.location = Some("working_face".into());
        let r = Reading::good(
            spec.point.clone(),
            at(1_795_860_000_123),
            Value::Number(0.42),
        );
        let out = line(&r, Some(&spec), Some(&Category::CoalMine));
        assert_eq!(
            out,
            "reading,agent=mine-01-edge,category=coal_mine,location=working_face,point=CH4-101,quantity=ch4,site=mine-01 value=0.42,quality=0i 1795860000123\n"
        );
    }

    #[test]
    fn bool_null_and_quality_codes() {
        let p = PointId::new("IL-R3").unwrap();
        let mut r = Reading::good(p.clone(), at(1000), Value::Bool(true));
        r.quality = Quality::Uncertain;
        let bad = Reading::bad(p.clone(), at(2000), "modbus timeout");
        let mut c = Reading::good(p, at(3000), Value::Bool(false));
        c.quality = Quality::Calibration;
        let out = [&r, &bad, &c].map(|r| line(r, None, None)).concat();
        assert_eq!(
            out,
            "reading,agent=mine-01-edge,point=IL-R3,site=mine-01 value=1,quality=1i 1000\n\
             reading,agent=mine-01-edge,point=IL-R3,site=mine-01 quality=2i 2000\n\
             reading,agent=mine-01-edge,point=IL-R3,site=mine-01 value=0,quality=3i 3000\n"
        );
    }

    #[test]
    fn position_fields() {
        let pos = Position {
            lat: 36.0975,
            lon: 114.3928,
            speed_kmh: Some(82.5),
            heading: Some(90.0),
            alt_m: None,
        };
        let r = Reading::good(
            PointId::new("TRK-YA12345").unwrap(),
            at(5),
            Value::Position(pos),
        );
        let out = line(&r, None, Some(&Category::Transport));
        assert_eq!(
            out,
            "reading,agent=mine-01-edge,category=transport,point=TRK-YA12345,site=mine-01 lat=36.0975,lon=114.3928,speed_kmh=82.5,heading=90,quality=0i 5\n"
        );
    }

    #[test]
    fn special_characters_escaped_and_non_finite_left_out() {
        let mut spec = PointSpec::new(
            PointId::new("T-1").unwrap(),
            Quantity::Other("odd qty".into()),
            Unit::Celsius,
        );
        spec.location = Some("tank farm,a=b\\c\nd".into());
        let r = Reading::good(spec.point.clone(), at(7), Value::Number(f64::NAN));
        let out = line(&r, Some(&spec), Some(&Category::Other(String::new())));
        assert_eq!(
            out,
            "reading,agent=mine-01-edge,location=tank\\ farm\\,a\\=b\\\\c\\ d,point=T-1,quantity=odd\\ qty,site=mine-01 quality=0i 7\n"
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn floats_keep_their_precision_without_exponents() {
        let p = PointId::new("P").unwrap();
        let out: String = [1e-7, 1e21, -3.0, 0.1 + 0.2]
            .into_iter()
            .map(|v| {
                line(
                    &Reading::good(p.clone(), at(0), Value::Number(v)),
                    None,
                    None,
                )
            })
            .collect();
        let values: Vec<f64> = out
            .lines()
            .map(|l| {
                l.split(' ')
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .strip_prefix("value=")
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(values, vec![1e-7, 1e21, -3.0, 0.1 + 0.2]);
        assert!(!out.contains("e-7") && !out.contains("e21"), "{out}");
    }
}
