//! `[presentation]`: the language and time zone of everything a person reads (incident
//! messages, robot and webhook texts, CSV exports, the console). Machines keep what they rely
//! on: reason codes, rule ids, API JSON times in UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The language people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Language {
    /// Simplified Chinese (the default: duty officers in Chinese monitoring centres).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }
}

/// One setting shared by the console and every text the gateway makes for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Presentation {
    /// `zh-CN` (default) or `en`.
    pub language: Language,
    /// An IANA time zone; `Asia/Shanghai` (Beijing time, UTC+08:00) by default.
    pub time_zone: String,
}

impl Default for Presentation {
    fn default() -> Self {
        Presentation {
            language: Language::ZhCn,
            time_zone: "Asia/Shanghai".into(),
        }
    }
}

impl Presentation {
    pub fn validate(&self) -> Result<(), String> {
        self.zone().map(|_| ())
    }

    fn zone(&self) -> Result<chrono_tz::Tz, String> {
        self.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "presentation.time_zone {:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                self.time_zone
            )
        })
    }

    /// A time as people read it: RFC 3339 in the configured zone, e.g.
    /// `2026-07-28T10:00:00+08:00` (milliseconds when there are any).
    pub fn time(&self, t: &DateTime<Utc>) -> String {
        let zone = self.zone().unwrap_or(chrono_tz::Asia::Shanghai);
        let local = t.with_timezone(&zone);
        let format = if t.timestamp_subsec_millis() == 0 {
            SecondsFormat::Secs
        } else {
            SecondsFormat::Millis
        };
        local.to_rfc3339_opts(format, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_by_default() {
        let p = Presentation::default();
        assert_eq!(p.language, Language::ZhCn);
        let t = telemetry::parse_time("2026-07-28T02:00:00Z").unwrap();
        assert_eq!(p.time(&t), "2026-07-28T10:00:00+08:00");
        let t = telemetry::parse_time("2026-07-28T17:30:00.250Z").unwrap();
        assert_eq!(p.time(&t), "2026-07-29T01:30:00.250+08:00");
    }

    #[test]
    fn a_setting_from_toml() {
        let p: Presentation = toml::from_str("language = \"en\"\ntime_zone = \"UTC\"").unwrap();
        assert_eq!(p.language, Language::En);
        assert!(p.validate().is_ok());
        let t = telemetry::parse_time("2026-07-28T02:00:00Z").unwrap();
        assert_eq!(p.time(&t), "2026-07-28T02:00:00+00:00");
        let bad: Presentation = toml::from_str("time_zone = \"Mars/Olympus\"").unwrap();
        assert!(bad.validate().is_err());
        assert!(toml::from_str::<Presentation>("language = \"fr\"").is_err());
    }
}
