//! The rule model and the rule file format (TOML): parsing, validation, canonical form and
//! version hash. The format is documented in the crate's README.

use crate::api::WarningLevel;
use crate::error::RuleError;
use crate::glob::Glob;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use telemetry::{LimitKey, PointSpec, Severity};

mod motion;
pub(crate) use motion::{speed_of, Driving, Fence, Geofence, Window};

/// Which side of a threshold a level is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Side {
    High,
    Low,
}

/// One level of a threshold rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Level {
    pub side: Side,
    pub severity: Severity,
    pub raise: f64,
    /// Hysteresis: a raised level holds until the value is past this (already widened by the
    /// rule's deadband).
    pub clear: f64,
    /// High: raise at `>=` (true) or `>` (false). Low: raise at `<=` (true) or `<` (false).
    pub inclusive: bool,
    pub label: String,
    pub clear_label: String,
    /// The level's value comes from the point's own alarm setting (`raise` is then the
    /// rule's value for points without it, NaN for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LevelLimit>,
}

/// A level taken from a point's `limits`: which one, and the rule's deadband for its clear.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LevelLimit {
    pub key: LimitKey,
    pub deadband: f64,
}

impl Level {
    /// Raise and clear values of the level for a point: the rule's, or the point's own
    /// setting (`limit`); `None` where the level has no value for the point.
    pub(crate) fn values_for(&self, spec: Option<&PointSpec>) -> Option<(f64, f64)> {
        let Some(limit) = &self.limit else {
            return Some((self.raise, self.clear));
        };
        let v = spec
            .and_then(|s| s.limits.as_ref())
            .and_then(|l| l.get(limit.key))
            .or(Some(self.raise))
            .filter(|v| v.is_finite())?;
        let clear = match self.side {
            Side::High => v - limit.deadband,
            Side::Low => v + limit.deadband,
        };
        Some((v, clear))
    }

    #[inline]
    pub(crate) fn raises(&self, v: f64, raise: f64) -> bool {
        match (self.side, self.inclusive) {
            (Side::High, true) => v >= raise,
            (Side::High, false) => v > raise,
            (Side::Low, true) => v <= raise,
            (Side::Low, false) => v < raise,
        }
    }
    /// Whether `v` is past the clear value (the level no longer holds).
    #[inline]
    pub(crate) fn cleared(&self, v: f64, clear: f64) -> bool {
        !self.raises(v, clear)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    All,
    Any,
    AThenNotB,
    /// Configuration: the zone has A points and no B point.
    AWithoutB,
}

/// A point's part in a composite rule: which points (selector) and what they must say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Member {
    pub select: Selector,
    pub condition: PointCondition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PointCondition {
    /// Latest good value `>=` this.
    Above(f64),
    /// Latest good value `<` this.
    Below(f64),
    /// Latest good value (as bool) equals this.
    Equals(bool),
    /// The point has an open cause of a rule matching the pattern, at least this severe.
    Cause { rule: Glob, min_severity: Severity },
    /// Latest good value `<` the point's own alarm setting of this key (no setting: never).
    BelowLimit(LimitKey),
    /// The point is there (configuration rules: `a_without_b`).
    Present,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Kind {
    Threshold {
        levels: Vec<Level>,
        deadband: f64,
    },
    Rate {
        window_ms: u64,
        rise: Option<f64>,
        fall: Option<f64>,
        severity: Severity,
    },
    SensorFault {
        severity: Severity,
        bad_quality: bool,
        out_of_range: bool,
        stuck_ms: Option<u64>,
        stuck_tolerance: f64,
    },
    MissingData {
        severity: Severity,
        factor: Option<f64>,
        default_interval_ms: Option<u64>,
        /// Only while the point's last value said it was moving faster than this.
        #[serde(skip_serializing_if = "Option::is_none")]
        moving_above_kmh: Option<f64>,
    },
    AgentOffline {
        severity: Severity,
    },
    State {
        severity: Severity,
        active: bool,
        max_duration_ms: Option<u64>,
        escalate_to: Severity,
        label: String,
        /// Escalate when it becomes active this often within a window.
        #[serde(skip_serializing_if = "Option::is_none")]
        repeats: Option<Repeats>,
        /// Active when any of these bits of a numeric word is set (else: the value as a bool).
        #[serde(skip_serializing_if = "Option::is_none")]
        bits: Option<u64>,
    },
    Composite {
        severity: Severity,
        mode: Mode,
        zone_tag: String,
        members: Vec<Member>,
        within_ms: u64,
    },
    /// A site-level rule: one cause per site (subject: zone [`SITE_ZONE`]), raised while a
    /// warning its `only` context names is in force at the site.
    Site {
        severity: Severity,
        label: String,
    },
    /// A position inside (or outside) an area.
    Geofence(Geofence),
    /// Driving time accumulated from a point's speed.
    DrivingTime(Driving),
}

/// How often a state may become active within a window before it escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Repeats {
    pub max_starts: u32,
    pub window_ms: u64,
}

/// The zone name of a site-level cause (`Subject::Zone { zone: "site" }`).
pub const SITE_ZONE: &str = "site";

/// Which points (and sites) a rule applies to. Empty lists match anything.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(crate) struct Selector {
    pub category: Vec<String>,
    pub site: Option<Glob>,
    pub quantity: Vec<String>,
    pub gas: Vec<String>,
    pub location: Vec<String>,
    pub point: Option<Glob>,
    pub tags: BTreeMap<String, Glob>,
    /// Tags the point must not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_tags: Vec<String>,
    /// The site is (true) or is not (false) on the emergency emission-reduction list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emission_reduction_list: Option<bool>,
}

