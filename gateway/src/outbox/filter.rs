//! Which incidents and events a subscriber (or an escalation policy) wants. Pure.

use serde::{Deserialize, Serialize};
use telemetry::{EventKind, Incident, IncidentEvent, Severity, SiteInfo};

/// Every condition that is set must hold; an empty filter takes every incident.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// A region prefix (`41`, `4105`) or a six-digit code whose significant prefix is used
    /// (`410500` covers `4105..`); matched against the site's region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// One site id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// A site category (`coal_mine`, `hazchem`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// At least this severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// A rule id, or a prefix of rule ids at a dot (`coal.ch4` takes `coal.ch4.working_face`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Which events (default `raised` and `escalated`). `notified` events go to the members of
    /// their tier whatever this says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventKind>>,
}

pub const DEFAULT_EVENTS: [EventKind; 2] = [EventKind::Raised, EventKind::Escalated];

impl Filter {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = &self.region {
            if r.is_empty() || r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "filter.region {r:?} must be a prefix of a six-digit region code"
                ));
            }
        }
        if let Some(s) = &self.site {
            telemetry::SiteId::new(s.clone()).map_err(|e| format!("filter.site: {e}"))?;
        }
        if let Some(r) = &self.rule {
            if r.trim().is_empty() {
                return Err("filter.rule must not be empty".into());
            }
        }
        if let Some(e) = &self.events {
            if e.is_empty() {
                return Err(
                    "filter.events must name at least one event (leave it out for the default)"
                        .into(),
                );
            }
        }
        Ok(())
    }

    fn region_prefix(&self) -> Option<&str> {
        let r = self.region.as_deref()?;
        if r.len() == 6 {
            if let Ok(code) = telemetry::RegionCode::new(r) {
                let p = code.prefix().len();
                return Some(&r[..p]);
            }
        }
        Some(r)
    }

    /// Whether the incident (as it is in an event) is one this filter takes, whatever the event.
    pub fn matches_incident(&self, i: &Incident, site: Option<&SiteInfo>) -> bool {
        if let Some(s) = &self.site {
            if i.site.as_str() != s {
                return false;
            }
        }
        if let Some(min) = self.min_severity {
            if i.severity < min {
                return false;
            }
        }
        if let Some(r) = &self.rule {
            let r = r.trim_end_matches(['.', '*']);
            if !(i.rule == r
                || (i.rule.starts_with(r) && i.rule.as_bytes().get(r.len()) == Some(&b'.')))
            {
                return false;
            }
        }
        if let Some(prefix) = self.region_prefix() {
            match site.and_then(|s| s.region.as_ref()) {
                Some(region) if region.as_str().starts_with(prefix) => {}
                _ => return false,
            }
        }
        if let Some(c) = &self.category {
            match site.and_then(|s| s.category.as_ref()) {
                Some(cat) if cat.as_str() == c => {}
                _ => return false,
            }
        }
        true
    }

    /// Whether a subscriber with this filter gets the event. `notified` events are routed by
    /// tier, not here (see [`wants`]).
    pub fn matches_event(&self, ev: &IncidentEvent, site: Option<&SiteInfo>) -> bool {
        let kinds: &[EventKind] = self.events.as_deref().unwrap_or(&DEFAULT_EVENTS);
        kinds.contains(&ev.event) && self.matches_incident(&ev.incident, site)
    }
}

