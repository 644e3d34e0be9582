//! A validated set of rules, each with an id and a version hash.

use crate::error::RuleError;
use crate::rule::{parse_file, Rule};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The standard rule pack, compiled in.
pub const BUILTIN_FILES: [(&str, &str); 7] = [
    ("builtin/coal.toml", include_str!("../rules/coal.toml")),
    (
        "builtin/hazchem.toml",
        include_str!("../rules/hazchem.toml"),
    ),
    (
        "builtin/ventilation.toml",
        include_str!("../rules/ventilation.toml"),
    ),
    (
        "builtin/process.toml",
        include_str!("../rules/process.toml"),
    ),
    ("builtin/common.toml", include_str!("../rules/common.toml")),
    (
        "builtin/weather.toml",
        include_str!("../rules/weather.toml"),
    ),
    (
        "builtin/vehicle.toml",
        include_str!("../rules/vehicle.toml"),
    ),
];

/// Validated rules, sorted by id.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub(crate) rules: Arc<Vec<Rule>>,
}

/// What the gateway may show about a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub version: String,
    pub kind: String,
    pub file: String,
    pub confidence: String,
    pub source: Option<String>,
    pub description: Option<String>,
}

impl RuleSet {
    /// The built-in standard pack (compiled in from `alarm-rules/rules/*.toml`).
    pub fn builtin() -> RuleSet {
        let files: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        match Self::parse(&files, false) {
            Ok(set) => set,
            // The pack is tested (`builtin_pack_parses`); an error here is a build defect.
            Err(e) => panic!("the built-in rule pack is invalid: {e}"),
        }
    }

    /// An empty set (no rule applies).
    pub fn empty() -> RuleSet {
        RuleSet {
            rules: Arc::new(Vec::new()),
        }
    }

    /// Parse rule files (file name, text). `with_builtin`: start from the standard pack; files
    /// add rules or replace rules of the same id (`enabled = false` removes one). Errors name the
    /// file, the rule and the field.
    pub fn parse(files: &[(String, String)], with_builtin: bool) -> Result<RuleSet, RuleError> {
        let mut by_id: BTreeMap<String, Rule> = BTreeMap::new();
        if with_builtin {
            for r in Self::builtin().rules.iter() {
                by_id.insert(r.id.clone(), r.clone());
            }
        }
        // Rule id -> the file that defined (or disabled) it among `files`.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, text) in files {
            let (rules, disabled) = parse_file(name, text)?;
            for id in disabled {
                if let Some(first) = seen.get(&id) {
                    return Err(RuleError::Duplicate {
                        file: name.clone(),
                        rule: id,
                        first_file: first.clone(),
                    });
                }
                seen.insert(id.clone(), name.clone());
                by_id.remove(&id);
            }
            for r in rules {
                if let Some(first) = seen.get(&r.id) {
                    return Err(RuleError::Duplicate {
                        file: name.clone(),
                        rule: r.id,
                        first_file: first.clone(),
                    });
                }
                seen.insert(r.id.clone(), name.clone());
                by_id.insert(r.id.clone(), r);
            }
        }
        Ok(RuleSet {
            rules: Arc::new(by_id.into_values().collect()),
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    /// The version hash of a rule (sha256 of its canonical form, first 12 hex characters).
    pub fn version(&self, id: &str) -> Option<&str> {
        self.get(id).map(|r| r.version.as_str())
    }

    /// What each rule is, for an API listing.
    pub fn info(&self) -> Vec<RuleInfo> {
        self.rules
            .iter()
            .map(|r| RuleInfo {
                id: r.id.clone(),
                version: r.version.clone(),
                kind: kind_name(r).to_string(),
                file: r.file.clone(),
                confidence: r.confidence.clone(),
                source: r.source.clone(),
                description: r.description.clone(),
            })
            .collect()
    }

    /// The canonical form a rule's version is the hash of.
    pub fn canonical(&self, id: &str) -> Option<String> {
        self.get(id).map(Rule::canonical)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Rule> {
        self.rules
            .binary_search_by(|r| r.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.rules[i])
    }
}

pub(crate) fn kind_name(r: &Rule) -> &'static str {
    use crate::rule::Kind;
    match r.kind {
        Kind::Threshold { .. } => "threshold",
        Kind::Rate { .. } => "rate",
        Kind::SensorFault { .. } => "sensor_fault",
        Kind::MissingData { .. } => "missing_data",
        Kind::AgentOffline { .. } => "agent_offline",
        Kind::State { .. } => "state",
        Kind::Composite { .. } => "composite",
        Kind::Site { .. } => "site",
        Kind::Geofence(_) => "geofence",
        Kind::DrivingTime(_) => "driving_time",
    }
}