impl Selector {
    /// Whether matching needs the point's catalogue entry.
    pub(crate) fn needs_spec(&self) -> bool {
        !self.quantity.is_empty()
            || !self.gas.is_empty()
            || !self.location.is_empty()
            || !self.tags.is_empty()
    }
}

/// Tighten one level while a warning is active.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Tighten {
    pub level: usize,
    pub raise: Option<f64>,
    pub clear: Option<f64>,
    /// Move raise and clear this much towards the safe side (levels from a point's limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<f64>,
}

/// A condition on the site's active warnings and what it does to the rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ContextRule {
    pub warning: String,
    pub min_level: WarningLevel,
    pub min_magnitude: Option<f64>,
    /// The rule applies only while such a warning is active.
    pub only: bool,
    /// Steps of severity added while such a warning is active.
    pub severity_up: u8,
    pub tighten: Vec<Tighten>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub source: Option<String>,
    pub confidence: String,
    pub select: Selector,
    pub context: Vec<ContextRule>,
    pub on_delay_ms: u64,
    pub off_delay_ms: u64,
    /// The rule applies only within this time of day (event time, in its time zone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(flatten)]
    pub kind: Kind,
    /// sha256 of the canonical form, first 12 hex characters (not part of the form).
    #[serde(skip)]
    pub version: String,
    /// The file the rule came from (not part of the canonical form).
    #[serde(skip)]
    pub file: String,
}

impl Rule {
    pub(crate) fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn compute_version(&mut self) {
        let digest = Sha256::digest(self.canonical().as_bytes());
        self.version = hex::encode(digest)[..12].to_string();
    }

    /// Whether the rule is about one point at a time (else: zone or agent).
    pub(crate) fn per_point(&self) -> bool {
        !matches!(
            self.kind,
            Kind::AgentOffline { .. } | Kind::Composite { .. } | Kind::Site { .. }
        )
    }

    /// Whether the rule may apply to a point no catalogue names.
    pub(crate) fn catalogue_free(&self) -> bool {
        matches!(self.kind, Kind::MissingData { .. }) && !self.select.needs_spec()
    }
}

// ---------------------------------------------------------------------------------------
// The reader: takes keys off a TOML table, so that whatever is left is an unknown key.

struct Reader<'a> {
    file: &'a str,
    rule: &'a str,
    path: String,
    table: toml::Table,
}

type R<T> = Result<T, RuleError>;

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

impl<'a> Reader<'a> {
    fn new(file: &'a str, rule: &'a str, path: String, table: toml::Table) -> Self {
        Reader {
            file,
            rule,
            path,
            table,
        }
    }

