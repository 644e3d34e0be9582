//! The gauges an operations team alerts on (dashboards/prometheus/alerts.yml): standing
//! incidents nobody acknowledged (how many, and how long the oldest has waited) and sites with
//! no agent online, counted by region prefix so a site is never a label.

use super::Core;
use crate::metrics::region_label;
use std::collections::BTreeMap;
use telemetry::{IncidentState, Severity, Timestamp};

/// Per severity: (unacknowledged standing incidents, seconds the oldest has been raised).
pub(super) fn unacknowledged<'a>(
    incidents: impl Iterator<Item = &'a telemetry::Incident>,
    now: Timestamp,
) -> BTreeMap<Severity, (i64, f64)> {
    let mut out: BTreeMap<Severity, (i64, f64)> =
        Severity::ALL.iter().map(|s| (*s, (0, 0.0))).collect();
    for i in incidents.filter(|i| i.state == IncidentState::Active) {
        let e = out.entry(i.severity).or_insert((0, 0.0));
        e.0 += 1;
        let age = (now - i.raised_at).num_milliseconds().max(0) as f64 / 1000.0;
        e.1 = e.1.max(age);
    }
    out
}

/// Per region label: (sites, sites with no agent online).
pub(super) fn sites_by_region(live: &super::live::Live) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for s in live.sites.values() {
        let e = out
            .entry(region_label(s.info.region.as_ref().map(|r| r.as_str())))
            .or_default();
        e.0 += 1;
        if !s.agents.values().any(|a| a.online) {
            e.1 += 1;
        }
    }
    out
}

/// The label values a gauge vector holds now (one label).
fn labels_of(v: &prometheus::IntGaugeVec) -> Vec<String> {
    use prometheus::core::Collector;
    v.collect()
        .iter()
        .flat_map(|f| f.get_metric().iter())
        .filter_map(|m| m.get_label().first().map(|l| l.value().to_string()))
        .collect()
}

impl Core {
    /// Set the operations gauges from the standing incidents and the live sites.
    pub(super) fn update_ops_gauges(&self) {
        let now = self.now();
        for (sev, (n, oldest)) in unacknowledged(self.open.values().map(|r| &r.incident), now) {
            self.metrics
                .incidents_unacknowledged
                .with_label_values(&[sev.as_str()])
                .set(n);
            self.metrics
                .incidents_unacknowledged_oldest
                .with_label_values(&[sev.as_str()])
                .set(oldest);
        }
        let regions = sites_by_region(&self.live.read().expect("live lock"));
        // A region whose last site went (never in practice: sites stay) leaves the gauges.
        for gone in labels_of(&self.metrics.sites)
            .into_iter()
            .filter(|r| !regions.contains_key(r))
        {
            let _ = self.metrics.sites.remove_label_values(&[&gone]);
            let _ = self.metrics.sites_offline.remove_label_values(&[&gone]);
        }
        for (region, (n, offline)) in regions {
            self.metrics.sites.with_label_values(&[&region]).set(n);
            self.metrics
                .sites_offline
                .with_label_values(&[&region])
                .set(offline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::live::{AgentLive, Live};
    use telemetry::{AgentId, RegionCode, SiteId};

    fn incident(sev: Severity, state: IncidentState, raised: Timestamp) -> telemetry::Incident {
        let mut i: telemetry::Incident = serde_json::from_value(serde_json::json!({
            "id": "i", "rule": "r", "rule_version": "1", "site": "s", "agent": null, "point": null,
            "severity": "critical", "state": "active", "value": null, "threshold": null,
            "raised_at": "2026-12-01T00:00:00Z", "acked_at": null, "acked_by": null,
            "cleared_at": null, "closed_at": null, "closed_by": null, "note": null,
            "late": false, "previous": null, "message": "", "warnings": []
        }))
        .unwrap();
        i.severity = sev;
        i.state = state;
        i.raised_at = raised;
        i
    }

    #[test]
    fn only_unacknowledged_count_and_the_oldest_gives_the_age() {
        let now = telemetry::parse_time("2026-12-01T10:00:00Z").unwrap();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let list = [
            incident(Severity::Critical, IncidentState::Active, ago(30)),
            incident(Severity::Critical, IncidentState::Active, ago(400)),
            incident(Severity::Critical, IncidentState::Acknowledged, ago(9000)),
            incident(Severity::Warning, IncidentState::Acknowledged, ago(50)),
        ];
        let u = unacknowledged(list.iter(), now);
        assert_eq!(u[&Severity::Critical], (2, 400.0));
        assert_eq!(u[&Severity::Warning], (0, 0.0));
        assert_eq!(
            u.len(),
            Severity::ALL.len(),
            "every severity has its series"
        );
    }

    #[test]
    fn sites_are_counted_by_city_prefix_offline_when_no_agent_is_online() {
        let mut live = Live::default();
        let mut add = |id: &str, region: Option<&str>, online: &[bool]| {
            let s = live.site_mut(&SiteId::new(id).unwrap());
            s.info.region = region.map(|r| RegionCode::new(r).unwrap());
            for (n, on) in online.iter().enumerate() {
                s.agents.insert(
                    AgentId::new(format!("a{n}")).unwrap(),
                    AgentLive {
                        online: *on,
                        ..Default::default()
                    },
                );
            }
        };
        add("mine-01", Some("410522"), &[true, false]);
        add("mine-02", Some("410523"), &[false]);
        add("plant-01", Some("410102"), &[]);
        add("truck-co", None, &[true]);
        let r = sites_by_region(&live);
        assert_eq!(r["4105"], (2, 1));
        assert_eq!(
            r["4101"],
            (1, 1),
            "a site no agent has spoken for is offline"
        );
        assert_eq!(r["unknown"], (1, 0));
        assert_eq!(r.len(), 3);
    }
}
