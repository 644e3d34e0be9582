//! Warnings: what an alert means for the sites under it. One [`Warning`] per hazard of an
//! alert; the `<info>` blocks of one hazard (language versions, split areas) are one warning.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use telemetry::{RegionCode, Timestamp};

use crate::cap::{AlertKey, AlertRef, CapAlert, CapInfo, CapLimits, CapSeverity, MsgType};
use crate::geo::{Circle, LatLon, Polygon};
use crate::signals::{cma_code_in, kind_of_cma_code, kind_of_words, normalized_words, slug};

pub use telemetry::WarningLevel;

/// How a document names its warning level.
pub trait LevelOf {
    /// The level named by a colour word in `text`.
    fn from_colour_words(text: &str) -> Option<WarningLevel>;
    /// The level of a CAP `<severity>`.
    fn from_severity(s: CapSeverity) -> WarningLevel;
}

impl LevelOf for WarningLevel {
    /// The level named by a colour word in `text`: 蓝色/黄色/橙色/红色 anywhere, or
    /// blue/yellow/orange/red as whole words (any case). Where several are named (an upgrade
    /// "由黄色升级为橙色"), the highest.
    fn from_colour_words(text: &str) -> Option<WarningLevel> {
        let words = normalized_words(text);
        [
            (WarningLevel::Red, "红色", " red "),
            (WarningLevel::Orange, "橙色", " orange "),
            (WarningLevel::Yellow, "黄色", " yellow "),
            (WarningLevel::Blue, "蓝色", " blue "),
        ]
        .into_iter()
        .find(|(_, zh, en)| text.contains(zh) || words.contains(en))
        .map(|(level, _, _)| level)
    }

    /// The level of a CAP `<severity>`: Minor blue, Moderate yellow, Severe orange, Extreme
    /// red; `Unknown` is taken as blue (a warning is at least blue).
    fn from_severity(s: CapSeverity) -> WarningLevel {
        match s {
            CapSeverity::Unknown | CapSeverity::Minor => WarningLevel::Blue,
            CapSeverity::Moderate => WarningLevel::Yellow,
            CapSeverity::Severe => WarningLevel::Orange,
            CapSeverity::Extreme => WarningLevel::Red,
        }
    }
}

/// Where a warning came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum WarningSource {
    Cap,
    /// A CENC earthquake report; `automatic` for an automatic (AUTO_FLAG `AU`) report.
    Cenc {
        automatic: bool,
    },
}

/// One active (or pending) warning, as the gateway lists it and rules see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// The alert identifier, `/`, and the event code (or the event text).
    pub id: String,
    /// `rainstorm`, `lightning`, `high_temperature`, `earthquake`, ... (see
    /// [`KNOWN_KINDS`](crate::KNOWN_KINDS)), or a slug of the event text.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event code the kind was read from (`11B03`), or the first event code.
    pub code: Option<String>,
    pub level: WarningLevel,
    /// The `<event>` text of the first block.
    pub event: String,
    /// Earthquakes: the magnitude.
    pub magnitude: Option<f64>,
    pub regions: Vec<RegionCode>,
    pub polygons: Vec<Polygon>,
    pub circles: Vec<Circle>,
    pub headline: Option<String>,
    pub sender: String,
    pub sender_name: Option<String>,
    /// The alert that carries it (sender, identifier).
    pub alert: AlertKey,
    #[serde(with = "telemetry::time::serde_ts")]
    pub sent: Timestamp,
    #[serde(with = "telemetry::time::serde_ts")]
    pub effective: Timestamp,
    #[serde(with = "telemetry::time::serde_ts")]
    pub expires: Timestamp,
    pub msg_type: MsgType,
    pub references: Vec<AlertRef>,
    pub source: WarningSource,
}

/// Where a site is, as warnings are matched against it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteLocation {
    pub region: Option<RegionCode>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl SiteLocation {
    pub fn position(&self) -> Option<LatLon> {
        LatLon::new(self.lat?, self.lon?)
    }
}

impl Warning {
    /// Whether the warning's area touches the site: a region code of the warning covers the
    /// site's region (prefix rule, [`RegionCode::covers`]), or the site's position lies in one
    /// of its polygons or circles. A warning without any area touches no site.
    pub fn affects(&self, site: &SiteLocation) -> bool {
        if let Some(region) = &site.region {
            if self.regions.iter().any(|r| r.covers(region)) {
                return true;
            }
        }
        match site.position() {
            Some(p) => {
                self.polygons.iter().any(|poly| poly.contains(p))
                    || self.circles.iter().any(|c| c.contains(p))
            }
            None => false,
        }
    }