    fn field_name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    fn err(&self, key: &str, message: impl Into<String>) -> RuleError {
        RuleError::Field {
            file: self.file.to_string(),
            rule: self.rule.to_string(),
            field: self.field_name(key),
            message: message.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }

    fn string(&mut self, key: &str) -> R<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, found {}", type_name(&v)))),
        }
    }

    fn req_string(&mut self, key: &str) -> R<String> {
        self.string(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn f64(&mut self, key: &str) -> R<Option<f64>> {
        let v = match self.take(key) {
            None => return Ok(None),
            Some(toml::Value::Float(f)) => f,
            Some(toml::Value::Integer(i)) => i as f64,
            Some(v) => {
                return Err(self.err(key, format!("expected a number, found {}", type_name(&v))))
            }
        };
        if !v.is_finite() {
            return Err(self.err(key, "must be a finite number"));
        }
        Ok(Some(v))
    }

    fn u64(&mut self, key: &str) -> R<Option<u64>> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if i >= 0 => Ok(Some(i as u64)),
            Some(toml::Value::Integer(_)) => Err(self.err(key, "must not be negative")),
            Some(v) => Err(self.err(key, format!("expected an integer, found {}", type_name(&v)))),
        }
    }

    /// A duration in milliseconds, at most 30 days.
    fn ms(&mut self, key: &str) -> R<Option<u64>> {
        let v = self.u64(key)?;
        if let Some(v) = v {
            if v > 30 * 24 * 3600 * 1000 {
                return Err(self.err(key, "longer than 30 days"));
            }
        }
        Ok(v)
    }

    fn bool(&mut self, key: &str) -> R<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.err(
                key,
                format!("expected true or false, found {}", type_name(&v)),
            )),
        }
    }

    fn severity(&mut self, key: &str) -> R<Option<Severity>> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => Severity::parse(&s).map(Some).ok_or_else(|| {
                self.err(
                    key,
                    format!("{s:?} is not info, warning, alarm or critical"),
                )
            }),
        }
    }

    fn req_severity(&mut self, key: &str) -> R<Severity> {
        self.severity(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// A string or an array of strings.
    fn strings(&mut self, key: &str) -> R<Vec<String>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s]),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, v) in a.into_iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(s),
                        v => {
                            return Err(self.err(
                                &format!("{key}[{i}]"),
                                format!("expected a string, found {}", type_name(&v)),
                            ))
                        }
                    }
                }
                out.sort();
                out.dedup();
                Ok(out)
            }
            Some(v) => Err(self.err(
                key,
                format!(
                    "expected a string or an array of strings, found {}",
                    type_name(&v)
                ),
            )),
        }
    }

    fn sub(&mut self, key: &str) -> R<Option<Reader<'a>>> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(Reader::new(
                self.file,
                self.rule,
                self.field_name(key),
                t,
            ))),
            Some(v) => Err(self.err(key, format!("expected a table, found {}", type_name(&v)))),
        }
    }

    fn subs(&mut self, key: &str) -> R<Vec<Reader<'a>>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, v) in a.into_iter().enumerate() {
                    match v {
                        toml::Value::Table(t) => out.push(Reader::new(
                            self.file,
                            self.rule,
                            self.field_name(&format!("{key}[{i}]")),
                            t,
                        )),
                        v => {
                            return Err(self.err(
                                &format!("{key}[{i}]"),
                                format!("expected a table, found {}", type_name(&v)),
                            ))
                        }
                    }
                }
                Ok(out)
            }
            Some(toml::Value::Table(t)) => Ok(vec![Reader::new(
                self.file,
                self.rule,
                self.field_name(key),
                t,
            )]),
            Some(v) => Err(self.err(
                key,
                format!("expected an array of tables, found {}", type_name(&v)),
            )),
        }
    }

    /// Refuse whatever key is left.
    fn finish(self) -> R<()> {
        if let Some(key) = self.table.keys().next() {
            return Err(self.err(key, "unknown key"));
        }
        Ok(())
    }

    /// Refuse keys that exist but do not belong to this rule kind.
    fn refuse(&self, keys: &[&str], kind: &str) -> R<()> {
        for k in keys {
            if self.table.contains_key(*k) {
                return Err(self.err(k, format!("not a field of a {kind} rule")));
            }
        }
        Ok(())
    }
}

const SELECTOR_KEYS: [&str; 9] = [
    "category",
    "site",
    "quantity",
    "gas",
    "location",
    "point",
    "tags",
    "without_tags",
    "emission_reduction_list",
];
const CATEGORIES: [&str; 7] = [
    "coal_mine",
    "non_coal_mine",
    "open_pit",
    "hazchem",
    "tailings",
    "transport",
    "other",
];
const CONFIDENCE: [&str; 3] = ["confirmed", "secondary", "unconfirmed"];

fn read_selector_fields(r: &mut Reader<'_>) -> R<Selector> {
    let category = r.strings("category")?;
    for c in &category {
        if !CATEGORIES.contains(&c.as_str()) {
            return Err(r.err(
                "category",
                format!("{c:?} is not one of {}", CATEGORIES.join(", ")),
            ));
        }
    }
    let site = r.string("site")?.map(|s| Glob::new(&s));
    let quantity = r.strings("quantity")?;
    let gas = r
        .strings("gas")?
        .into_iter()
        .map(|g| g.to_ascii_lowercase())
        .collect();
    let location = r.strings("location")?;
    let point = r.string("point")?.map(|s| Glob::new(&s));
    let mut tags = BTreeMap::new();
    if let Some(mut t) = r.sub("tags")? {
        let keys: Vec<String> = t.table.keys().cloned().collect();
        for k in keys {
            let v = t.req_string(&k)?;
            tags.insert(k, Glob::new(&v));
        }
        t.finish()?;
    }
    let without_tags = r.strings("without_tags")?;
    let emission_reduction_list = r.bool("emission_reduction_list")?;
    Ok(Selector {
        category,
        site,
        quantity,
        gas,
        location,
        point,
        tags,
        without_tags,
        emission_reduction_list,
    })
}

