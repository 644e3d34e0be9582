//! Time on the wire: RFC 3339 with a zone, always. A time without a zone is refused.

use chrono::{DateTime, SecondsFormat, Utc};

/// Every timestamp in the system is a UTC instant; the wire form may carry any offset.
pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("time {0:?} has no zone (RFC 3339 with Z or an offset is required)")]
    NoZone(String),
    #[error("time {0:?} is not RFC 3339")]
    Malformed(String),
}

/// Parse an RFC 3339 time. A time without a zone is refused with [`TimeError::NoZone`].
pub fn parse_time(s: &str) -> Result<Timestamp, TimeError> {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(_) => {
            // Tell a zone-less time apart from garbage: it parses once a zone is added.
            if DateTime::parse_from_rfc3339(&format!("{s}Z")).is_ok() {
                Err(TimeError::NoZone(truncate(s)))
            } else {
                Err(TimeError::Malformed(truncate(s)))
            }
        }
    }
}

/// The wire form: UTC with millisecond precision, e.g. `2026-11-28T10:00:00.000Z`.
pub fn format_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 64 {
        s.to_string()
    } else {
        let mut end = 64;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

/// serde helpers for [`Timestamp`] in the wire form.
pub mod serde_ts {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse_time(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format_time(t)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| parse_time(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_is_required() {
        assert!(matches!(
            parse_time("2026-11-28T10:00:00"),
            Err(TimeError::NoZone(_))
        ));
        assert!(matches!(
            parse_time("yesterday"),
            Err(TimeError::Malformed(_))
        ));
        let a = parse_time("2026-11-28T10:00:00Z").unwrap();
        let b = parse_time("2026-11-28T18:00:00+08:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_time(&a), "2026-11-28T10:00:00.000Z");
    }
}
