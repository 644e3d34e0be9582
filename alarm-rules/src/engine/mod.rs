//! The engine: binds rules to points, keeps one state machine per cause and turns readings,
//! agent status, warnings and the clock into transitions.
//!
//! Hot path (`on_reading`): two keyed-hash look-ups (site, then point by `&str`) give a dense
//! point index; the point holds the indices of its bindings (rule + state); each binding is
//! judged in place. Nothing is allocated unless a transition is emitted (or the point or
//! site is new).
//!
//! The parts, lower ones first: `time` (event time in ms), `index` (point look-up),
//! `machine` (the per-cause state machine), `state` (what the engine keeps), `select` (which
//! rules apply where), `text` (message text), `judge` (judgement on the latest values), `motion` (geofences and driving time),
//! `restore` (open causes after a restart), `accumulate` (driving time and dwell kept across
//! restarts), `bind` (rules onto points, zones and agents),
//! `events` (readings, agent status, warnings, the clock), `levels` (what the points are judged
//! against now, for a person to read).

mod accumulate;
mod bind;
mod events;
mod index;
mod judge;
mod levels;
mod machine;
mod motion;
mod restore;
mod select;
mod state;
mod text;
mod time;

use crate::api::{Cause, SiteContext, Transition};
use crate::ruleset::RuleSet;
pub use accumulate::{Accumulated, AccumulatedState};
use chrono::Duration;
use foldhash::fast::FixedState;
use index::{InlineKey, KeyedMap, PointIndex};
use judge::{Src, World};
pub use levels::{LevelSide, PointLevel};
use select::shaping_warnings;
use state::{schedule, AgentCause, Binding, PointSt, SiteSt, Timer, ZoneSt};
use std::collections::{BTreeMap, BTreeSet};
use telemetry::{PointId, Quality, Severity, SiteId, Timestamp, Value};
use time::{ts, NONE};

/// Settings of the engine (the gateway maps its config onto this).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// A reading whose time lies more than this behind the clock is marked `late` (default 60 s).
    pub late_after: Duration,
    /// Missing data: a point is silent when nothing came for `interval_ms` x this (default 3.0),
    /// unless a rule sets its own factor.
    pub missing_factor: f64,
    /// The key of the engine's hash maps (ids from the network): the gateway draws one per
    /// process. No output depends on it.
    pub hash_seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            late_after: Duration::seconds(60),
            missing_factor: 3.0,
            hash_seed: 0,
        }
    }
}

/// The rule engine. Pure and deterministic: same calls, same transitions, same order.
pub struct Engine {
    rules: RuleSet,
    config: EngineConfig,
    sites: Vec<SiteSt>,
    site_index: KeyedMap<SiteId, u32>,
    hash_state: FixedState,
    points: Vec<PointSt>,
    bindings: Vec<Binding>,
    free_bindings: Vec<u32>,
    zones: Vec<ZoneSt>,
    agents: Vec<AgentCause>,
    queue: BTreeSet<(i64, Timer)>,
    restored: BTreeMap<Cause, Severity>,
    /// Accumulated states given back after a restart whose binding does not exist yet.
    restored_acc: BTreeMap<Cause, AccumulatedState>,
    /// Bindings whose accumulated state changed since `take_accumulated`.
    acc_dirty: Vec<u32>,
    /// Transitions from calls that have no `out` (set_site), handed out at the next call.
    pending_out: Vec<Transition>,
    /// The site of the last look-up.
    last_site: u32,
    /// `config.late_after` in ms.
    late_after_ms: i64,
}

/// The engine split for judging: what every judgement reads (the [`World`]) beside the causes
/// and the timer queue that judgements change. Taken with [`Engine::split`].
struct Judging<'a> {
    w: World<'a>,
    bindings: &'a mut [Binding],
    zones: &'a mut [ZoneSt],
    agents: &'a mut [AgentCause],
    queue: &'a mut BTreeSet<(i64, Timer)>,
    acc_dirty: &'a mut Vec<u32>,
}

