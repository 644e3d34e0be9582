//! The engine's state: the records of points, zones, sites, agents and bindings (a rule on a
//! point), what each kind of cause keeps besides its machine, and the timer queue's entries.

use super::index::{InlineKey, Keyed, PointIndex};
use super::machine::Machine;
use super::motion::DriveSt;
use super::time::NONE;
use crate::api::{ActiveWarning, SiteContext, Subject};
use crate::rule::{Kind, Rule};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use telemetry::{AgentId, Category, PointId, PointSpec, Quality, SiteId, Timestamp, Value};

#[derive(Debug, Clone)]
pub(super) enum Extra {
    None,
    /// Rate of change: (event time ms, value) within the window.
    Rate(VecDeque<(i64, f64)>),
    /// Sensor fault: since when the value has not moved, and from what.
    Fault {
        stuck_since: i64,
        stuck_value: f64,
        why: FaultWhy,
    },
    /// Boolean state: since when the state has been active (NONE: it is not), when it
    /// became active lately (for `repeats`), and whether that was too often.
    Active {
        since: i64,
        starts: VecDeque<i64>,
        often: bool,
    },
    /// Geofence: since when the position has been inside the area (NONE: it is not).
    Fence {
        since: i64,
    },
    /// Driving time.
    Driving(Box<DriveSt>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum FaultWhy {
    None,
    BadQuality,
    OutOfRange,
    Stuck,
}

#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub(super) rule: u32,
    pub(super) point: u32,
    pub(super) m: Machine,
    pub(super) extra: Extra,
    /// The deadline this binding is queued at (NONE: not queued).
    pub(super) queued: i64,
    /// Event time of its latest judgement (NONE before the first): where a time-of-day
    /// window's next edge is looked for.
    pub(super) judged_at: i64,
    pub(super) live: bool,
    /// Its accumulated state (driving time, dwell) changed since the engine last handed it
    /// out (see `accumulate`).
    pub(super) acc_changed: bool,
}

#[derive(Debug, Clone)]
pub(super) struct PointSt {
    pub(super) site: u32,
    /// The id inline (when short), so a look-up is verified without a trip to the heap.
    pub(super) key: InlineKey,
    pub(super) id: PointId,
    pub(super) agent: Option<AgentId>,
    pub(super) spec: Option<Box<PointSpec>>,
    /// Event time of the last reading judged (ms), NONE before the first.
    pub(super) last_ts: i64,
    pub(super) last_at: Timestamp,
    pub(super) value: Value,
    pub(super) quality: Quality,
    /// Gateway clock (ms) of the last reading taken (or of the birth).
    pub(super) seen_at: i64,
    /// How far the last reading's event time lay behind the gateway clock when it was taken
    /// (ms, at least 0): event-time deadlines fire on the clock that much later.
    pub(super) lag: i64,
    /// Some binding or zone of the point has an event-time deadline (delays, durations,
    /// power-off allowance): readings must fire them first.
    pub(super) timers: bool,
    pub(super) bindings: Vec<u32>,
    pub(super) zones: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(super) struct ZoneSt {
    pub(super) rule: u32,
    pub(super) site: u32,
    pub(super) zone: String,
    pub(super) members: Vec<Vec<u32>>,
    pub(super) m: Machine,
    /// a_then_not_b: since when A has held.
    pub(super) a_since: i64,
    /// The point that completed the condition.
    pub(super) trigger: Option<u32>,
    pub(super) queued: i64,
    pub(super) live: bool,
}

#[derive(Debug, Clone)]
pub(super) struct AgentCause {
    pub(super) rule: u32,
    pub(super) site: u32,
    pub(super) agent: AgentId,
    pub(super) m: Machine,
    pub(super) queued: i64,
    pub(super) live: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct AgentLink {
    pub(super) online: bool,
    pub(super) last_status: i64,
    pub(super) causes: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(super) struct SiteSt {
    pub(super) id: SiteId,
    pub(super) ctx: SiteContext,
    pub(super) birth_category: Option<Category>,
    pub(super) warnings: Vec<ActiveWarning>,
    pub(super) points: PointIndex,
    /// Points in the order they became known (for deterministic walks).
    pub(super) order: Vec<u32>,
    /// Which points each agent's last birth named.
    pub(super) catalogues: BTreeMap<AgentId, Vec<PointId>>,
    pub(super) agents: BTreeMap<AgentId, AgentLink>,
    pub(super) zones: Vec<u32>,
}

impl SiteSt {
    pub(super) fn category(&self) -> Option<&Category> {
        self.ctx.category.as_ref().or(self.birth_category.as_ref())
    }
}

impl Keyed for PointSt {
    #[inline]
    fn inline_key(&self) -> &InlineKey {
        &self.key
    }
    #[inline]
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
}

/// The state of one cause, whatever its subject: a binding (a point), a zone or an agent.
pub(super) trait CauseSt {
    fn is_live(&self) -> bool;
    /// The index of its rule.
    fn rule_idx(&self) -> u32;
    fn machine(&self) -> &Machine;
    /// It is dropped: no longer live.
    fn retire(&mut self);
    /// The index of its site and its subject (`points`: the engine's points).
    fn site_subject(&self, points: &[PointSt]) -> (u32, Subject);
    /// The point it judges, when its subject is a point.
    fn point<'p>(&self, _points: &'p [PointSt]) -> Option<&'p PointSt> {
        None
    }
    /// The agent its transitions name when nothing else does: its point's.
    fn agent(&self, points: &[PointSt]) -> Option<AgentId> {
        self.point(points).and_then(|p| p.agent.clone())
    }
}

/// The part of [`CauseSt`] every cause record has alike: its `live`, `rule` and `m` fields.
macro_rules! cause_record {
    () => {
        fn is_live(&self) -> bool {
            self.live
        }
        fn rule_idx(&self) -> u32 {
            self.rule
        }
        fn machine(&self) -> &Machine {
            &self.m
        }
        fn retire(&mut self) {
            self.live = false;
        }
    };
}

impl CauseSt for Binding {
    cause_record!();
    fn site_subject(&self, points: &[PointSt]) -> (u32, Subject) {
        let p = &points[self.point as usize];
        (
            p.site,
            Subject::Point {
                point: p.id.clone(),
            },
        )
    }
    fn point<'p>(&self, points: &'p [PointSt]) -> Option<&'p PointSt> {
        Some(&points[self.point as usize])
    }
}

