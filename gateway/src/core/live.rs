//! What the gateway knows now about sites, agents and points: shared read-mostly with the HTTP
//! API; written only by the core.

use serde::Serialize;
use std::collections::BTreeMap;
use telemetry::{
    AgentId, Catalogue, PointId, PointSpec, Quality, SiteId, SiteInfo, Timestamp, Value,
};

/// A point taken out of service for maintenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutOfService {
    pub site: SiteId,
    pub point: PointId,
    pub by: String,
    pub reason: String,
    #[serde(with = "telemetry::time::serde_ts")]
    pub since: Timestamp,
    #[serde(with = "telemetry::time::serde_ts")]
    pub until: Timestamp,
}

#[derive(Debug, Default)]
pub struct Live {
    /// Points out of service, by (site, point).
    pub out_of_service: BTreeMap<(SiteId, PointId), OutOfService>,
    pub sites: BTreeMap<SiteId, SiteLive>,
    /// Active weather and earthquake warnings, as listed (with the sites they touch).
    pub warnings: Vec<serde_json::Value>,
}

#[derive(Debug, Default)]
pub struct SiteLive {
    /// From the registry, else from the newest birth.
    pub info: SiteInfo,
    pub from_registry: bool,
    pub agents: BTreeMap<AgentId, AgentLive>,
    pub points: BTreeMap<PointId, PointLive>,
    /// The recent trend of each point (`core/trend.rs`).
    pub trends: crate::core::trend::Trends,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct AgentLive {
    pub online: bool,
    #[serde(with = "telemetry::time::serde_ts::option")]
    pub last_seen: Option<Timestamp>,
    /// Gateway clock minus the newest reading time of the last batch, in ms (positive: the
    /// agent's data lags, or its clock is behind).
    pub skew_ms: Option<i64>,
    pub completeness: f64,
    pub epoch: String,
    pub max_seq: u64,
    pub gaps: u64,
    pub duplicates: u64,
    #[serde(skip)]
    pub arrivals: crate::core::seq::HourlyArrivals,
}

#[derive(Debug, Clone)]
pub struct PointLive {
    pub agent: AgentId,
    pub spec: Option<PointSpec>,
    pub value: Option<Value>,
    pub ts: Option<Timestamp>,
    pub quality: Option<Quality>,
    pub reason: Option<String>,
}

impl SiteLive {
    /// Where the site is, as warnings are matched against it.
    pub fn location(&self) -> weather::SiteLocation {
        weather::SiteLocation {
            region: self.info.region.clone(),
            lat: self.info.lat,
            lon: self.info.lon,
        }
    }
}

impl Live {
    pub fn site_mut(&mut self, site: &SiteId) -> &mut SiteLive {
        self.sites.entry(site.clone()).or_default()
    }

    /// A birth: bind the catalogue's points (points not in it stay with what they had).
    pub fn apply_catalogue(&mut self, site: &SiteId, catalogue: &Catalogue) {
        let s = self.site_mut(site);
        if !s.from_registry {
            if let Some(info) = &catalogue.site {
                s.info = info.clone();
            }
        }
        for p in &catalogue.points {
            let entry = s
                .points
                .entry(p.point.clone())
                .or_insert_with(|| PointLive {
                    agent: catalogue.agent.clone(),
                    spec: None,
                    value: None,
                    ts: None,
                    quality: None,
                    reason: None,
                });
            entry.agent = catalogue.agent.clone();
            entry.spec = Some(p.clone());
        }
        s.agents.entry(catalogue.agent.clone()).or_default();
    }
}
