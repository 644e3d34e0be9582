//! Escalation: an incident that stays unacknowledged (state `active`) past a tier's `after_ms`
//! (from `raised_at`, on the injected gateway clock) is notified to that tier: a `notified`
//! event with `tier`, written through the core like an operator's action, so it is in the
//! incident's history and goes out through the log to the tier's subscribers (and upstream).
//! Acknowledgement stops it: an acknowledged incident is no longer `active`, and the core
//! refuses to notify one that was acknowledged meanwhile, unless it is overdue (督办): an
//! overdue incident goes on through the tiers until it is closed. A shelved incident waits
//! until its shelving ends.

use super::{EscalationPolicy, EscalationTier, Shared};
use crate::core::Action;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use telemetry::{EventKind, Incident, SiteInfo, Timestamp};

use tokio_util::sync::CancellationToken;

/// The tiers of `policies` that are due for `i` at `now`, earliest first. Pure.
pub fn due_tiers<'a>(
    policies: &'a [EscalationPolicy],
    i: &Incident,
    site: Option<&SiteInfo>,
    now: Timestamp,
) -> Vec<&'a EscalationTier> {
    let escalating = if i.overdue {
        i.state != telemetry::IncidentState::Closed
    } else {
        i.acked_at.is_none() && i.state.is_standing()
    };
    if !escalating || i.shelved_until.is_some_and(|u| u > now) {
        return Vec::new();
    }
    let mut due: Vec<&EscalationTier> = policies
        .iter()
        .filter(|p| p.filter.matches_incident(i, site))
        .flat_map(|p| p.tiers.iter())
        .filter(|t| now >= i.raised_at + chrono::Duration::milliseconds(t.after_ms as i64))
        .collect();
    due.sort_by_key(|t| t.after_ms);
    due
}

pub async fn run(shared: Shared, shutdown: CancellationToken) {
    let store = shared.store.clone();
    let policies = shared.config.escalation.clone();
    // Tiers already notified, per incident (loaded from its history when first seen).
    let mut notified: HashMap<String, HashSet<String>> = HashMap::new();
    let mut ticker =
        tokio::time::interval(Duration::from_millis(shared.config.escalation_check_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = shared.clock.now();
        // Not closed: active ones, and overdue ones that escalate until closed (due_tiers
        // says which).
        let open = crate::store::IncidentFilter {
            state: Some("open".into()),
            ascending: true,
            limit: 10_000,
            ..Default::default()
        };
        let active = match store.incidents(&open).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "escalation: reading open incidents");
                continue;
            }
        };
        let ids: HashSet<&str> = active.iter().map(|i| i.id.as_str()).collect();
        notified.retain(|id, _| ids.contains(id.as_str()));
        for i in &active {
            let info = shared
                .live
                .read()
                .expect("live lock")
                .sites
                .get(i.site.as_str())
                .map(|s| s.info.clone());
            let due = due_tiers(&policies, i, info.as_ref(), now);
            if due.is_empty() {
                continue;
            }
            if !notified.contains_key(&i.id) {
                match shared.store.history(&i.id).await {
                    Ok(h) => {
                        let tiers = h
                            .into_iter()
                            .filter(|e| e.event == EventKind::Notified)
                            .filter_map(|e| e.tier)
                            .collect();
                        notified.insert(i.id.clone(), tiers);
                    }
                    Err(e) => {
                        tracing::warn!(incident = %i.id, error = %e, "escalation: reading history");
                        continue;
                    }
                }
            }
            let done = notified.get_mut(&i.id).expect("inserted above");
            for tier in due {
                if done.contains(&tier.name) {
                    continue;
                }
                let answer = shared
                    .core
                    .act(
                        i.id.clone(),
                        Action::Notified {
                            tier: tier.name.clone(),
                        },
                    )
                    .await;
                match answer {
                    Err(crate::core::handle::AskError::Stopping) => return,
                    Ok(Ok((_, ev))) => {
                        if ev.is_some() {
                            tracing::info!(incident = %i.id, tier = %tier.name, "escalated to tier");
                        }
                        done.insert(tier.name.clone());
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(incident = %i.id, tier = %tier.name, error = %e, "escalation refused");
                        done.insert(tier.name.clone());
                    }
                    Err(_) => {
                        tracing::warn!(incident = %i.id, tier = %tier.name, "escalation: no answer from the core; trying again");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::filter::{tests::event, Filter};
    use telemetry::Severity;

    fn policy() -> Vec<EscalationPolicy> {
        vec![EscalationPolicy {
            name: "p".into(),
            filter: Filter {
                min_severity: Some(Severity::Alarm),
                ..Default::default()
            },
            tiers: vec![
                EscalationTier {
                    name: "director".into(),
                    after_ms: 600_000,
                    subscribers: vec!["d".into()],
                },
                EscalationTier {
                    name: "leader".into(),
                    after_ms: 60_000,
                    subscribers: vec!["l".into()],
                },
            ],
        }]
    }

    #[test]
    fn tiers_fall_due_in_order_until_acknowledged() {
        let p = policy();
        let i = event("mine-01", "r", Severity::Alarm, EventKind::Raised).incident;
        let t0 = i.raised_at;
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert!(due_tiers(&p, &i, None, at(59)).is_empty());
        let names =
            |v: Vec<&EscalationTier>| v.into_iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(due_tiers(&p, &i, None, at(60))), ["leader"]);
        assert_eq!(
            names(due_tiers(&p, &i, None, at(600))),
            ["leader", "director"]
        );
        let mut acked = i.clone();
        acked.acked_at = Some(at(30));
        acked.state = telemetry::IncidentState::Acknowledged;
        assert!(
            due_tiers(&p, &acked, None, at(600)).is_empty(),
            "acknowledgement stops escalation"
        );
        let mut overdue = acked.clone();
        overdue.overdue = true;
        overdue.overdue_for = Some(telemetry::OverdueFor::Close);
        assert_eq!(
            names(due_tiers(&p, &overdue, None, at(600))),
            ["leader", "director"],
            "an overdue incident escalates although acknowledged"
        );
        overdue.state = telemetry::IncidentState::Cleared;
        assert_eq!(
            due_tiers(&p, &overdue, None, at(600)).len(),
            2,
            "until closed"
        );
        overdue.state = telemetry::IncidentState::Closed;
        assert!(due_tiers(&p, &overdue, None, at(600)).is_empty());
        let mut shelved = i.clone();
        shelved.shelved_until = Some(at(700));
        assert!(
            due_tiers(&p, &shelved, None, at(600)).is_empty(),
            "shelved: waits"
        );
        assert_eq!(due_tiers(&p, &shelved, None, at(700)).len(), 2);
        let low = event("mine-01", "r", Severity::Warning, EventKind::Raised).incident;
        assert!(
            due_tiers(&p, &low, None, at(600)).is_empty(),
            "the policy's filter applies"
        );
    }
}