fn read_selector(r: &mut Reader<'_>) -> R<Selector> {
    match r.sub("select")? {
        None => Ok(Selector::default()),
        Some(mut s) => {
            let sel = read_selector_fields(&mut s)?;
            s.finish()?;
            Ok(sel)
        }
    }
}

fn warning_level(r: &Reader<'_>, key: &str, s: &str) -> R<WarningLevel> {
    Ok(match s {
        "blue" => WarningLevel::Blue,
        "yellow" => WarningLevel::Yellow,
        "orange" => WarningLevel::Orange,
        "red" => WarningLevel::Red,
        _ => return Err(r.err(key, format!("{s:?} is not blue, yellow, orange or red"))),
    })
}

fn read_levels(
    r: &mut Reader<'_>,
    key: &str,
    side: Side,
    deadband: f64,
    out: &mut Vec<Level>,
) -> R<()> {
    let subs = r.subs(key)?;
    let mut prev: Option<(Severity, f64)> = None;
    for mut l in subs {
        let severity = l.req_severity("severity")?;
        let limit = match l.string("limit")? {
            None => None,
            Some(k) => Some(limit_key(&l, side, &k)?),
        };
        let raise_given = l.f64("raise")?;
        let clear_given = l.f64("clear")?;
        if limit.is_some() && clear_given.is_some() {
            return Err(l.err(
                "clear",
                "a level from a point's limit clears at that limit (use deadband)",
            ));
        }
        let raise = match (raise_given, limit) {
            (Some(r), _) => r,
            (None, Some(_)) => f64::NAN,
            (None, None) => return Err(l.err("raise", "missing")),
        };
        let inclusive = l.bool("inclusive")?.unwrap_or(side == Side::High);
        let label = l
            .string("label")?
            .unwrap_or_else(|| format!("{} level", severity.as_str()));
        let clear_label = l
            .string("clear_label")?
            .unwrap_or_else(|| "clear level".to_string());
        let clear = clear_given.unwrap_or(raise);
        match side {
            Side::High if clear > raise => {
                return Err(l.err("clear", format!("{clear} is above raise {raise}")))
            }
            Side::Low if clear < raise => {
                return Err(l.err("clear", format!("{clear} is below raise {raise}")))
            }
            _ => {}
        }
        if let Some((ps, pr)) = prev {
            if severity <= ps {
                return Err(l.err("severity", "levels must be listed by rising severity"));
            }
            // Levels from a point's limits (NaN here) are the point's business.
            let ok = raise.is_nan()
                || pr.is_nan()
                || match side {
                    Side::High => raise >= pr,
                    Side::Low => raise <= pr,
                };
            if !ok {
                return Err(l.err(
                    "raise",
                    "a more severe level must not be less extreme than the one before",
                ));
            }
        }
        prev = Some((severity, raise));
        let clear = match side {
            Side::High => clear - deadband,
            Side::Low => clear + deadband,
        };
        l.finish()?;
        out.push(Level {
            side,
            severity,
            raise,
            clear,
            inclusive,
            label,
            clear_label,
            limit: limit.map(|key| LevelLimit { key, deadband }),
        });
    }
    Ok(())
}

/// A level's `limit`: `hh` or `h` for a high level, `l` or `ll` for a low one.
fn limit_key(r: &Reader<'_>, side: Side, s: &str) -> R<LimitKey> {
    match (side, LimitKey::parse(s)) {
        (Side::High, Some(k @ (LimitKey::Hh | LimitKey::H)))
        | (Side::Low, Some(k @ (LimitKey::L | LimitKey::Ll))) => Ok(k),
        _ => Err(r.err(
            "limit",
            format!("{s:?} is not hh or h (high levels), l or ll (low levels)"),
        )),
    }
}

/// A composite's member; `selection_only`: it selects points and says nothing of their values
/// (`a_without_b`).
fn read_member(mut m: Reader<'_>, selection_only: bool) -> R<Member> {
    let select = read_selector_fields(&mut m)?;
    let above = m.f64("above")?;
    let below = m.f64("below")?;
    let equals = m.bool("equals")?;
    let cause = m.string("cause")?;
    let min_severity = m.severity("min_severity")?;
    let below_limit = match m.string("below_limit")? {
        None => None,
        Some(k) => Some(
            LimitKey::parse(&k)
                .ok_or_else(|| m.err("below_limit", format!("{k:?} is not hh, h, l or ll")))?,
        ),
    };
    let n = above.is_some() as u8
        + below.is_some() as u8
        + equals.is_some() as u8
        + cause.is_some() as u8
        + below_limit.is_some() as u8;
    if selection_only {
        if n != 0 || min_severity.is_some() {
            return Err(m.err(
                "above",
                "a_without_b members select points only (no above, below, equals, cause)",
            ));
        }
        m.finish()?;
        return Ok(Member {
            select,
            condition: PointCondition::Present,
        });
    }
    if n != 1 {
        return Err(m.err(
            "above",
            "give exactly one of above, below, below_limit, equals, cause",
        ));
    }
    if min_severity.is_some() && cause.is_none() {
        return Err(m.err("min_severity", "only with cause"));
    }
    let condition = if let Some(v) = above {
        PointCondition::Above(v)
    } else if let Some(v) = below {
        PointCondition::Below(v)
    } else if let Some(b) = equals {
        PointCondition::Equals(b)
    } else if let Some(k) = below_limit {
        PointCondition::BelowLimit(k)
    } else {
        PointCondition::Cause {
            rule: Glob::new(&cause.unwrap_or_default()),
            min_severity: min_severity.unwrap_or(Severity::Info),
        }
    };
    m.finish()?;
    Ok(Member { select, condition })
}