    /// Whether it is in force at `t`: `effective <= t < expires`.
    pub fn in_force_at(&self, t: Timestamp) -> bool {
        self.effective <= t && t < self.expires
    }

    /// The rule engine's view of the warning.
    #[cfg(feature = "alarm-rules")]
    pub fn to_active_warning(&self) -> alarm_rules::ActiveWarning {
        alarm_rules::ActiveWarning {
            id: self.id.clone(),
            kind: self.kind.clone(),
            level: self.level,
            magnitude: self.magnitude,
        }
    }
}

/// Free-function form of [`Warning::affects`].
pub fn affects(warning: &Warning, site: &SiteLocation) -> bool {
    warning.affects(site)
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/// A step of the earthquake table: from `min_magnitude` up (to the next step), the warning
/// reaches `radius_km` around the epicentre and has `level`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MagnitudeStep {
    pub min_magnitude: f64,
    pub radius_km: f64,
    pub level: WarningLevel,
}

/// Earthquake reports: how far and how long a quake warns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarthquakeConfig {
    /// How long an earthquake warning lasts after the origin time, in hours.
    pub validity_h: u32,
    /// Ascending by magnitude; a quake below the first step makes no warning.
    pub steps: Vec<MagnitudeStep>,
    /// A formal report replaces an automatic one of the same quake: origin times at most
    /// this far apart ...
    pub same_quake_window_s: u32,
    /// ... and epicentres at most this far apart.
    pub same_quake_distance_km: f64,
}

impl Default for EarthquakeConfig {
    fn default() -> Self {
        let step = |m: f64, r: f64, level| MagnitudeStep {
            min_magnitude: m,
            radius_km: r,
            level,
        };
        EarthquakeConfig {
            validity_h: 24,
            steps: vec![
                step(4.0, 50.0, WarningLevel::Blue),
                step(5.0, 100.0, WarningLevel::Yellow),
                step(6.0, 200.0, WarningLevel::Orange),
                step(7.0, 400.0, WarningLevel::Red),
                step(8.0, 800.0, WarningLevel::Red),
            ],
            same_quake_window_s: 120,
            same_quake_distance_km: 100.0,
        }
    }
}

impl EarthquakeConfig {
    /// The step a magnitude falls in, `None` below the first.
    pub fn step_for(&self, magnitude: f64) -> Option<&MagnitudeStep> {
        self.steps
            .iter()
            .rev()
            .find(|s| magnitude >= s.min_magnitude)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.validity_h == 0 {
            return Err("earthquake.validity_h must be at least 1".into());
        }
        if self.steps.is_empty() {
            return Err("earthquake.steps must not be empty".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            if !s.min_magnitude.is_finite() || !s.radius_km.is_finite() || s.radius_km <= 0.0 {
                return Err(format!(
                    "earthquake.steps[{i}]: magnitude and a positive radius_km are required"
                ));
            }
            if i > 0 && s.min_magnitude <= self.steps[i - 1].min_magnitude {
                return Err(format!("earthquake.steps[{i}]: min_magnitude must ascend"));
            }
        }
        if !(self.same_quake_distance_km.is_finite() && self.same_quake_distance_km >= 0.0) {
            return Err("earthquake.same_quake_distance_km must be a non-negative number".into());
        }
        Ok(())
    }
}

/// Bounds of the warning book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookLimits {
    /// The most warnings held (active and pending); more is refused.
    pub max_warnings: usize,
    /// The most warnings held from one sender: one feed that floods cannot crowd out the
    /// others' warnings.
    pub max_warnings_per_sender: usize,
    /// The most alert identities remembered (for repeats, cancels that came first).
    pub max_remembered_alerts: usize,
    /// How long an alert identity is remembered after it was seen or its warnings ended, in hours.
    pub remember_for_h: u32,
}

impl Default for BookLimits {
    fn default() -> Self {
        BookLimits {
            max_warnings: 10_000,
            max_warnings_per_sender: 2_000,
            max_remembered_alerts: 100_000,
            remember_for_h: 72,
        }
    }
}

