//! Accumulated state that outlives the process: driving time (continuous, with its rest, and
//! the driving within a sliding window) and the dwell inside a geofence. Hours of driving are
//! not to start from nothing when the gateway restarts.
//!
//! The gateway takes what changed ([`Engine::take_accumulated`]) before it acknowledges the
//! readings that changed it, saves it, and after a restart gives it back
//! ([`Engine::restore_accumulated`]) before the births bind the rules. Only changes that a
//! restart could not work out are handed out: a vehicle that goes on moving only lengthens
//! its last span, and the first reading after a restart lengthens it from the saved time just
//! as it would have.

use super::motion::DriveSt;
use super::state::Extra;
use super::time::NONE;
use super::Engine;
use crate::api::{Cause, Subject};
use crate::rule::{Kind, Rule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use telemetry::{PointId, SiteId};

/// The state of one rule on one point, to be saved (times in ms since the epoch, event time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccumulatedState {
    Driving {
        /// Since when the vehicle has driven without a rest.
        cont_start_ms: Option<i64>,
        /// Since when it has stood still.
        stopped_since_ms: Option<i64>,
        /// Event time of the last judgement.
        last_ms: Option<i64>,
        moving: bool,
        /// Driving spans (start, end) within the window, oldest first.
        spans_ms: Vec<(i64, i64)>,
    },
    Dwell {
        /// Since when the position has been inside the area.
        inside_since_ms: Option<i64>,
    },
}

/// One rule's accumulated state on one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Accumulated {
    pub rule: String,
    pub site: SiteId,
    pub point: PointId,
    pub state: AccumulatedState,
}

fn opt(t: i64) -> Option<i64> {
    (t != NONE).then_some(t)
}

fn unopt(t: Option<i64>) -> i64 {
    t.unwrap_or(NONE)
}

/// Whether bindings of `rule` accumulate state worth saving.
pub(super) fn accumulates(rule: &Rule) -> bool {
    match &rule.kind {
        Kind::DrivingTime(_) => true,
        Kind::Geofence(g) => g.dwell_ms.is_some(),
        _ => false,
    }
}

fn state_of(extra: &Extra) -> Option<AccumulatedState> {
    match extra {
        Extra::Driving(st) => Some(AccumulatedState::Driving {
            cont_start_ms: opt(st.cont_start),
            stopped_since_ms: opt(st.stopped_since),
            last_ms: opt(st.last_t),
            moving: st.moving,
            spans_ms: st.spans.iter().copied().collect(),
        }),
        Extra::Fence { since } => Some(AccumulatedState::Dwell {
            inside_since_ms: opt(*since),
        }),
        _ => None,
    }
}

/// The extra state of a new binding of `rule` from a saved state, when they fit together.
fn extra_of(rule: &Rule, state: &AccumulatedState) -> Option<Extra> {
    match (&rule.kind, state) {
        (
            Kind::DrivingTime(_),
            AccumulatedState::Driving {
                cont_start_ms,
                stopped_since_ms,
                last_ms,
                moving,
                spans_ms,
            },
        ) => {
            let mut st = DriveSt::new();
            st.cont_start = unopt(*cont_start_ms);
            st.stopped_since = unopt(*stopped_since_ms);
            st.last_t = unopt(*last_ms);
            st.moving = *moving;
            st.spans = spans_ms.iter().copied().collect();
            Some(Extra::Driving(Box::new(st)))
        }
        (Kind::Geofence(g), AccumulatedState::Dwell { inside_since_ms })
            if g.dwell_ms.is_some() =>
        {
            Some(Extra::Fence {
                since: unopt(*inside_since_ms),
            })
        }
        _ => None,
    }
}

impl Engine {
    /// The accumulated states that changed since the last call, in the order they changed
    /// (each binding once, with its latest state).
    pub fn take_accumulated(&mut self) -> Vec<Accumulated> {
        if self.acc_dirty.is_empty() {
            return Vec::new();
        }
        let mut dirty = std::mem::take(&mut self.acc_dirty);
        let mut seen = std::collections::BTreeSet::new();
        dirty.retain(|bi| seen.insert(*bi));
        let mut out = Vec::with_capacity(dirty.len());
        for bi in dirty {
            let b = &self.bindings[bi as usize];
            if !b.live {
                continue;
            }
            let Some(state) = state_of(&b.extra) else {
                continue;
            };
            let p = &self.points[b.point as usize];
            out.push(Accumulated {
                rule: self.rules.rules[b.rule as usize].id.clone(),
                site: self.sites[p.site as usize].id.clone(),
                point: p.id.clone(),
                state,
            });
        }
        out
    }

    /// After a restart: a saved state, taken up when its rule binds its point (a state that
    /// no longer fits its rule, one changed in kind, is dropped then).
    pub fn restore_accumulated(&mut self, a: Accumulated) {
        let cause = Cause {
            rule: a.rule,
            site: a.site,
            subject: Subject::Point { point: a.point },
        };
        self.restored_acc.insert(cause, a.state);
    }
}

/// The saved state of a binding being made for `cause` of `rule`, if one was given back.
pub(super) fn restored_extra(
    restored: &mut BTreeMap<Cause, AccumulatedState>,
    cause: &Cause,
    rule: &Rule,
) -> Option<Extra> {
    let state = restored.remove(cause)?;
    extra_of(rule, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driving_state_survives_its_round_trip_through_json() {
        let s = AccumulatedState::Driving {
            cont_start_ms: Some(1_000),
            stopped_since_ms: None,
            last_ms: Some(61_000),
            moving: true,
            spans_ms: vec![(1_000, 61_000)],
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"driving","cont_start_ms":1000,"stopped_since_ms":null,"last_ms":61000,"moving":true,"spans_ms":[[1000,61000]]}"#
        );
        assert_eq!(serde_json::from_str::<AccumulatedState>(&text).unwrap(), s);
    }
}