const COMMON_KEYS: [&str; 12] = [
    "active_between",
    "time_zone",
    "id",
    "kind",
    "description",
    "source",
    "confidence",
    "enabled",
    "select",
    "context",
    "on_delay_ms",
    "off_delay_ms",
];

const KIND_KEYS: [(&str, &[&str]); 10] = [
    ("threshold", &["high", "low", "deadband"]),
    ("rate", &["window_ms", "rise", "fall", "severity"]),
    (
        "sensor_fault",
        &[
            "severity",
            "bad_quality",
            "out_of_range",
            "stuck_ms",
            "stuck_tolerance",
        ],
    ),
    (
        "missing_data",
        &[
            "severity",
            "factor",
            "default_interval_ms",
            "moving_above_kmh",
        ],
    ),
    ("agent_offline", &["severity"]),
    (
        "state",
        &[
            "severity",
            "active",
            "max_duration_ms",
            "escalate_to",
            "label",
            "max_starts",
            "starts_window_ms",
            "bits",
        ],
    ),
    (
        "composite",
        &[
            "severity",
            "mode",
            "zone_tag",
            "members",
            "a",
            "b",
            "within_ms",
        ],
    ),
    ("site", &["severity", "label"]),
    (
        "geofence",
        &[
            "severity", "label", "circle", "polygon", "trigger", "dwell_ms",
        ],
    ),
    (
        "driving_time",
        &[
            "severity",
            "label",
            "window_label",
            "speed_above_kmh",
            "max_continuous_ms",
            "rest_ms",
            "max_in_window_ms",
            "window_ms",
        ],
    ),
];

