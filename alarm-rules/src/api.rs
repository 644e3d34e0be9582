//! The engine's public surface, as the gateway and `replay` use it.
//!
//! (Skeleton agreed between the gateway and the rule engine; bodies are filled in by the
//! engine's modules.)

use crate::message::Message;
use serde::Serialize;
use telemetry::{
    AgentId, AgentState, Catalogue, Category, PointId, Quality, Reading, RegionCode, Severity,
    SiteId, SiteInfo, Timestamp, Value,
};

/// What a cause is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    /// Most rules: one point.
    Point { point: PointId },
    /// Communication loss of an agent.
    Agent { agent: AgentId },
    /// Composite rules over a `zone` tag.
    Zone { zone: String },
}

/// One cause: a rule at a site for one subject. At most one open incident per cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Cause {
    pub rule: String,
    pub site: SiteId,
    pub subject: Subject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Raised,
    Escalated,
    Deescalated,
    Cleared,
}

/// A change of a cause's condition, with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub cause: Cause,
    pub kind: TransitionKind,
    /// The severity after the transition (for `cleared`: the severity it had).
    pub severity: Severity,
    /// The agent of the reading (or the agent the cause is about).
    pub agent: Option<AgentId>,
    /// The point that caused it (for zone causes: the point that completed the condition).
    pub point: Option<PointId>,
    /// The value of the reading that caused it (for site rules: the strongest earthquake's
    /// magnitude).
    pub value: Option<Value>,
    /// The level crossed; `None` where no level caused it.
    pub threshold: Option<f64>,
    /// Event time: the reading's time, or the clock's for timers.
    pub at: Timestamp,
    pub rule_version: String,
    /// What it says, as data; the gateway renders it for people.
    pub message: Message,
    /// Ids of the weather warnings that shaped it.
    pub warnings: Vec<String>,
    /// The quality of the reading that caused it.
    pub quality: Quality,
    /// The reading arrived late (its time lies well behind the clock).
    pub late: bool,
}

/// Where a site is and what it is: what rules select on and warnings match against.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SiteContext {
    pub category: Option<Category>,
    pub region: Option<RegionCode>,
    /// On the city's emergency emission-reduction list (heavy-pollution weather).
    pub emission_reduction_list: bool,
}

impl From<&SiteInfo> for SiteContext {
    fn from(info: &SiteInfo) -> Self {
        SiteContext {
            category: info.category.clone(),
            region: info.region.clone(),
            emission_reduction_list: info.emission_reduction_list,
        }
    }
}

/// An active weather or earthquake warning, as rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveWarning {
    pub id: String,
    /// e.g. `rainstorm`, `lightning`, `high_temperature`, `earthquake`.
    pub kind: String,
    /// `blue` < `yellow` < `orange` < `red`.
    pub level: WarningLevel,
    /// For earthquakes.
    pub magnitude: Option<f64>,
}

pub use telemetry::WarningLevel;

pub use telemetry::AgentState as AgentLinkState;
#[allow(unused)]
fn _uses(_: AgentState, _: &Catalogue, _: &Reading) {}