/// Everything the crate can be told; a section of the gateway's config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeatherConfig {
    pub cap: CapLimits,
    /// How long a CAP warning without `<expires>` lasts after `effective` (or `sent`), in hours.
    pub default_validity_h: u32,
    pub earthquake: EarthquakeConfig,
    pub book: BookLimits,
}

impl Default for WeatherConfig {
    fn default() -> Self {
        WeatherConfig {
            cap: CapLimits::default(),
            default_validity_h: 24,
            earthquake: EarthquakeConfig::default(),
            book: BookLimits::default(),
        }
    }
}

impl WeatherConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.cap.validate()?;
        if self.default_validity_h == 0 {
            return Err("default_validity_h must be at least 1".into());
        }
        self.earthquake.validate()?;
        if self.book.max_warnings == 0
            || self.book.max_remembered_alerts == 0
            || self.book.max_warnings_per_sender == 0
        {
            return Err(
                "book.max_warnings, book.max_warnings_per_sender and book.max_remembered_alerts must be at least 1".into(),
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// CAP alert -> warnings.

/// The hazard an `<info>` is about: its CMA code, else its first event code.
fn event_code(info: &CapInfo) -> Option<String> {
    info.event_codes
        .iter()
        .find_map(|c| cma_code_in(&c.value).map(str::to_string))
        .or_else(|| {
            info.event_codes
                .iter()
                .map(|c| c.value.trim())
                .find(|v| !v.is_empty())
                .map(str::to_string)
        })
}

/// Everything of an `<info>` but its language and its words.
fn signature(info: &CapInfo) -> String {
    let areas: Vec<_> = info
        .areas
        .iter()
        .map(|a| (&a.polygons, &a.circles, &a.geocodes))
        .collect();
    format!(
        "{:?}",
        (
            &info.categories,
            &info.urgency,
            info.severity,
            &info.certainty,
            info.effective,
            info.onset,
            info.expires,
            areas
        )
    )
}

/// The first number in a text (`"3.4 Ml"` -> 3.4).
fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut start = start;
    if start > 0 && text.as_bytes()[start - 1] == b'-' {
        start -= 1;
    }
    let end = text[start + 1..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(text.len(), |e| start + 1 + e);
    text[start..end]
        .parse()
        .ok()
        .filter(|m: &f64| m.is_finite())
}

fn magnitude_of(info: &CapInfo) -> Option<f64> {
    info.parameters
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("magnitude") || p.name == "震级")
        .and_then(|p| first_number(&p.value))
}

struct Group<'a> {
    key: Option<String>,
    event_norm: String,
    signature: String,
    languages: BTreeSet<String>,
    infos: Vec<&'a CapInfo>,
}