/// Parse one `[[rule]]` table. `Ok(None)`: the rule is disabled (`enabled = false`).
fn parse_rule(file: &str, index: usize, table: toml::Table) -> R<Option<Rule>> {
    let id = match table.get("id") {
        Some(toml::Value::String(s)) => s.clone(),
        _ => format!("#{}", index + 1),
    };
    let mut r = Reader::new(file, &id, String::new(), table);
    let id_checked = r.req_string("id")?;
    if id_checked.is_empty()
        || id_checked.len() > 128
        || !id_checked.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
    {
        return Err(r.err("id", "must be 1 to 128 characters of [a-z0-9._-]"));
    }
    let kind_name = r.req_string("kind")?;
    let Some((_, own)) = KIND_KEYS.iter().find(|(k, _)| *k == kind_name) else {
        let kinds: Vec<&str> = KIND_KEYS.iter().map(|(k, _)| *k).collect();
        return Err(r.err(
            "kind",
            format!("{kind_name:?} is not one of {}", kinds.join(", ")),
        ));
    };
    // Keys of other kinds are refused by name, so the message says what is wrong.
    for (k, keys) in KIND_KEYS.iter() {
        if *k != kind_name {
            let foreign: Vec<&str> = keys.iter().copied().filter(|x| !own.contains(x)).collect();
            r.refuse(&foreign, &kind_name)?;
        }
    }
    let enabled = r.bool("enabled")?.unwrap_or(true);
    let description = r.string("description")?;
    let source = r.string("source")?;
    let confidence = r
        .string("confidence")?
        .unwrap_or_else(|| "confirmed".to_string());
    if !CONFIDENCE.contains(&confidence.as_str()) {
        return Err(r.err(
            "confidence",
            format!("{confidence:?} is not one of {}", CONFIDENCE.join(", ")),
        ));
    }
    let select = read_selector(&mut r)?;
    let on_delay_ms = r.ms("on_delay_ms")?.unwrap_or(0);
    let off_delay_ms = r.ms("off_delay_ms")?.unwrap_or(0);
    let window = motion::read_window(&mut r)?;

    let kind = match kind_name.as_str() {
        "threshold" => {
            let deadband = r.f64("deadband")?.unwrap_or(0.0);
            if deadband < 0.0 {
                return Err(r.err("deadband", "must not be negative"));
            }
            let mut levels = Vec::new();
            read_levels(&mut r, "high", Side::High, deadband, &mut levels)?;
            let n_high = levels.len();
            read_levels(&mut r, "low", Side::Low, deadband, &mut levels)?;
            if levels.is_empty() {
                return Err(r.err(
                    "high",
                    "a threshold rule needs at least one level in high or low",
                ));
            }
            if levels.len() > 16 {
                return Err(r.err("high", "at most 16 levels"));
            }
            if n_high > 0 && n_high < levels.len() {
                let top_low = levels[n_high..]
                    .iter()
                    .map(|l| l.clear)
                    .fold(f64::NEG_INFINITY, f64::max);
                let bottom_high = levels[..n_high]
                    .iter()
                    .map(|l| l.clear)
                    .fold(f64::INFINITY, f64::min);
                if top_low >= bottom_high {
                    return Err(r.err("low", "low levels overlap high levels"));
                }
            }
            Kind::Threshold { levels, deadband }
        }
        "rate" => {
            let window_ms = r
                .ms("window_ms")?
                .ok_or_else(|| r.err("window_ms", "missing"))?;
            if window_ms == 0 {
                return Err(r.err("window_ms", "must be above 0"));
            }
            let rise = r.f64("rise")?;
            let fall = r.f64("fall")?;
            if rise.is_none() && fall.is_none() {
                return Err(r.err("rise", "give rise, fall or both"));
            }
            if rise.is_some_and(|v| v <= 0.0) {
                return Err(r.err("rise", "must be above 0"));
            }
            if fall.is_some_and(|v| v <= 0.0) {
                return Err(r.err("fall", "must be above 0"));
            }
            let severity = r.req_severity("severity")?;
            Kind::Rate {
                window_ms,
                rise,
                fall,
                severity,
            }
        }
        "sensor_fault" => {
            let severity = r.severity("severity")?.unwrap_or(Severity::Warning);
            let bad_quality = r.bool("bad_quality")?.unwrap_or(true);
            let out_of_range = r.bool("out_of_range")?.unwrap_or(true);
            let stuck_ms = r.ms("stuck_ms")?;
            if stuck_ms == Some(0) {
                return Err(r.err("stuck_ms", "must be above 0"));
            }
            let stuck_tolerance = r.f64("stuck_tolerance")?.unwrap_or(0.0);
            if stuck_tolerance < 0.0 {
                return Err(r.err("stuck_tolerance", "must not be negative"));
            }
            Kind::SensorFault {
                severity,
                bad_quality,
                out_of_range,
                stuck_ms,
                stuck_tolerance,
            }
        }
        "missing_data" => {
            let severity = r.severity("severity")?.unwrap_or(Severity::Warning);
            let factor = r.f64("factor")?;
            if factor.is_some_and(|f| f < 1.0) {
                return Err(r.err("factor", "must be at least 1"));
            }
            let default_interval_ms = r.ms("default_interval_ms")?;
            if default_interval_ms == Some(0) {
                return Err(r.err("default_interval_ms", "must be above 0"));
            }
            let moving_above_kmh = r.f64("moving_above_kmh")?;
            if moving_above_kmh.is_some_and(|v| v < 0.0) {
                return Err(r.err("moving_above_kmh", "must not be negative"));
            }
            Kind::MissingData {
                severity,
                factor,
                default_interval_ms,
                moving_above_kmh,
            }
        }
        "agent_offline" => {
            let severity = r.severity("severity")?.unwrap_or(Severity::Alarm);
            if select.needs_spec() || select.point.is_some() {
                return Err(r.err("select", "an agent rule selects by site and category only"));
            }
            Kind::AgentOffline { severity }
        }
        "state" => {
            let severity = r.req_severity("severity")?;
            let active = r.bool("active")?.unwrap_or(true);
            let max_duration_ms = r.ms("max_duration_ms")?;
            if max_duration_ms == Some(0) {
                return Err(r.err("max_duration_ms", "must be above 0"));
            }
            let repeats = match (r.u64("max_starts")?, r.ms("starts_window_ms")?) {
                (None, None) => None,
                (Some(n), Some(w)) if (1..=1000).contains(&n) && w > 0 => Some(Repeats {
                    max_starts: n as u32,
                    window_ms: w,
                }),
                _ => {
                    return Err(r.err(
                        "max_starts",
                        "give max_starts (1 to 1000) and starts_window_ms (above 0) together",
                    ))
                }
            };
            let escalate_to = match r.severity("escalate_to")? {
                Some(s) => {
                    if s <= severity {
                        return Err(r.err("escalate_to", "must be more severe than severity"));
                    }
                    if max_duration_ms.is_none() && repeats.is_none() {
                        return Err(r.err("escalate_to", "only with max_duration_ms or max_starts"));
                    }
                    s
                }
                None => bump(severity, 1),
            };
            let label = r.string("label")?.unwrap_or_else(|| "active".to_string());
            let bits = motion::read_bits(&mut r)?;
            Kind::State {
                severity,
                active,
                max_duration_ms,
                escalate_to,
                label,
                repeats,
                bits,
            }
        }
        "site" => {
            let severity = r.req_severity("severity")?;
            if select.needs_spec() || select.point.is_some() {
                return Err(r.err("select", "a site rule selects by site and category only"));
            }
            let label = r
                .string("label")?
                .unwrap_or_else(|| "site check required".to_string());
            Kind::Site { severity, label }
        }
        "geofence" => Kind::Geofence(motion::read_geofence(&mut r)?),
        "driving_time" => Kind::DrivingTime(motion::read_driving(&mut r)?),
        _ => {
            // composite
            let severity = r.req_severity("severity")?;
            let mode_s = r.req_string("mode")?;
            let mode = match mode_s.as_str() {
                "all" => Mode::All,
                "any" => Mode::Any,
                "a_then_not_b" => Mode::AThenNotB,
                "a_without_b" => Mode::AWithoutB,
                _ => {
                    return Err(r.err(
                        "mode",
                        format!("{mode_s:?} is not all, any, a_then_not_b or a_without_b"),
                    ))
                }
            };
            let zone_tag = r.string("zone_tag")?.unwrap_or_else(|| "zone".to_string());
            if select.needs_spec() || select.point.is_some() {
                return Err(r.err(
                    "select",
                    "a composite rule selects sites here; select points in its members",
                ));
            }
            let mut members = Vec::new();
            let pair = matches!(mode, Mode::AThenNotB | Mode::AWithoutB);
            let within_ms = if pair {
                if r.table.contains_key("members") {
                    return Err(r.err("members", format!("{mode_s} takes a and b")));
                }
                let selection_only = mode == Mode::AWithoutB;
                let a = r.sub("a")?.ok_or_else(|| r.err("a", "missing"))?;
                members.push(read_member(a, selection_only)?);
                let b = r.sub("b")?.ok_or_else(|| r.err("b", "missing"))?;
                members.push(read_member(b, selection_only)?);
                match (mode, r.ms("within_ms")?) {
                    (Mode::AThenNotB, Some(w)) => w,
                    (Mode::AThenNotB, None) => return Err(r.err("within_ms", "missing")),
                    (_, None) => 0,
                    (_, Some(_)) => return Err(r.err("within_ms", "only with mode a_then_not_b")),
                }
            } else {
                for k in ["a", "b", "within_ms"] {
                    if r.table.contains_key(k) {
                        return Err(r.err(k, "only with mode a_then_not_b or a_without_b"));
                    }
                }
                for m in r.subs("members")? {
                    members.push(read_member(m, false)?);
                }
                if members.is_empty() {
                    return Err(r.err("members", "at least one member"));
                }
                0
            };
            Kind::Composite {
                severity,
                mode,
                zone_tag,
                members,
                within_ms,
            }
        }
    };

    let mut context = Vec::new();
    for mut c in r.subs("context")? {
        let warning = c.req_string("warning")?;
        let lvl = c.string("min_level")?.unwrap_or_else(|| "blue".to_string());
        let min_level = warning_level(&c, "min_level", &lvl)?;
        let min_magnitude = c.f64("min_magnitude")?;
        let only = c.bool("only")?.unwrap_or(false);
        let severity_up = c.u64("severity_up")?.unwrap_or(0);
        if severity_up > 3 {
            return Err(c.err("severity_up", "at most 3"));
        }
        let mut tighten = Vec::new();
        for mut t in c.subs("tighten")? {
            let Kind::Threshold { levels, deadband } = &kind else {
                return Err(t.err("level", "tighten applies to threshold rules only"));
            };
            let sev = t.req_severity("level")?;
            let side = match t.string("side")?.as_deref() {
                None | Some("high") => Side::High,
                Some("low") => Side::Low,
                Some(s) => return Err(t.err("side", format!("{s:?} is not high or low"))),
            };
            let Some(level) = levels
                .iter()
                .position(|l| l.severity == sev && l.side == side)
            else {
                return Err(t.err(
                    "level",
                    format!("the rule has no {side:?} level of severity {sev}"),
                ));
            };
            let raise = t.f64("raise")?;
            let clear = t.f64("clear")?.map(|c| match side {
                Side::High => c - deadband,
                Side::Low => c + deadband,
            });
            let by = t.f64("by")?;
            match (raise.is_some() || clear.is_some(), by) {
                (false, None) => return Err(t.err("raise", "give raise, clear or both, or by")),
                (true, Some(_)) => {
                    return Err(t.err("by", "by moves raise and clear: not with them"))
                }
                (_, Some(b)) if b <= 0.0 => return Err(t.err("by", "must be above 0")),
                _ => {}
            }
            t.finish()?;
            tighten.push(Tighten {
                level,
                raise,
                clear,
                by,
            });
        }
        if !only && severity_up == 0 && tighten.is_empty() {
            return Err(c.err(
                "only",
                "a context condition must set only, severity_up or tighten",
            ));
        }
        c.finish()?;
        context.push(ContextRule {
            warning,
            min_level,
            min_magnitude,
            only,
            severity_up: severity_up as u8,
            tighten,
        });
    }
    if !context.is_empty() && matches!(kind, Kind::MissingData { .. } | Kind::AgentOffline { .. }) {
        return Err(r.err("context", "not for missing-data or agent rules"));
    }
    if matches!(kind, Kind::Site { .. }) && !context.iter().any(|c| c.only) {
        return Err(r.err(
            "context",
            "a site rule needs a context condition with only = true (it is raised while such a warning is in force)",
        ));
    }
    r.finish()?;
    if !enabled {
        return Ok(None);
    }
    let mut rule = Rule {
        id: id_checked,
        description,
        source,
        confidence,
        select,
        context,
        on_delay_ms,
        off_delay_ms,
        window,
        kind,
        version: String::new(),
        file: file.to_string(),
    };
    rule.compute_version();
    Ok(Some(rule))
}