/// Whether a subscriber with `filter` gets `ev`: a `notified` event goes to the members of its
/// tier (`in_tier` says whether the subscriber is one), every other event by the filter.
pub fn wants(
    filter: &Filter,
    ev: &IncidentEvent,
    site: Option<&SiteInfo>,
    in_tier: impl Fn(&str) -> bool,
) -> bool {
    if ev.event == EventKind::Notified {
        return ev.tier.as_deref().is_some_and(in_tier);
    }
    filter.matches_event(ev, site)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use telemetry::{Category, IncidentState, RegionCode, SiteId};

    pub fn event(site: &str, rule: &str, severity: Severity, kind: EventKind) -> IncidentEvent {
        let at = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        IncidentEvent {
            event: kind,
            event_id: format!("I-{site}-{rule}-1"),
            event_seq: 1,
            at,
            by: None,
            tier: None,
            incident: Incident {
                id: format!("I-{site}-{rule}"),
                rule: rule.into(),
                rule_version: "v".into(),
                site: SiteId::new(site).unwrap(),
                agent: None,
                point: None,
                zone: None,
                severity,
                state: IncidentState::Active,
                value: None,
                threshold: None,
                raised_at: at,
                acked_at: None,
                acked_by: None,
                cleared_at: None,
                closed_at: None,
                closed_by: None,
                note: None,
                late: false,
                previous: None,
                message: "m".into(),
                warnings: vec![],
                shelved_until: None,
                assigned_to: None,
                quality: None,
                overdue: false,
                overdue_for: None,
            },
        }
    }

    fn mine() -> SiteInfo {
        SiteInfo {
            name: None,
            category: Some(Category::parse("coal_mine")),
            region: Some(RegionCode::new("410522").unwrap()),
            lat: None,
            lon: None,
            emission_reduction_list: false,
        }
    }

    #[test]
    fn empty_filter_takes_raised_and_escalated() {
        let f = Filter::default();
        assert!(f.matches_event(&event("m", "r", Severity::Info, EventKind::Raised), None));
        assert!(f.matches_event(&event("m", "r", Severity::Info, EventKind::Escalated), None));
        assert!(!f.matches_event(
            &event("m", "r", Severity::Info, EventKind::Acknowledged),
            None
        ));
        let all = Filter {
            events: Some(vec![EventKind::Cleared]),
            ..Default::default()
        };
        assert!(all.matches_event(&event("m", "r", Severity::Info, EventKind::Cleared), None));
        assert!(!all.matches_event(&event("m", "r", Severity::Info, EventKind::Raised), None));
    }

    #[test]
    fn region_prefix_and_code() {
        let s = mine();
        for (region, expect) in [
            ("41", true),
            ("4105", true),
            ("410500", true),
            ("410522", true),
            ("410000", true),
            ("4106", false),
            ("410600", false),
            ("42", false),
        ] {
            let f = Filter {
                region: Some(region.into()),
                ..Default::default()
            };
            assert_eq!(
                f.matches_incident(
                    &event("m", "r", Severity::Alarm, EventKind::Raised).incident,
                    Some(&s)
                ),
                expect,
                "{region}"
            );
        }
        // A site whose region is unknown matches no region filter.
        let f = Filter {
            region: Some("41".into()),
            ..Default::default()
        };
        assert!(!f.matches_incident(
            &event("m", "r", Severity::Alarm, EventKind::Raised).incident,
            None
        ));
    }

    #[test]
    fn severity_site_category_rule() {
        let s = mine();
        let i = event(
            "mine-01",
            "coal.ch4.working_face",
            Severity::Alarm,
            EventKind::Raised,
        )
        .incident;
        let f = |f: Filter| f.matches_incident(&i, Some(&s));
        assert!(f(Filter {
            min_severity: Some(Severity::Warning),
            ..Default::default()
        }));
        assert!(f(Filter {
            min_severity: Some(Severity::Alarm),
            ..Default::default()
        }));
        assert!(!f(Filter {
            min_severity: Some(Severity::Critical),
            ..Default::default()
        }));
        assert!(f(Filter {
            site: Some("mine-01".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            site: Some("mine-02".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            category: Some("coal_mine".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            category: Some("hazchem".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            rule: Some("coal.ch4.working_face".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            rule: Some("coal.ch4".into()),
            ..Default::default()
        }));
        assert!(f(Filter {
            rule: Some("coal.*".into()),
            ..Default::default()
        }));
        assert!(
            !f(Filter {
                rule: Some("coal.ch".into()),
                ..Default::default()
            }),
            "a prefix only at a dot"
        );
        assert!(!f(Filter {
            rule: Some("chem".into()),
            ..Default::default()
        }));
    }

    #[test]
    fn notified_goes_by_tier() {
        let mut ev = event("m", "r", Severity::Alarm, EventKind::Notified);
        ev.tier = Some("leader".into());
        let strict = Filter {
            min_severity: Some(Severity::Critical),
            ..Default::default()
        };
        assert!(wants(&strict, &ev, None, |t| t == "leader"));
        assert!(!wants(&Filter::default(), &ev, None, |_| false));
    }

    #[test]
    fn validation() {
        assert!(Filter {
            region: Some("41a".into()),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Filter {
            region: Some("4105221".into()),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Filter {
            site: Some("Bad".into()),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Filter {
            events: Some(vec![]),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Filter {
            region: Some("4105".into()),
            ..Default::default()
        }
        .validate()
        .is_ok());
    }
}