impl Judging<'_> {
    /// Queue binding `bi` at its deadline (unless queued sooner); returns the deadline.
    fn queue_binding(&mut self, bi: u32) -> i64 {
        self.note_accumulated(bi);
        let b = &mut self.bindings[bi as usize];
        let d = self.w.binding_deadline(b);
        schedule(self.queue, &mut b.queued, d, Timer::Binding(bi));
        d
    }

    /// Binding `bi`'s accumulated state changed: the gateway is to save it.
    fn note_accumulated(&mut self, bi: u32) {
        let b = &mut self.bindings[bi as usize];
        if b.acc_changed {
            b.acc_changed = false;
            self.acc_dirty.push(bi);
        }
    }

    /// Queue zone `zi` at its deadline (unless queued sooner).
    fn queue_zone(&mut self, zi: u32) {
        let z = &mut self.zones[zi as usize];
        let d = self.w.zone_deadline(z);
        schedule(self.queue, &mut z.queued, d, Timer::Zone(zi));
    }

    /// Queue agent cause `ci` at its deadline (unless queued sooner).
    fn queue_agent(&mut self, ci: u32) {
        let c = &mut self.agents[ci as usize];
        let rule = &self.w.rules[c.rule as usize];
        let d =
            c.m.deadline(rule.on_delay_ms as i64, rule.off_delay_ms as i64);
        schedule(self.queue, &mut c.queued, d, Timer::Agent(ci));
    }

    /// Judge zone `zi` at `t` (see [`World::judge_zone`]) and queue it at its deadline.
    fn judge_zone(
        &mut self,
        zi: u32,
        t: i64,
        src: Src<'_>,
        cause_point: Option<u32>,
        out: &mut Vec<Transition>,
    ) {
        let z = &mut self.zones[zi as usize];
        self.w
            .judge_zone(self.bindings, z, t, src, cause_point, out);
        self.queue_zone(zi);
    }
}

impl Engine {
    /// Borrow the engine as a [`World`] and the state a judgement changes, at once.
    fn split(&mut self) -> Judging<'_> {
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            zones,
            agents,
            queue,
            acc_dirty,
            ..
        } = self;
        Judging {
            w: World {
                rules: &rules.rules,
                sites,
                points,
                config,
            },
            bindings,
            zones,
            agents,
            queue,
            acc_dirty,
        }
    }

    pub fn new(rules: RuleSet, config: EngineConfig) -> Engine {
        let late_after_ms = config.late_after.num_milliseconds();
        let hash_state = FixedState::with_seed(config.hash_seed);
        Engine {
            rules,
            config,
            sites: Vec::new(),
            site_index: KeyedMap::with_hasher(hash_state.clone()),
            hash_state,
            points: Vec::new(),
            bindings: Vec::new(),
            free_bindings: Vec::new(),
            zones: Vec::new(),
            agents: Vec::new(),
            queue: BTreeSet::new(),
            restored: BTreeMap::new(),
            restored_acc: BTreeMap::new(),
            acc_dirty: Vec::new(),
            pending_out: Vec::new(),
            last_site: u32::MAX,
            late_after_ms,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub(super) fn site_idx(&mut self, site: &SiteId) -> u32 {
        // Readings come in batches per site: try the last one first.
        if let Some(last) = self.sites.get(self.last_site as usize) {
            if last.id == *site {
                return self.last_site;
            }
        }
        if let Some(&s) = self.site_index.get(site) {
            self.last_site = s;
            return s;
        }
        let s = self.sites.len() as u32;
        self.sites.push(SiteSt {
            id: site.clone(),
            ctx: SiteContext::default(),
            birth_category: None,
            warnings: Vec::new(),
            points: PointIndex::new(self.hash_state.clone()),
            order: Vec::new(),
            catalogues: BTreeMap::new(),
            agents: BTreeMap::new(),
            zones: Vec::new(),
        });
        self.site_index.insert(site.clone(), s);
        s
    }

    pub(super) fn point_idx(&mut self, s: u32, point: &PointId, now: i64) -> (u32, bool) {
        if let Some(p) = self.sites[s as usize]
            .points
            .get(point.as_str(), &self.points)
        {
            return (p, false);
        }
        let p = self.points.len() as u32;
        self.points.push(PointSt {
            site: s,
            key: InlineKey::new(point.as_str()),
            id: point.clone(),
            agent: None,
            spec: None,
            last_ts: NONE,
            last_at: Timestamp::default(),
            value: Value::Null,
            quality: Quality::Good,
            seen_at: now,
            lag: 0,
            timers: false,
            bindings: Vec::new(),
            zones: Vec::new(),
        });
        let site = &mut self.sites[s as usize];
        site.points.insert(point, p);
        site.order.push(p);
        (p, true)
    }

    /// The earliest time `tick` has something to do, if any (it may find nothing to do then:
    /// a timer whose point spoke since is moved on lazily).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.queue.first().map(|&(d, _)| ts(d))
    }

    /// The ids of the site's active warnings that shape `rule` now (sorted): what a
    /// transition of the rule at the site would carry in `warnings`. `None` for a rule or a
    /// site the engine does not know.
    pub fn shaping_warnings(&self, rule: &str, site: &SiteId) -> Option<Vec<String>> {
        let &s = self.site_index.get(site)?;
        let rule = self.rules.rules.iter().find(|r| r.id.as_str() == rule)?;
        Some(shaping_warnings(rule, &self.sites[s as usize].warnings))
    }

    /// How many (point, rule) bindings are live (for metrics).
    pub fn binding_count(&self) -> usize {
        self.bindings.iter().filter(|b| b.live).count()
    }

    /// How many points the engine knows (with or without a catalogue entry).
    pub fn point_count(&self) -> usize {
        self.points.len()
    }
}