pub(crate) fn bump(s: Severity, steps: u8) -> Severity {
    let i = Severity::ALL.iter().position(|x| *x == s).unwrap_or(0) + steps as usize;
    Severity::ALL[i.min(3)]
}

/// Parse one file: its enabled rules, and the ids of rules it disables.
pub(crate) fn parse_file(file: &str, text: &str) -> R<(Vec<Rule>, Vec<String>)> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| RuleError::Syntax {
            file: file.to_string(),
            message: e.message().to_string(),
        })?;
    let mut rules = Vec::new();
    let mut disabled = Vec::new();
    for (key, value) in table {
        if key != "rule" {
            return Err(RuleError::File {
                file: file.to_string(),
                field: key,
                message: "unknown key (a rule file holds [[rule]] tables only)".into(),
            });
        }
        let toml::Value::Array(items) = value else {
            return Err(RuleError::File {
                file: file.to_string(),
                field: key,
                message: "expected an array of tables ([[rule]])".into(),
            });
        };
        for (i, item) in items.into_iter().enumerate() {
            let toml::Value::Table(t) = item else {
                return Err(RuleError::File {
                    file: file.to_string(),
                    field: format!("rule[{i}]"),
                    message: "expected a table".into(),
                });
            };
            let id = t.get("id").and_then(|v| v.as_str()).map(str::to_string);
            match parse_rule(file, i, t)? {
                Some(r) => rules.push(r),
                None => disabled.extend(id),
            }
        }
    }
    Ok((rules, disabled))
}