/// The warnings an alert carries, in document order of their first block. Blocks with the same
/// event code, or the same event text, or that differ only in language and words, are one
/// warning with the union of their areas.
pub fn warnings_from_cap(alert: &CapAlert, config: &WeatherConfig) -> Vec<Warning> {
    let mut groups: Vec<Group> = Vec::new();
    for info in &alert.infos {
        let key = event_code(info);
        let event_norm = info.event.trim().to_lowercase();
        let sig = signature(info);
        let found = groups.iter_mut().position(|g| match (&key, &g.key) {
            (Some(k), Some(gk)) => k == gk,
            (Some(_), None) | (None, Some(_)) => false,
            (None, None) => {
                g.event_norm == event_norm
                    || (g.signature == sig && !g.languages.contains(&info.language))
            }
        });
        match found {
            Some(i) => {
                groups[i].languages.insert(info.language.clone());
                groups[i].infos.push(info);
            }
            None => groups.push(Group {
                key,
                event_norm,
                signature: sig,
                languages: BTreeSet::from([info.language.clone()]),
                infos: vec![info],
            }),
        }
    }

    let mut used_ids = BTreeSet::new();
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let first = g.infos[0];
        let suffix = g
            .key
            .clone()
            .unwrap_or_else(|| first.event.trim().to_string());
        let mut id = format!("{}/{}", alert.identifier, suffix);
        let mut n = 2;
        while !used_ids.insert(id.clone()) {
            id = format!("{}/{}#{n}", alert.identifier, suffix);
            n += 1;
        }

        let cma = g.key.as_deref().and_then(cma_code_in);
        let kind = cma
            .and_then(kind_of_cma_code)
            .or_else(|| g.infos.iter().find_map(|i| kind_of_words(&i.event)))
            .or_else(|| {
                g.infos
                    .iter()
                    .flat_map(|i| &i.event_codes)
                    .find_map(|c| kind_of_words(&c.value))
            })
            .map(str::to_string)
            .unwrap_or_else(|| slug(&first.event));

        let colour = g
            .infos
            .iter()
            .filter_map(|i| WarningLevel::from_colour_words(&i.event))
            .max()
            .or_else(|| {
                g.infos
                    .iter()
                    .filter_map(|i| {
                        i.headline
                            .as_deref()
                            .and_then(WarningLevel::from_colour_words)
                    })
                    .max()
            });
        let level = colour.unwrap_or_else(|| {
            WarningLevel::from_severity(
                g.infos
                    .iter()
                    .map(|i| i.severity)
                    .max()
                    .unwrap_or(CapSeverity::Unknown),
            )
        });

        let mut regions: Vec<RegionCode> = Vec::new();
        let mut polygons: Vec<Polygon> = Vec::new();
        let mut circles: Vec<Circle> = Vec::new();
        for area in g.infos.iter().flat_map(|i| &i.areas) {
            for r in &area.regions {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
            for p in &area.polygons {
                if !polygons.contains(p) {
                    polygons.push(p.clone());
                }
            }
            for c in &area.circles {
                if !circles.contains(c) {
                    circles.push(*c);
                }
            }
        }

        let magnitude = g.infos.iter().find_map(|i| magnitude_of(i));
        if kind == "earthquake" {
            if let Some(step) = magnitude.and_then(|m| config.earthquake.step_for(m)) {
                for c in &mut circles {
                    c.radius_km = c.radius_km.max(step.radius_km);
                }
            }
        }

        let effective = g
            .infos
            .iter()
            .filter_map(|i| i.effective)
            .min()
            .unwrap_or(alert.sent);
        let expires = g
            .infos
            .iter()
            .filter_map(|i| i.expires)
            .max()
            .unwrap_or_else(|| effective + Duration::hours(i64::from(config.default_validity_h)));

        out.push(Warning {
            id,
            kind,
            code: g.key.clone(),
            level,
            event: first.event.clone(),
            magnitude,
            regions,
            polygons,
            circles,
            headline: g.infos.iter().find_map(|i| i.headline.clone()),
            sender: alert.sender.clone(),
            sender_name: g.infos.iter().find_map(|i| i.sender_name.clone()),
            alert: alert.key(),
            sent: alert.sent,
            effective,
            expires,
            msg_type: alert.msg_type,
            references: alert.references.clone(),
            source: WarningSource::Cap,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_words() {
        assert_eq!(
            WarningLevel::from_colour_words("暴雨橙色预警信号"),
            Some(WarningLevel::Orange)
        );
        assert_eq!(
            WarningLevel::from_colour_words("暴雨黄色预警升级为红色"),
            Some(WarningLevel::Red)
        );
        assert_eq!(
            WarningLevel::from_colour_words("Rainstorm Yellow Warning"),
            Some(WarningLevel::Yellow)
        );
        assert_eq!(WarningLevel::from_colour_words("REDUCED visibility"), None);
        assert_eq!(WarningLevel::from_colour_words("黄河水位"), None);
        assert!(
            WarningLevel::Blue < WarningLevel::Yellow && WarningLevel::Orange < WarningLevel::Red
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(first_number("3.4 Ml"), Some(3.4));
        assert_eq!(first_number("M 5"), Some(5.0));
        assert_eq!(first_number("none"), None);
    }

    #[test]
    fn earthquake_steps() {
        let c = EarthquakeConfig::default();
        c.validate().unwrap();
        assert!(c.step_for(3.9).is_none());
        assert_eq!(c.step_for(4.0).unwrap().radius_km, 50.0);
        assert_eq!(c.step_for(5.5).unwrap().radius_km, 100.0);
        assert_eq!(c.step_for(6.0).unwrap().level, WarningLevel::Orange);
        assert_eq!(c.step_for(9.1).unwrap().radius_km, 800.0);
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let c: WeatherConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, WeatherConfig::default());
        c.validate().unwrap();
        assert!(serde_json::from_str::<WeatherConfig>(r#"{"default_validity_hours":3}"#).is_err());
        let bad = WeatherConfig {
            default_validity_h: 0,
            ..WeatherConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