impl CauseSt for ZoneSt {
    cause_record!();
    fn site_subject(&self, _points: &[PointSt]) -> (u32, Subject) {
        (
            self.site,
            Subject::Zone {
                zone: self.zone.clone(),
            },
        )
    }
}

impl CauseSt for AgentCause {
    cause_record!();
    fn site_subject(&self, _points: &[PointSt]) -> (u32, Subject) {
        (
            self.site,
            Subject::Agent {
                agent: self.agent.clone(),
            },
        )
    }
    fn agent(&self, _points: &[PointSt]) -> Option<AgentId> {
        Some(self.agent.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Binding(u32),
    Zone(u32),
    Agent(u32),
}

/// Queue `timer` at `deadline`, unless it is queued at that time or earlier already.
pub(super) fn schedule(
    queue: &mut BTreeSet<(i64, Timer)>,
    queued: &mut i64,
    deadline: i64,
    timer: Timer,
) {
    if deadline != NONE && (*queued == NONE || deadline < *queued) {
        if *queued != NONE {
            queue.remove(&(*queued, timer));
        }
        queue.insert((deadline, timer));
        *queued = deadline;
    }
}

/// The extra state a new binding of `rule` starts with.
pub(super) fn extra_for(rule: &Rule) -> Extra {
    match rule.kind {
        Kind::Rate { .. } => Extra::Rate(VecDeque::new()),
        Kind::SensorFault { .. } => Extra::Fault {
            stuck_since: NONE,
            stuck_value: f64::NAN,
            why: FaultWhy::None,
        },
        Kind::State { .. } => Extra::Active {
            since: NONE,
            starts: VecDeque::new(),
            often: false,
        },
        Kind::Geofence(_) => Extra::Fence { since: NONE },
        Kind::DrivingTime(_) => Extra::Driving(Box::new(DriveSt::new())),
        _ => Extra::None,
    }
}