/// Common keys, for the README's field table test.
#[allow(dead_code)]
pub(crate) fn all_keys() -> Vec<&'static str> {
    let mut v: Vec<&str> = COMMON_KEYS.to_vec();
    v.extend(SELECTOR_KEYS);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(side: Side, inclusive: bool) -> Level {
        Level {
            side,
            severity: Severity::Alarm,
            raise: 10.0,
            clear: 8.0,
            inclusive,
            label: String::new(),
            clear_label: String::new(),
            limit: None,
        }
    }

    #[test]
    fn comparisons_by_side() {
        let h = level(Side::High, true);
        assert!(h.raises(10.0, 10.0) && !h.raises(9.99, 10.0));
        assert!(h.cleared(7.99, 8.0) && !h.cleared(8.0, 8.0));
        let h = level(Side::High, false);
        assert!(!h.raises(10.0, 10.0) && h.cleared(8.0, 8.0));
        let l = level(Side::Low, false);
        assert!(l.raises(9.99, 10.0) && !l.raises(10.0, 10.0));
        assert!(l.cleared(10.0, 10.0));
    }

    #[test]
    fn severity_steps_stop_at_critical() {
        assert_eq!(bump(Severity::Warning, 1), Severity::Alarm);
        assert_eq!(bump(Severity::Alarm, 3), Severity::Critical);
        assert_eq!(bump(Severity::Info, 0), Severity::Info);
    }

    #[test]
    fn deadband_widens_the_clear_value() {
        let text = "[[rule]]\nid = \"x\"\nkind = \"threshold\"\ndeadband = 0.5\nhigh = [{ severity = \"alarm\", raise = 10 }]\nlow = [{ severity = \"alarm\", raise = 2 }]\n";
        let (rules, _) = parse_file("f.toml", text).unwrap();
        let Kind::Threshold { levels, .. } = &rules[0].kind else {
            panic!()
        };
        assert_eq!((levels[0].clear, levels[1].clear), (9.5, 2.5));
    }
}
