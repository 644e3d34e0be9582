//! The engine: binds rules to points, keeps one state machine per cause and turns readings,
//! agent status, warnings and the clock into transitions.
//!
//! Hot path (`on_reading`): two keyed-hash look-ups (site, then point by `&str`) give a dense
//! point index; the point holds the indices of its bindings (rule + state); each binding is
//! judged in place. Nothing is allocated unless a transition is emitted (or the point or
//! site is new).

use crate::api::{ActiveWarning, Cause, SiteContext, Subject, Transition, TransitionKind};
use foldhash::fast::FixedState;
use std::hash::BuildHasher;

/// Maps keyed by ids from the network hash with a key the gateway draws per process
/// ([`EngineConfig::hash_seed`]), so nobody outside can make ids that collide. Nothing the
/// engine puts out depends on their order.
type KeyedMap<K, V> = std::collections::HashMap<K, V, FixedState>;
use crate::message;
use crate::rule::{
    bump, ContextRule, Kind, Level, Member, Mode, PointCondition, Rule, Selector, SITE_ZONE,
};
use crate::ruleset::RuleSet;
use chrono::{DateTime, Duration};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use telemetry::{
    AgentId, AgentState, Catalogue, Category, PointId, PointSpec, Quality, Reading, Severity,
    SiteId, Timestamp, Value,
};

/// "No time": an unset since/deadline.
const NONE: i64 = i64::MIN;
/// Rate-of-change samples kept per binding (bounded).
const RATE_SAMPLES: usize = 256;

#[inline]
fn ms(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

fn ts(ms: i64) -> Timestamp {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

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

// ---------------------------------------------------------------------------------------
// The generic per-cause state machine: open severity and level, with on- and off-delays.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Open {
    severity: Severity,
    level: u8,
    threshold: f64,
}

type Want = Open;

#[derive(Debug, Clone, Copy)]
struct Machine {
    open: Option<Open>,
    /// Since when (event time, ms) a higher severity has been wanted without a break.
    up_since: i64,
    /// Since when a lower severity (or none) has been wanted without a break.
    down_since: i64,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            open: None,
            up_since: NONE,
            down_since: NONE,
        }
    }

    /// Feed what is wanted at time `t`. Returns the transition, with the open state after it
    /// (before it, for a clear).
    fn step(
        &mut self,
        want: Option<Want>,
        t: i64,
        on_delay: i64,
        off_delay: i64,
    ) -> Option<(TransitionKind, Open)> {
        let cur = self.open.map(|o| o.severity);
        let new = want.map(|w| w.severity);
        match new.cmp(&cur) {
            std::cmp::Ordering::Greater => {
                self.down_since = NONE;
                if self.up_since == NONE {
                    self.up_since = t;
                }
                if t.saturating_sub(self.up_since) >= on_delay {
                    let w = want?;
                    self.up_since = NONE;
                    let kind = if self.open.is_some() {
                        TransitionKind::Escalated
                    } else {
                        TransitionKind::Raised
                    };
                    self.open = Some(w);
                    return Some((kind, w));
                }
                None
            }
            std::cmp::Ordering::Less => {
                self.up_since = NONE;
                if self.down_since == NONE {
                    self.down_since = t;
                }
                if t.saturating_sub(self.down_since) >= off_delay {
                    self.down_since = NONE;
                    let old = self.open?;
                    self.open = want;
                    return Some(match want {
                        None => (TransitionKind::Cleared, old),
                        Some(w) => (TransitionKind::Deescalated, w),
                    });
                }
                None
            }
            std::cmp::Ordering::Equal => {
                self.up_since = NONE;
                self.down_since = NONE;
                // Same severity, maybe another level (hysteresis follows the level in force).
                if let (Some(o), Some(w)) = (self.open.as_mut(), want) {
                    o.level = w.level;
                    o.threshold = w.threshold;
                }
                None
            }
        }
    }

    fn deadline(&self, on_delay: i64, off_delay: i64) -> i64 {
        let mut d = i64::MAX;
        if self.up_since != NONE {
            d = d.min(self.up_since.saturating_add(on_delay));
        }
        if self.down_since != NONE {
            d = d.min(self.down_since.saturating_add(off_delay));
        }
        if d == i64::MAX {
            NONE
        } else {
            d
        }
    }
}

// ---------------------------------------------------------------------------------------
// State.

#[derive(Debug, Clone)]
enum Extra {
    None,
    /// Rate of change: (event time ms, value) within the window.
    Rate(VecDeque<(i64, f64)>),
    /// Sensor fault: since when the value has not moved, and from what.
    Fault {
        stuck_since: i64,
        stuck_value: f64,
        why: FaultWhy,
    },
    /// Boolean state: since when the state has been active.
    Active(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultWhy {
    None,
    BadQuality,
    OutOfRange,
    Stuck,
}

#[derive(Debug, Clone)]
struct Binding {
    rule: u32,
    point: u32,
    m: Machine,
    extra: Extra,
    /// The deadline this binding is queued at (NONE: not queued).
    queued: i64,
    live: bool,
}

#[derive(Debug, Clone)]
struct PointSt {
    site: u32,
    /// The id inline (when short), so a look-up is verified without a trip to the heap.
    key: InlineKey,
    id: PointId,
    agent: Option<AgentId>,
    spec: Option<Box<PointSpec>>,
    /// Event time of the last reading judged (ms), NONE before the first.
    last_ts: i64,
    last_at: Timestamp,
    value: Value,
    quality: Quality,
    /// Gateway clock (ms) of the last reading taken (or of the birth).
    seen_at: i64,
    /// Some binding or zone of the point has an event-time deadline (delays, durations,
    /// power-off allowance): readings must fire them first.
    timers: bool,
    bindings: Vec<u32>,
    zones: Vec<u32>,
}

#[derive(Debug, Clone)]
struct ZoneSt {
    rule: u32,
    site: u32,
    zone: String,
    members: Vec<Vec<u32>>,
    m: Machine,
    /// a_then_not_b: since when A has held.
    a_since: i64,
    /// The point that completed the condition.
    trigger: Option<u32>,
    queued: i64,
    live: bool,
}

#[derive(Debug, Clone)]
struct AgentCause {
    rule: u32,
    site: u32,
    agent: AgentId,
    m: Machine,
    queued: i64,
    live: bool,
}

#[derive(Debug, Clone, Default)]
struct AgentLink {
    online: bool,
    last_status: i64,
    causes: Vec<u32>,
}

#[derive(Debug, Clone)]
struct SiteSt {
    id: SiteId,
    ctx: SiteContext,
    birth_category: Option<Category>,
    warnings: Vec<ActiveWarning>,
    points: PointIndex,
    /// Points in the order they became known (for deterministic walks).
    order: Vec<u32>,
    /// Which points each agent's last birth named.
    catalogues: BTreeMap<AgentId, Vec<PointId>>,
    agents: BTreeMap<AgentId, AgentLink>,
    zones: Vec<u32>,
}

impl SiteSt {
    fn category(&self) -> Option<&Category> {
        self.ctx.category.as_ref().or(self.birth_category.as_ref())
    }
}

/// A point id of up to 31 bytes, inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InlineKey {
    len: u8,
    bytes: [u8; 31],
}

impl InlineKey {
    fn new(s: &str) -> InlineKey {
        let mut k = InlineKey {
            len: u8::MAX,
            bytes: [0; 31],
        };
        if s.len() <= 31 {
            k.len = s.len() as u8;
            k.bytes[..s.len()].copy_from_slice(s.as_bytes());
        }
        k
    }
    /// `Some(equal)` when the key is inline, `None` for a long id (compare the id itself).
    #[inline]
    fn eq_str(&self, s: &str) -> Option<bool> {
        if self.len == u8::MAX {
            None
        } else {
            Some(self.len as usize == s.len() && &self.bytes[..s.len().min(31)] == s.as_bytes())
        }
    }
}

/// Point id -> dense point index within a site: a map from the id's 64-bit hash (an
/// integer key: no string hashing inside the table, no key on the heap), verified against
/// the point's inline id. Ids whose hash is taken by another id go to `overflow`.
#[derive(Debug, Clone)]
struct PointIndex {
    state: FixedState,
    by_hash: KeyedMap<u64, u32>,
    overflow: BTreeMap<PointId, u32>,
}

impl Default for PointIndex {
    fn default() -> Self {
        PointIndex::new(FixedState::with_seed(0))
    }
}

impl PointIndex {
    fn new(state: FixedState) -> Self {
        PointIndex {
            by_hash: KeyedMap::with_hasher(state.clone()),
            state,
            overflow: BTreeMap::new(),
        }
    }

    #[inline]
    fn id_hash(&self, s: &str) -> u64 {
        self.state.hash_one(s)
    }

    #[inline]
    fn get(&self, id: &str, points: &[PointSt]) -> Option<u32> {
        if let Some(&p) = self.by_hash.get(&self.id_hash(id)) {
            let pt = &points[p as usize];
            if pt.key.eq_str(id).unwrap_or_else(|| pt.id.as_str() == id) {
                return Some(p);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(id).copied()
        }
    }

    fn insert(&mut self, id: &PointId, p: u32) {
        match self.by_hash.entry(self.id_hash(id.as_str())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(p);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(id.clone(), p);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Binding(u32),
    Zone(u32),
    Agent(u32),
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
    /// Transitions from calls that have no `out` (set_site), handed out at the next call.
    pending_out: Vec<Transition>,
    /// The site of the last look-up.
    last_site: u32,
    /// `config.late_after` in ms.
    late_after_ms: i64,
}

/// Where a judgement comes from, for the transition's fields.
#[derive(Clone, Copy)]
struct Src<'a> {
    at: Timestamp,
    agent: Option<&'a AgentId>,
    late: bool,
    /// A clock-driven judgement (timers, warnings, reloads): not a fresh reading.
    timer: bool,
}

fn selects_site(sel: &Selector, site: &SiteSt) -> bool {
    if !sel.category.is_empty() {
        match site.category() {
            Some(c) if sel.category.iter().any(|x| x == c.as_str()) => {}
            _ => return false,
        }
    }
    if let Some(g) = &sel.site {
        if !g.matches(site.id.as_str()) {
            return false;
        }
    }
    true
}

/// The gas a point measures: its `gas`, or the quantity itself for single-gas quantities.
fn point_gas(spec: &PointSpec) -> Option<String> {
    if let Some(g) = &spec.gas {
        return Some(g.to_ascii_lowercase());
    }
    match spec.quantity.as_str() {
        q @ ("ch4" | "co" | "o2" | "co2" | "h2s") => Some(q.to_string()),
        _ => None,
    }
}

fn selects_point(sel: &Selector, id: &PointId, spec: Option<&PointSpec>) -> bool {
    if let Some(g) = &sel.point {
        if !g.matches(id.as_str()) {
            return false;
        }
    }
    if !sel.needs_spec() {
        return true;
    }
    let Some(spec) = spec else { return false };
    if !sel.quantity.is_empty() && !sel.quantity.iter().any(|q| q == spec.quantity.as_str()) {
        return false;
    }
    if !sel.gas.is_empty() {
        match point_gas(spec) {
            Some(g) if sel.gas.contains(&g) => {}
            _ => return false,
        }
    }
    if !sel.location.is_empty() {
        match &spec.location {
            Some(l) if sel.location.contains(l) => {}
            _ => return false,
        }
    }
    for (k, g) in &sel.tags {
        match spec.tag(k) {
            Some(v) if g.matches(v) => {}
            _ => return false,
        }
    }
    true
}

fn warning_matches(c: &ContextRule, w: &ActiveWarning) -> bool {
    w.kind == c.warning
        && w.level >= c.min_level
        && c.min_magnitude
            .is_none_or(|m| w.magnitude.is_some_and(|x| x >= m))
}

/// Context effects of the site's active warnings on a rule: (rule applies, severity steps up).
#[inline]
fn context_effects(rule: &Rule, warnings: &[ActiveWarning]) -> (bool, u8) {
    if rule.context.is_empty() {
        return (true, 0);
    }
    let (mut needs_only, mut only_met, mut up) = (false, false, 0u8);
    for c in &rule.context {
        let met = warnings.iter().any(|w| warning_matches(c, w));
        if c.only {
            needs_only = true;
            only_met |= met;
        }
        if met {
            up = up.saturating_add(c.severity_up);
        }
    }
    (!needs_only || only_met, up)
}

/// Raise and clear values of a level under the active warnings.
#[inline]
fn level_values(rule: &Rule, idx: usize, level: &Level, warnings: &[ActiveWarning]) -> (f64, f64) {
    let (mut raise, mut clear) = (level.raise, level.clear);
    for c in &rule.context {
        if c.tighten.iter().any(|t| t.level == idx)
            && warnings.iter().any(|w| warning_matches(c, w))
        {
            for t in c.tighten.iter().filter(|t| t.level == idx) {
                if let Some(r) = t.raise {
                    raise = r;
                }
                if let Some(c) = t.clear {
                    clear = c;
                }
            }
        }
    }
    (raise, clear)
}

/// The ids of the warnings that shape a rule now (sorted).
fn shaping_warnings(rule: &Rule, warnings: &[ActiveWarning]) -> Vec<String> {
    if rule.context.is_empty() {
        return Vec::new();
    }
    let mut ids: Vec<String> = warnings
        .iter()
        .filter(|w| rule.context.iter().any(|c| warning_matches(c, w)))
        .map(|w| w.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Threshold: the level wanted for value `v`, given what is open (hysteresis).
#[inline]
fn threshold_want(
    rule: &Rule,
    levels: &[Level],
    v: f64,
    open: Option<Open>,
    warnings: &[ActiveWarning],
    up: u8,
) -> Option<Want> {
    let plain = rule.context.is_empty();
    let mut best: Option<(usize, f64)> = None;
    let open_level = open.and_then(|o| levels.get(o.level as usize));
    for (i, l) in levels.iter().enumerate() {
        let (raise, clear) = if plain {
            (l.raise, l.clear)
        } else {
            level_values(rule, i, l, warnings)
        };
        let on = l.raises(v, raise)
            || open_level.is_some_and(|ol| {
                ol.side == l.side && l.severity <= ol.severity && !l.cleared(v, clear)
            });
        if on && best.is_none_or(|(b, _)| levels[b].severity <= l.severity) {
            best = Some((i, raise));
        }
    }
    best.map(|(i, raise)| Open {
        severity: bump(levels[i].severity, up),
        level: i as u8,
        threshold: raise,
    })
}

struct World<'a> {
    rules: &'a [Rule],
    sites: &'a [SiteSt],
    points: &'a [PointSt],
    config: &'a EngineConfig,
}

impl World<'_> {
    /// The point's threshold for a missing-data rule, in ms, if it has one.
    fn missing_limit(&self, rule: &Rule, p: &PointSt) -> Option<i64> {
        let Kind::MissingData {
            factor,
            default_interval_ms,
            ..
        } = &rule.kind
        else {
            return None;
        };
        let interval = p
            .spec
            .as_deref()
            .and_then(|s| s.interval_ms)
            .or(*default_interval_ms)?;
        let f = factor.unwrap_or(self.config.missing_factor);
        Some((interval as f64 * f).round() as i64)
    }

    fn agent_online(&self, p: &PointSt) -> bool {
        match &p.agent {
            Some(a) => self.sites[p.site as usize]
                .agents
                .get(a)
                .is_none_or(|l| l.online),
            None => true,
        }
    }

    /// Binding deadline (ms): delays, state escalation, missing data (gateway clock).
    fn binding_deadline(&self, b: &Binding) -> i64 {
        if !b.live {
            return NONE;
        }
        let rule = &self.rules[b.rule as usize];
        let p = &self.points[b.point as usize];
        let mut d =
            b.m.deadline(rule.on_delay_ms as i64, rule.off_delay_ms as i64);
        let mut consider = |x: i64| {
            if x != NONE && (d == NONE || x < d) {
                d = x;
            }
        };
        match &rule.kind {
            Kind::State {
                max_duration_ms: Some(max),
                escalate_to,
                ..
            } => {
                if let Extra::Active(since) = b.extra {
                    if since != NONE && b.m.open.is_some_and(|o| o.severity < *escalate_to) {
                        consider(since.saturating_add(*max as i64));
                    }
                }
            }
            Kind::MissingData { .. } => {
                if let (None, true, Some(limit)) =
                    (b.m.open, self.agent_online(p), self.missing_limit(rule, p))
                {
                    consider(p.seen_at.saturating_add(limit));
                }
            }
            _ => {}
        }
        d
    }

    /// Judge a binding at `t` on the point's latest value. `reading`: a fresh reading is being
    /// judged (else a timer, warning change or reload).
    fn judge_binding(
        &self,
        bi: u32,
        b: &mut Binding,
        t: i64,
        src: Src<'_>,
        reading: bool,
        out: &mut Vec<Transition>,
    ) -> bool {
        let rule = &self.rules[b.rule as usize];
        let p = &self.points[b.point as usize];
        let site = &self.sites[p.site as usize];
        let _ = bi;
        let on = rule.on_delay_ms as i64;
        let off = rule.off_delay_ms as i64;
        let judgeable = p.quality.judgeable() && p.last_ts != NONE;
        let want: Option<Want> = match &rule.kind {
            Kind::Threshold { levels, .. } => {
                if !judgeable {
                    return false; // bad / calibration: neither raise nor clear
                }
                let Some(v) = p.value.as_f64().filter(|v| v.is_finite()) else {
                    return false;
                };
                let (applies, up) = context_effects(rule, &site.warnings);
                if applies {
                    threshold_want(rule, levels, v, b.m.open, &site.warnings, up)
                } else {
                    None
                }
            }
            Kind::Rate {
                window_ms,
                rise,
                fall,
                severity,
            } => {
                if !judgeable {
                    return false;
                }
                let Some(v) = p.value.as_f64().filter(|v| v.is_finite()) else {
                    return false;
                };
                let Extra::Rate(samples) = &mut b.extra else {
                    return false;
                };
                if reading {
                    samples.push_back((t, v));
                }
                while samples
                    .front()
                    .is_some_and(|&(st, _)| t - st > *window_ms as i64)
                    || samples.len() > RATE_SAMPLES
                {
                    samples.pop_front();
                }
                let (lo, hi) = samples
                    .iter()
                    .fold((v, v), |(lo, hi), &(_, x)| (lo.min(x), hi.max(x)));
                let up_hit = rise.is_some_and(|r| v - lo >= r);
                let down_hit = fall.is_some_and(|f| hi - v >= f);
                let (applies, upsev) = context_effects(rule, &site.warnings);
                if applies && (up_hit || down_hit) {
                    let th = if up_hit {
                        rise.unwrap_or(f64::NAN)
                    } else {
                        fall.unwrap_or(f64::NAN)
                    };
                    Some(Open {
                        severity: bump(*severity, upsev),
                        level: if up_hit { 0 } else { 1 },
                        threshold: th,
                    })
                } else {
                    None
                }
            }
            Kind::SensorFault {
                severity,
                bad_quality,
                out_of_range,
                stuck_ms,
                stuck_tolerance,
            } => {
                if p.quality == Quality::Calibration || p.last_ts == NONE {
                    return false;
                }
                let Extra::Fault {
                    stuck_since,
                    stuck_value,
                    why,
                } = &mut b.extra
                else {
                    return false;
                };
                let mut fault = FaultWhy::None;
                if p.quality == Quality::Bad || p.value.is_null() {
                    if *bad_quality {
                        fault = FaultWhy::BadQuality;
                    } else {
                        return false;
                    }
                } else if let Value::Number(v) = p.value {
                    if *out_of_range {
                        if let Some([lo, hi]) = p.spec.as_deref().and_then(|s| s.range) {
                            if v < lo || v > hi {
                                fault = FaultWhy::OutOfRange;
                            }
                        }
                    }
                    if let Some(stuck) = stuck_ms {
                        if reading
                            && (*stuck_since == NONE || (v - *stuck_value).abs() > *stuck_tolerance)
                        {
                            *stuck_since = t;
                            *stuck_value = v;
                        }
                        if fault == FaultWhy::None
                            && *stuck_since != NONE
                            && t - *stuck_since >= *stuck as i64
                        {
                            fault = FaultWhy::Stuck;
                        }
                    }
                }
                let (applies, up) = context_effects(rule, &site.warnings);
                if fault != FaultWhy::None && applies {
                    *why = fault;
                    Some(Open {
                        severity: bump(*severity, up),
                        level: 0,
                        threshold: f64::NAN,
                    })
                } else {
                    None
                }
            }
            Kind::MissingData { severity, .. } => {
                if reading {
                    None
                } else {
                    match self.missing_limit(rule, p) {
                        Some(limit) if t >= p.seen_at.saturating_add(limit) => {
                            if self.agent_online(p) {
                                Some(Open {
                                    severity: *severity,
                                    level: 0,
                                    threshold: f64::NAN,
                                })
                            } else {
                                b.m.open // the agent's own cause speaks for it; keep what is
                            }
                        }
                        _ => None,
                    }
                }
            }
            Kind::State {
                severity,
                active,
                max_duration_ms,
                escalate_to,
                ..
            } => {
                if !judgeable {
                    return false;
                }
                let Some(bv) = p.value.as_bool() else {
                    return false;
                };
                let Extra::Active(since) = &mut b.extra else {
                    return false;
                };
                let (applies, up) = context_effects(rule, &site.warnings);
                if bv == *active && applies {
                    if *since == NONE {
                        *since = t;
                    }
                    let sev = match max_duration_ms {
                        Some(max) if t.saturating_sub(*since) >= *max as i64 => *escalate_to,
                        _ => *severity,
                    };
                    Some(Open {
                        severity: bump(sev, up),
                        level: 0,
                        threshold: f64::NAN,
                    })
                } else {
                    *since = NONE;
                    None
                }
            }
            Kind::AgentOffline { .. } | Kind::Composite { .. } | Kind::Site { .. } => return false,
        };
        let Some((kind, open)) = b.m.step(want, t, on, off) else {
            return false;
        };
        let (threshold, text) = self.binding_text(rule, b, p, kind, open);
        out.push(Transition {
            cause: Cause {
                rule: rule.id.clone(),
                site: site.id.clone(),
                subject: Subject::Point {
                    point: p.id.clone(),
                },
            },
            kind,
            severity: open.severity,
            agent: src.agent.cloned().or_else(|| p.agent.clone()),
            point: Some(p.id.clone()),
            value: message::value_json(&p.value),
            threshold,
            at: src.at,
            rule_version: rule.version.clone(),
            message: text,
            warnings: shaping_warnings(rule, &site.warnings),
            quality: p.quality,
            late: src.late && !src.timer,
        });
        true
    }

    fn binding_text(
        &self,
        rule: &Rule,
        b: &Binding,
        p: &PointSt,
        kind: TransitionKind,
        open: Open,
    ) -> (Option<f64>, String) {
        let spec = p.spec.as_deref();
        let q = message::quantity_label(spec, &p.id);
        let u = message::unit(spec);
        let place = message::place(spec, &p.id);
        let v = message::value_text(&p.value);
        let site = &self.sites[p.site as usize];
        match &rule.kind {
            Kind::Threshold { levels, .. } => {
                let l = &levels[open.level as usize];
                let (raise, clear) = level_values(rule, open.level as usize, l, &site.warnings);
                match kind {
                    TransitionKind::Cleared => (
                        Some(clear),
                        format!(
                            "{q} {v}{u} {} {} {}{u} {place}: cleared",
                            l.clear_op(),
                            l.clear_label,
                            message::num(clear)
                        ),
                    ),
                    TransitionKind::Deescalated => (
                        Some(raise),
                        format!(
                            "{q} {v}{u} back under a higher level, still {} {} {}{u} {place}",
                            l.op(),
                            l.label,
                            message::num(raise)
                        ),
                    ),
                    _ => (
                        Some(raise),
                        format!(
                            "{q} {v}{u} {} {} {}{u} {place}",
                            l.op(),
                            l.label,
                            message::num(raise)
                        ),
                    ),
                }
            }
            Kind::Rate { window_ms, .. } => {
                let dir = if open.level == 0 { "rose" } else { "fell" };
                let secs = *window_ms as f64 / 1000.0;
                match kind {
                    TransitionKind::Cleared => (
                        None,
                        format!("{q} {v}{u} {place}: rate of change back to normal: cleared"),
                    ),
                    _ => (
                        Some(open.threshold),
                        format!(
                            "{q} {dir} by {} {u} or more within {} s, now {v}{u} {place}",
                            message::num(open.threshold),
                            message::num(secs)
                        ),
                    ),
                }
            }
            Kind::SensorFault { .. } => {
                let why = match b.extra {
                    Extra::Fault {
                        why: FaultWhy::OutOfRange,
                        ..
                    } => {
                        let r = p
                            .spec
                            .as_deref()
                            .and_then(|s| s.range)
                            .unwrap_or([f64::NAN, f64::NAN]);
                        format!(
                            "value {v}{u} outside the range {}..{}",
                            message::num(r[0]),
                            message::num(r[1])
                        )
                    }
                    Extra::Fault {
                        why: FaultWhy::Stuck,
                        stuck_value,
                        ..
                    } => format!("value stuck at {}{u}", message::num(stuck_value)),
                    _ => "quality bad".to_string(),
                };
                match kind {
                    TransitionKind::Cleared => (
                        None,
                        format!("sensor of {q} {place} reads normally again: cleared"),
                    ),
                    _ => (None, format!("sensor fault of {q} {place}: {why}")),
                }
            }
            Kind::MissingData { .. } => match kind {
                TransitionKind::Cleared => (None, format!("data from {q} {place} again: cleared")),
                _ => {
                    let limit = self.missing_limit(rule, p).unwrap_or(0);
                    (
                        None,
                        format!(
                            "no data from {q} {place} for over {} s",
                            message::num(limit as f64 / 1000.0)
                        ),
                    )
                }
            },
            Kind::State {
                label,
                max_duration_ms,
                escalate_to,
                ..
            } => match kind {
                TransitionKind::Cleared => {
                    (None, format!("{q} {place} no longer {label}: cleared"))
                }
                TransitionKind::Escalated
                    if open.severity >= *escalate_to && max_duration_ms.is_some() =>
                {
                    (
                        None,
                        format!(
                            "{q} {place} {label} for longer than {} s",
                            message::num(max_duration_ms.unwrap_or(0) as f64 / 1000.0)
                        ),
                    )
                }
                _ => (None, format!("{q} {place} {label}")),
            },
            _ => (None, String::new()),
        }
    }

    fn member_holds(&self, bindings: &[Binding], m: &Member, p: u32) -> bool {
        let pt = &self.points[p as usize];
        let judgeable = pt.quality.judgeable() && pt.last_ts != NONE;
        match &m.condition {
            PointCondition::Above(x) => judgeable && pt.value.as_f64().is_some_and(|v| v >= *x),
            PointCondition::Below(x) => judgeable && pt.value.as_f64().is_some_and(|v| v < *x),
            PointCondition::Equals(want) => judgeable && pt.value.as_bool() == Some(*want),
            PointCondition::Cause { rule, min_severity } => pt.bindings.iter().any(|&bi| {
                let b = &bindings[bi as usize];
                b.m.open.is_some_and(|o| o.severity >= *min_severity)
                    && rule.matches(&self.rules[b.rule as usize].id)
            }),
        }
    }

    fn zone_deadline(&self, z: &ZoneSt) -> i64 {
        if !z.live {
            return NONE;
        }
        let rule = &self.rules[z.rule as usize];
        let mut d =
            z.m.deadline(rule.on_delay_ms as i64, rule.off_delay_ms as i64);
        if let Kind::Composite {
            mode: Mode::AThenNotB,
            within_ms,
            ..
        } = &rule.kind
        {
            if z.a_since != NONE && z.m.open.is_none() {
                let x = z.a_since.saturating_add(*within_ms as i64);
                if d == NONE || x < d {
                    d = x;
                }
            }
        }
        d
    }

    fn judge_zone(
        &self,
        bindings: &[Binding],
        z: &mut ZoneSt,
        t: i64,
        src: Src<'_>,
        cause_point: Option<u32>,
        out: &mut Vec<Transition>,
    ) -> bool {
        let rule = &self.rules[z.rule as usize];
        let site = &self.sites[z.site as usize];
        if let Kind::Site { severity, label } = &rule.kind {
            return self.judge_site(rule, *severity, label, z, t, src, out);
        }
        let Kind::Composite {
            severity,
            mode,
            members,
            within_ms,
            ..
        } = &rule.kind
        else {
            return false;
        };
        let first_holding = |i: usize| -> Option<u32> {
            let m = &members[i];
            if let Some(cp) = cause_point {
                if z.members[i].contains(&cp) && self.member_holds(bindings, m, cp) {
                    return Some(cp);
                }
            }
            z.members[i]
                .iter()
                .copied()
                .find(|&p| self.member_holds(bindings, m, p))
        };
        let (applies, up) = context_effects(rule, &site.warnings);
        let mut trigger = None;
        let cond = match mode {
            Mode::All => {
                let mut all = true;
                for i in 0..members.len() {
                    match first_holding(i) {
                        Some(p) => trigger = trigger.or(Some(p)),
                        None => all = false,
                    }
                }
                if let Some(cp) = cause_point {
                    if all && z.members.iter().any(|m| m.contains(&cp)) {
                        trigger = Some(cp);
                    }
                }
                all
            }
            Mode::Any => {
                for i in 0..members.len() {
                    if let Some(p) = first_holding(i) {
                        trigger = Some(p);
                        break;
                    }
                }
                trigger.is_some()
            }
            Mode::AThenNotB => {
                let a = first_holding(0);
                let b_present = !z.members[1].is_empty();
                let b = first_holding(1).is_some();
                if a.is_some() && b_present {
                    if z.a_since == NONE {
                        z.a_since = t;
                    }
                    trigger = a;
                } else {
                    z.a_since = NONE;
                }
                a.is_some() && b_present && !b && t.saturating_sub(z.a_since) >= *within_ms as i64
            }
        };
        let want = (cond && applies).then_some(Open {
            severity: bump(*severity, up),
            level: 0,
            threshold: f64::NAN,
        });
        if trigger.is_some() {
            z.trigger = trigger;
        }
        let Some((kind, open)) =
            z.m.step(want, t, rule.on_delay_ms as i64, rule.off_delay_ms as i64)
        else {
            return false;
        };
        let tp = z.trigger.or(cause_point).map(|p| &self.points[p as usize]);
        let text = match (kind, mode) {
            (TransitionKind::Cleared, _) => format!(
                "zone {}: condition of {} no longer holds: cleared",
                z.zone, rule.id
            ),
            (_, Mode::AThenNotB) => {
                let proof: Vec<&str> = z.members[1]
                    .iter()
                    .map(|&p| self.points[p as usize].id.as_str())
                    .collect();
                format!(
                    "zone {}: {} not proven within {} s after {} (still not: {})",
                    z.zone,
                    describe_condition(&members[1].condition),
                    message::num(*within_ms as f64 / 1000.0),
                    tp.map(|p| format!("{} {}", p.id, describe_condition(&members[0].condition)))
                        .unwrap_or_default(),
                    proof.join(", ")
                )
            }
            (_, Mode::All) => format!("zone {}: all conditions of {} hold", z.zone, rule.id),
            (_, Mode::Any) => format!(
                "zone {}: a condition of {} holds ({})",
                z.zone,
                rule.id,
                tp.map(|p| p.id.as_str()).unwrap_or("")
            ),
        };
        out.push(Transition {
            cause: Cause {
                rule: rule.id.clone(),
                site: site.id.clone(),
                subject: Subject::Zone {
                    zone: z.zone.clone(),
                },
            },
            kind,
            severity: open.severity,
            agent: src
                .agent
                .cloned()
                .or_else(|| tp.and_then(|p| p.agent.clone())),
            point: tp.map(|p| p.id.clone()),
            value: tp.and_then(|p| message::value_json(&p.value)),
            threshold: None,
            at: src.at,
            rule_version: rule.version.clone(),
            message: text,
            warnings: shaping_warnings(rule, &site.warnings),
            quality: tp.map(|p| p.quality).unwrap_or_default(),
            late: src.late && !src.timer,
        });
        true
    }

    /// A site-level rule: raised while a warning its `only` context names is in force at the
    /// site; severity steps up with its other context conditions. `value` is the magnitude of
    /// the strongest matching earthquake (if any), `threshold` the highest `min_magnitude` of
    /// the conditions met.
    #[allow(clippy::too_many_arguments)]
    fn judge_site(
        &self,
        rule: &Rule,
        severity: Severity,
        label: &str,
        z: &mut ZoneSt,
        t: i64,
        src: Src<'_>,
        out: &mut Vec<Transition>,
    ) -> bool {
        let site = &self.sites[z.site as usize];
        let (applies, up) = context_effects(rule, &site.warnings);
        let want = applies.then_some(Open {
            severity: bump(severity, up),
            level: 0,
            threshold: f64::NAN,
        });
        let Some((kind, open)) =
            z.m.step(want, t, rule.on_delay_ms as i64, rule.off_delay_ms as i64)
        else {
            return false;
        };
        let matching: Vec<&ActiveWarning> = site
            .warnings
            .iter()
            .filter(|w| rule.context.iter().any(|c| warning_matches(c, w)))
            .collect();
        let magnitude = matching
            .iter()
            .filter_map(|w| w.magnitude)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let threshold = rule
            .context
            .iter()
            .filter(|c| site.warnings.iter().any(|w| warning_matches(c, w)))
            .filter_map(|c| c.min_magnitude)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let text = match kind {
            TransitionKind::Cleared => {
                format!("{label}: the warning that called for it is no longer in force: cleared")
            }
            _ => {
                let what: Vec<String> = matching
                    .iter()
                    .map(|w| match w.magnitude {
                        Some(m) => format!(
                            "{} M{} ({})",
                            w.kind.replace('_', " "),
                            message::num(m),
                            w.id
                        ),
                        None => format!(
                            "{} {} ({})",
                            w.kind.replace('_', " "),
                            level_name(w.level),
                            w.id
                        ),
                    })
                    .collect();
                format!("{label}: {}", what.join(", "))
            }
        };
        out.push(Transition {
            cause: Cause {
                rule: rule.id.clone(),
                site: site.id.clone(),
                subject: Subject::Zone {
                    zone: z.zone.clone(),
                },
            },
            kind,
            severity: open.severity,
            agent: None,
            point: None,
            value: magnitude
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number),
            threshold,
            at: src.at,
            rule_version: rule.version.clone(),
            message: text,
            warnings: shaping_warnings(rule, &site.warnings),
            quality: Quality::Good,
            late: false,
        });
        true
    }

    fn judge_agent(
        &self,
        c: &mut AgentCause,
        t: i64,
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) -> bool {
        let rule = &self.rules[c.rule as usize];
        let site = &self.sites[c.site as usize];
        let Kind::AgentOffline { severity } = rule.kind else {
            return false;
        };
        let online = site.agents.get(&c.agent).is_none_or(|l| l.online);
        let want = (!online).then_some(Open {
            severity,
            level: 0,
            threshold: f64::NAN,
        });
        let Some((kind, open)) =
            c.m.step(want, t, rule.on_delay_ms as i64, rule.off_delay_ms as i64)
        else {
            return false;
        };
        let text = match kind {
            TransitionKind::Cleared => format!("agent {} online again: cleared", c.agent),
            _ => format!("agent {} offline: communication lost", c.agent),
        };
        out.push(Transition {
            cause: Cause {
                rule: rule.id.clone(),
                site: site.id.clone(),
                subject: Subject::Agent {
                    agent: c.agent.clone(),
                },
            },
            kind,
            severity: open.severity,
            agent: Some(c.agent.clone()),
            point: None,
            value: None,
            threshold: None,
            at,
            rule_version: rule.version.clone(),
            message: text,
            warnings: Vec::new(),
            quality: Quality::Good,
            late: false,
        });
        true
    }
}

fn level_name(l: crate::api::WarningLevel) -> &'static str {
    use crate::api::WarningLevel as L;
    match l {
        L::Blue => "blue",
        L::Yellow => "yellow",
        L::Orange => "orange",
        L::Red => "red",
    }
}

fn describe_condition(c: &PointCondition) -> String {
    match c {
        PointCondition::Above(x) => format!(">= {}", message::num(*x)),
        PointCondition::Below(x) => format!("< {}", message::num(*x)),
        PointCondition::Equals(true) => "true".to_string(),
        PointCondition::Equals(false) => "false".to_string(),
        PointCondition::Cause { rule, min_severity } => {
            format!("at {min_severity} under {}", rule.as_str())
        }
    }
}

fn schedule(queue: &mut BTreeSet<(i64, Timer)>, queued: &mut i64, deadline: i64, timer: Timer) {
    if deadline != NONE && (*queued == NONE || deadline < *queued) {
        if *queued != NONE {
            queue.remove(&(*queued, timer));
        }
        queue.insert((deadline, timer));
        *queued = deadline;
    }
}

/// What becomes of an old rule index after a swap: new index and whether its version is the same.
type Remap = Vec<Option<(u32, bool)>>;

impl Engine {
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
            pending_out: Vec::new(),
            last_site: u32::MAX,
            late_after_ms,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    fn site_idx(&mut self, site: &SiteId) -> u32 {
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

    fn point_idx(&mut self, s: u32, point: &PointId, now: i64) -> (u32, bool) {
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
            timers: false,
            bindings: Vec::new(),
            zones: Vec::new(),
        });
        let site = &mut self.sites[s as usize];
        site.points.insert(point, p);
        site.order.push(p);
        (p, true)
    }

    fn identity_remap(&self) -> Remap {
        (0..self.rules.rules.len() as u32)
            .map(|i| Some((i, true)))
            .collect()
    }

    /// The site's place and kind (from the gateway's registry). Rebinds its points when the
    /// category changes.
    pub fn set_site(&mut self, site: &SiteId, ctx: SiteContext) {
        let s = self.site_idx(site);
        let changed = self.sites[s as usize].ctx != ctx;
        self.sites[s as usize].ctx = ctx;
        if changed {
            let remap = self.identity_remap();
            let mut sink = Vec::new();
            let now = self.sites[s as usize]
                .order
                .iter()
                .map(|&p| self.points[p as usize].last_ts)
                .max()
                .unwrap_or(NONE);
            let now = if now == NONE { 0 } else { now };
            self.rebind_site(s, &remap, now, &mut sink);
            // Causes that no longer apply after a change of category are cleared at the
            // latest event time known; the caller sees them at its next call.
            self.pending_out.append(&mut sink);
        }
    }

    /// A birth: (re)binds the site's points of this agent to the rules that select them.
    pub fn set_catalogue(
        &mut self,
        site: &SiteId,
        catalogue: &Catalogue,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        out.append(&mut self.pending_out);
        let n = ms(&now);
        let s = self.site_idx(site);
        if let Some(cat) = catalogue.site.as_ref().and_then(|i| i.category.clone()) {
            self.sites[s as usize].birth_category = Some(cat);
        }
        let agent = catalogue.agent.clone();
        let old: Vec<PointId> = self.sites[s as usize]
            .catalogues
            .get(&agent)
            .cloned()
            .unwrap_or_default();
        // Points this agent no longer names lose their catalogue entry.
        for pid in &old {
            if !catalogue.points.iter().any(|ps| &ps.point == pid) {
                if let Some(p) = self.sites[s as usize]
                    .points
                    .get(pid.as_str(), &self.points)
                {
                    self.points[p as usize].spec = None;
                }
            }
        }
        for spec in &catalogue.points {
            let (p, new) = self.point_idx(s, &spec.point, n);
            let pt = &mut self.points[p as usize];
            pt.spec = Some(Box::new(spec.clone()));
            pt.agent = Some(agent.clone());
            if new || pt.last_ts == NONE {
                pt.seen_at = pt.seen_at.max(n);
            }
        }
        self.sites[s as usize].catalogues.insert(
            agent.clone(),
            catalogue.points.iter().map(|p| p.point.clone()).collect(),
        );
        self.sites[s as usize]
            .agents
            .entry(agent)
            .or_insert_with(|| AgentLink {
                online: true,
                last_status: NONE,
                causes: Vec::new(),
            });
        let remap = self.identity_remap();
        self.rebind_site(s, &remap, n, out);
        self.settle_restored(now, out);
    }

    /// Restored causes that no rule takes up: their rule is gone, or their point is named by
    /// a birth and no longer selected by it. Cleared, so no incident stays open for ever.
    fn settle_restored(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        let mut gone = Vec::new();
        for (cause, sev) in &self.restored {
            let rule = self.rules.get(&cause.rule);
            let orphan = match (&cause.subject, rule) {
                (_, None) => true,
                (Subject::Point { point }, Some(_)) => self
                    .site_index
                    .get(&cause.site)
                    .and_then(|&s| {
                        self.sites[s as usize]
                            .points
                            .get(point.as_str(), &self.points)
                    })
                    .is_some_and(|p| self.points[p as usize].spec.is_some()),
                _ => false,
            };
            if orphan {
                gone.push((
                    cause.clone(),
                    *sev,
                    rule.map(|r| r.version.clone()).unwrap_or_default(),
                ));
            }
        }
        for (cause, sev, version) in gone {
            self.restored.remove(&cause);
            let (agent, point) = match &cause.subject {
                Subject::Point { point } => (None, Some(point.clone())),
                Subject::Agent { agent } => (Some(agent.clone()), None),
                Subject::Zone { .. } => (None, None),
            };
            out.push(Transition {
                message: format!("rule {} no longer applies: cleared", cause.rule),
                cause,
                kind: TransitionKind::Cleared,
                severity: sev,
                agent,
                point,
                value: None,
                threshold: None,
                at: now,
                rule_version: version,
                warnings: Vec::new(),
                quality: Quality::Good,
                late: false,
            });
        }
    }

    /// One reading (event time = reading.ts); `now` is the gateway clock.
    pub fn on_reading(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        reading: &Reading,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let n = ms(&now);
        let s = self.site_idx(site);
        let (p, new) = self.point_idx(s, &reading.point, n);
        if new {
            self.points[p as usize].agent = Some(agent.clone());
            let remap = self.identity_remap();
            self.bind_point(p, &remap, n, out);
        }
        let t = ms(&reading.ts);
        {
            let pt = &self.points[p as usize];
            if t <= pt.last_ts {
                return; // out of order or replayed: judged already
            }
        }
        let late = n.saturating_sub(t) > self.late_after_ms;
        let src = Src {
            at: reading.ts,
            agent: Some(agent),
            late,
            timer: false,
        };
        // 1. Deadlines that fall before this reading fire on the value that held until now.
        if self.points[p as usize].timers || !self.points[p as usize].zones.is_empty() {
            self.advance_point(p, t, Some(agent), out);
        }
        // 2. Take the reading.
        {
            let pt = &mut self.points[p as usize];
            pt.last_ts = t;
            pt.last_at = reading.ts;
            pt.value = reading.value;
            pt.quality = reading.quality;
            pt.seen_at = n;
            // The point's agent comes from its birth (or its first reading); transitions of a
            // reading name the reading's agent.
            if pt.agent.is_none() {
                pt.agent = Some(agent.clone());
            }
        }
        // 3. Judge it.
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            queue,
            zones,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        let pt = &points[p as usize];
        let mut timers = false;
        for &bi in &pt.bindings {
            let b = &mut bindings[bi as usize];
            w.judge_binding(bi, b, t, src, true, out);
            let d = w.binding_deadline(b);
            timers |=
                d != NONE && !matches!(w.rules[b.rule as usize].kind, Kind::MissingData { .. });
            schedule(queue, &mut b.queued, d, Timer::Binding(bi));
        }
        for &zi in &pt.zones {
            let z = &mut zones[zi as usize];
            w.judge_zone(bindings, z, t, src, Some(p), out);
            let d = w.zone_deadline(z);
            schedule(queue, &mut z.queued, d, Timer::Zone(zi));
        }
        let _ = w;
        if points[p as usize].timers != timers {
            points[p as usize].timers = timers;
        }
    }

    /// Fire the point's binding and zone deadlines up to `t` (event time), on its current value.
    fn advance_point(
        &mut self,
        p: u32,
        t: i64,
        agent: Option<&AgentId>,
        out: &mut Vec<Transition>,
    ) {
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            queue,
            zones,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        let pt = &points[p as usize];
        for &bi in &pt.bindings {
            let b = &mut bindings[bi as usize];
            if matches!(w.rules[b.rule as usize].kind, Kind::MissingData { .. }) {
                continue; // gateway clock, not event time
            }
            for _ in 0..4 {
                let d = w.binding_deadline(b);
                if d == NONE || d > t {
                    break;
                }
                let src = Src {
                    at: ts(d),
                    agent,
                    late: false,
                    timer: true,
                };
                w.judge_binding(bi, b, d, src, false, out);
                if w.binding_deadline(b) == d {
                    break;
                }
            }
        }
        for &zi in &pt.zones {
            let z = &mut zones[zi as usize];
            for _ in 0..4 {
                let d = w.zone_deadline(z);
                if d == NONE || d > t {
                    break;
                }
                let src = Src {
                    at: ts(d),
                    agent,
                    late: false,
                    timer: true,
                };
                w.judge_zone(bindings, z, d, src, None, out);
                if w.zone_deadline(z) == d {
                    break;
                }
            }
            let d = w.zone_deadline(z);
            schedule(queue, &mut z.queued, d, Timer::Zone(zi));
        }
    }

    pub fn on_agent_status(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        state: AgentState,
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let s = self.site_idx(site);
        let t = ms(&at);
        {
            let link = self.sites[s as usize]
                .agents
                .entry(agent.clone())
                .or_insert_with(|| AgentLink {
                    online: true,
                    last_status: NONE,
                    causes: Vec::new(),
                });
            if t < link.last_status {
                return; // an older status than one already taken
            }
            link.last_status = t;
            link.online = state == AgentState::Online;
        }
        let remap = self.identity_remap();
        self.bind_agents(s, &remap, t, out);
        let causes = self.sites[s as usize]
            .agents
            .get(agent)
            .map(|l| l.causes.clone())
            .unwrap_or_default();
        let Engine {
            rules,
            config,
            sites,
            points,
            agents,
            queue,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        for ci in causes {
            let c = &mut agents[ci as usize];
            w.judge_agent(c, t, at, out);
            let rule = &w.rules[c.rule as usize];
            let d =
                c.m.deadline(rule.on_delay_ms as i64, rule.off_delay_ms as i64);
            schedule(queue, &mut c.queued, d, Timer::Agent(ci));
        }
        // Silent points of an agent that came back: their missing-data timers restart now.
        if state == AgentState::Online {
            let Engine {
                rules,
                config,
                sites,
                points,
                bindings,
                queue,
                ..
            } = self;
            for &p in &sites[s as usize].order {
                let pt = &mut points[p as usize];
                if pt.agent.as_ref() == Some(agent) {
                    pt.seen_at = pt.seen_at.max(t);
                }
            }
            let w = World {
                rules: &rules.rules,
                sites,
                points,
                config,
            };
            for &p in &sites[s as usize].order {
                let pt = &points[p as usize];
                if pt.agent.as_ref() != Some(agent) {
                    continue;
                }
                for &bi in &pt.bindings {
                    let b = &mut bindings[bi as usize];
                    let d = w.binding_deadline(b);
                    schedule(queue, &mut b.queued, d, Timer::Binding(bi));
                }
            }
        }
    }

    /// The active warnings of a site changed: re-judge its points at once on their latest values.
    pub fn set_warnings(
        &mut self,
        site: &SiteId,
        warnings: Vec<ActiveWarning>,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let s = self.site_idx(site);
        let mut warnings = warnings;
        warnings.sort_by(|a, b| a.id.cmp(&b.id));
        if self.sites[s as usize].warnings == warnings {
            return;
        }
        self.sites[s as usize].warnings = warnings;
        let n = ms(&now);
        let order = self.sites[s as usize].order.clone();
        let zone_list = self.sites[s as usize].zones.clone();
        let mut marks: Vec<u32> = Vec::new();
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            queue,
            zones,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        for p in order {
            let pt = &points[p as usize];
            if pt.last_ts == NONE {
                continue;
            }
            let t = n.max(pt.last_ts);
            let src = Src {
                at: ts(t),
                agent: None,
                late: false,
                timer: true,
            };
            if pt.bindings.iter().any(|&bi| {
                !w.rules[bindings[bi as usize].rule as usize]
                    .context
                    .is_empty()
            }) {
                marks.push(p);
            }
            for &bi in &pt.bindings {
                let b = &mut bindings[bi as usize];
                if w.rules[b.rule as usize].context.is_empty() {
                    continue;
                }
                w.judge_binding(bi, b, t, src, false, out);
                let d = w.binding_deadline(b);
                schedule(queue, &mut b.queued, d, Timer::Binding(bi));
            }
        }
        for zi in zone_list {
            let z = &mut zones[zi as usize];
            if w.rules[z.rule as usize].context.is_empty() {
                continue;
            }
            let src = Src {
                at: now,
                agent: None,
                late: false,
                timer: true,
            };
            w.judge_zone(bindings, z, n, src, None, out);
            let d = w.zone_deadline(z);
            schedule(queue, &mut z.queued, d, Timer::Zone(zi));
        }
        // Judgements off the reading path may have started delays: the next reading fires them.
        for p in marks {
            self.points[p as usize].timers = true;
        }
    }

    /// Timers on the gateway clock (missing data, max durations, delays, power-off failure).
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let n = ms(&now);
        // Bounded: every entity is queued at most once, and each pop either fires, moves the
        // entry later than `now`, or drops it.
        let mut budget = self.queue.len() * 4 + 16;
        while let Some(&(d, timer)) = self.queue.first() {
            if d > n || budget == 0 {
                break;
            }
            budget -= 1;
            self.queue.pop_first();
            match timer {
                Timer::Binding(bi) => {
                    let b = &mut self.bindings[bi as usize];
                    b.queued = NONE;
                    let p = b.point;
                    let mut fired = false;
                    {
                        let Engine {
                            rules,
                            config,
                            sites,
                            points,
                            bindings,
                            queue,
                            ..
                        } = self;
                        let w = World {
                            rules: &rules.rules,
                            sites,
                            points,
                            config,
                        };
                        let b = &mut bindings[bi as usize];
                        for _ in 0..4 {
                            let d = w.binding_deadline(b);
                            if d == NONE || d > n {
                                break;
                            }
                            let src = Src {
                                at: ts(d),
                                agent: None,
                                late: false,
                                timer: true,
                            };
                            fired |= w.judge_binding(bi, b, d, src, false, out);
                            if w.binding_deadline(b) == d {
                                break;
                            }
                        }
                        let d = w.binding_deadline(b);
                        if d > n {
                            schedule(queue, &mut b.queued, d, Timer::Binding(bi));
                        }
                    }
                    self.points[p as usize].timers = true;
                    if fired && self.bindings[bi as usize].live {
                        // Zones that look at this point's causes.
                        let zl = self.points[p as usize].zones.clone();
                        let t = self.points[p as usize].last_ts.max(n);
                        let Engine {
                            rules,
                            config,
                            sites,
                            points,
                            bindings,
                            queue,
                            zones,
                            ..
                        } = self;
                        let w = World {
                            rules: &rules.rules,
                            sites,
                            points,
                            config,
                        };
                        for zi in zl {
                            let z = &mut zones[zi as usize];
                            let src = Src {
                                at: ts(t),
                                agent: None,
                                late: false,
                                timer: true,
                            };
                            w.judge_zone(bindings, z, t, src, Some(p), out);
                            let d = w.zone_deadline(z);
                            schedule(queue, &mut z.queued, d, Timer::Zone(zi));
                        }
                    }
                }
                Timer::Zone(zi) => {
                    self.zones[zi as usize].queued = NONE;
                    let Engine {
                        rules,
                        config,
                        sites,
                        points,
                        bindings,
                        queue,
                        zones,
                        ..
                    } = self;
                    let w = World {
                        rules: &rules.rules,
                        sites,
                        points,
                        config,
                    };
                    let z = &mut zones[zi as usize];
                    for _ in 0..4 {
                        let d = w.zone_deadline(z);
                        if d == NONE || d > n {
                            break;
                        }
                        let src = Src {
                            at: ts(d),
                            agent: None,
                            late: false,
                            timer: true,
                        };
                        w.judge_zone(bindings, z, d, src, None, out);
                        if w.zone_deadline(z) == d {
                            break;
                        }
                    }
                    let d = w.zone_deadline(z);
                    if d > n {
                        schedule(queue, &mut z.queued, d, Timer::Zone(zi));
                    }
                }
                Timer::Agent(ci) => {
                    let Engine {
                        rules,
                        config,
                        sites,
                        points,
                        agents,
                        queue,
                        ..
                    } = self;
                    let w = World {
                        rules: &rules.rules,
                        sites,
                        points,
                        config,
                    };
                    let c = &mut agents[ci as usize];
                    c.queued = NONE;
                    if !c.live {
                        continue;
                    }
                    let rule = &w.rules[c.rule as usize];
                    let (on, off) = (rule.on_delay_ms as i64, rule.off_delay_ms as i64);
                    let d = c.m.deadline(on, off);
                    if d != NONE && d <= n {
                        w.judge_agent(c, d, ts(d), out);
                    }
                    let d = c.m.deadline(on, off);
                    if d > n {
                        schedule(queue, &mut c.queued, d, Timer::Agent(ci));
                    }
                }
            }
        }
    }

    /// The earliest time `tick` has something to do, if any (it may find nothing to do then:
    /// a timer whose point spoke since is moved on lazily).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.queue.first().map(|&(d, _)| ts(d))
    }

    /// Swap rules; causes of changed/removed rules are re-judged on latest values (a removed
    /// rule clears its open causes).
    pub fn reload(&mut self, rules: RuleSet, now: Timestamp, out: &mut Vec<Transition>) {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let n = ms(&now);
        let remap: Remap = self
            .rules
            .rules
            .iter()
            .map(|old| {
                rules
                    .rules
                    .binary_search_by(|r| r.id.cmp(&old.id))
                    .ok()
                    .map(|i| (i as u32, rules.rules[i].version == old.version))
            })
            .collect();
        let old_rules = std::mem::replace(&mut self.rules, rules);
        // Clears of removed rules must be written with the old rule; do them first.
        self.clear_removed(&old_rules, &remap, now, out);
        for s in 0..self.sites.len() as u32 {
            self.rebind_site(s, &remap, n, out);
        }
        self.settle_restored(now, out);
    }

    /// Clear the open causes of rules that are gone, and drop their state.
    fn clear_removed(
        &mut self,
        old: &RuleSet,
        remap: &Remap,
        now: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        let mut gone: Vec<Transition> = Vec::new();
        for (bi, b) in self.bindings.iter_mut().enumerate().filter(|(_, b)| b.live) {
            if remap[b.rule as usize].is_none() {
                self.free_bindings.push(bi as u32);
                let p = &self.points[b.point as usize];
                if let Some(o) = b.m.open {
                    let rule = &old.rules[b.rule as usize];
                    gone.push(removal(
                        rule,
                        &self.sites[p.site as usize].id,
                        Subject::Point {
                            point: p.id.clone(),
                        },
                        o,
                        p.agent.clone(),
                        Some(p),
                        now,
                    ));
                }
                b.live = false;
            }
        }
        for z in self.zones.iter_mut().filter(|z| z.live) {
            if remap[z.rule as usize].is_none() {
                if let Some(o) = z.m.open {
                    let rule = &old.rules[z.rule as usize];
                    gone.push(removal(
                        rule,
                        &self.sites[z.site as usize].id,
                        Subject::Zone {
                            zone: z.zone.clone(),
                        },
                        o,
                        None,
                        None,
                        now,
                    ));
                }
                z.live = false;
            }
        }
        for c in self.agents.iter_mut().filter(|c| c.live) {
            if remap[c.rule as usize].is_none() {
                if let Some(o) = c.m.open {
                    let rule = &old.rules[c.rule as usize];
                    gone.push(removal(
                        rule,
                        &self.sites[c.site as usize].id,
                        Subject::Agent {
                            agent: c.agent.clone(),
                        },
                        o,
                        Some(c.agent.clone()),
                        None,
                        now,
                    ));
                }
                c.live = false;
            }
        }
        gone.sort_by(|a, b| a.cause.cmp(&b.cause));
        out.extend(gone);
        // Drop dead bindings from their points.
        for pt in self.points.iter_mut() {
            let bindings = &self.bindings;
            pt.bindings.retain(|&bi| bindings[bi as usize].live);
            let zones = &self.zones;
            pt.zones.retain(|&zi| zones[zi as usize].live);
        }
        for site in self.sites.iter_mut() {
            let zones = &self.zones;
            site.zones.retain(|&zi| zones[zi as usize].live);
            let agents = &self.agents;
            for l in site.agents.values_mut() {
                l.causes.retain(|&ci| agents[ci as usize].live);
            }
        }
    }

    /// Rebind every point, zone and agent cause of a site.
    fn rebind_site(&mut self, s: u32, remap: &Remap, now: i64, out: &mut Vec<Transition>) {
        let order = self.sites[s as usize].order.clone();
        for p in order {
            self.bind_point(p, remap, now, out);
        }
        self.bind_zones(s, remap, now, out);
        self.bind_agents(s, remap, now, out);
    }

    fn alloc_binding(&mut self, b: Binding) -> u32 {
        if let Some(i) = self.free_bindings.pop() {
            self.bindings[i as usize] = b;
            i
        } else {
            self.bindings.push(b);
            (self.bindings.len() - 1) as u32
        }
    }

    fn restored_open(&mut self, cause: &Cause, levels: Option<&[Level]>) -> Option<Open> {
        let sev = self.restored.remove(cause)?;
        Some(open_for(sev, levels))
    }

    /// (Re)bind one point to the per-point rules that select it now.
    fn bind_point(&mut self, p: u32, remap: &Remap, now: i64, out: &mut Vec<Transition>) {
        let site = &self.sites[self.points[p as usize].site as usize];
        let pt = &self.points[p as usize];
        let spec = pt.spec.as_deref();
        let wanted: Vec<u32> = self
            .rules
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.per_point() && (spec.is_some() || r.catalogue_free()))
            .filter(|(_, r)| {
                selects_site(&r.select, site) && selects_point(&r.select, &pt.id, spec)
            })
            .map(|(i, _)| i as u32)
            .collect();
        let old = std::mem::take(&mut self.points[p as usize].bindings);
        let mut kept: Vec<u32> = Vec::with_capacity(wanted.len());
        let mut rejudge: Vec<u32> = Vec::new();
        let mut cleared: Vec<(u32, Open)> = Vec::new();
        for bi in old {
            let b = &mut self.bindings[bi as usize];
            if !b.live {
                continue;
            }
            match remap.get(b.rule as usize).copied().flatten() {
                Some((nr, same)) if wanted.contains(&nr) => {
                    b.rule = nr;
                    if !same {
                        b.m.up_since = NONE;
                        b.m.down_since = NONE;
                        b.extra = extra_for(&self.rules.rules[nr as usize]);
                        rejudge.push(bi);
                    }
                    kept.push(bi);
                }
                Some((nr, _)) => {
                    // The rule exists but no longer selects this point.
                    if let Some(o) = b.m.open {
                        cleared.push((nr, o));
                    }
                    b.live = false;
                    self.free_bindings.push(bi);
                }
                None => {
                    b.live = false;
                    self.free_bindings.push(bi);
                }
            }
        }
        for (nr, o) in cleared {
            let rule = &self.rules.rules[nr as usize];
            let pt = &self.points[p as usize];
            let site = &self.sites[pt.site as usize];
            out.push(removal(
                rule,
                &site.id,
                Subject::Point {
                    point: pt.id.clone(),
                },
                o,
                pt.agent.clone(),
                Some(pt),
                ts(now),
            ));
        }
        for &nr in &wanted {
            if kept.iter().any(|&bi| self.bindings[bi as usize].rule == nr) {
                continue;
            }
            let rule = &self.rules.rules[nr as usize];
            let cause = Cause {
                rule: rule.id.clone(),
                site: self.sites[self.points[p as usize].site as usize].id.clone(),
                subject: Subject::Point {
                    point: self.points[p as usize].id.clone(),
                },
            };
            let levels = match &rule.kind {
                Kind::Threshold { levels, .. } => Some(levels.clone()),
                _ => None,
            };
            let extra = extra_for(rule);
            let mut m = Machine::new();
            m.open = self.restored_open(&cause, levels.as_deref());
            let bi = self.alloc_binding(Binding {
                rule: nr,
                point: p,
                m,
                extra,
                queued: NONE,
                live: true,
            });
            kept.push(bi);
            rejudge.push(bi);
        }
        kept.sort_by_key(|&bi| self.bindings[bi as usize].rule);
        self.points[p as usize].bindings = kept;
        self.points[p as usize].timers = true;
        // New and changed rules judge the latest value at once.
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            queue,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        let pt = &points[p as usize];
        for bi in rejudge {
            let b = &mut bindings[bi as usize];
            if pt.last_ts != NONE {
                let t = now.max(pt.last_ts);
                let src = Src {
                    at: ts(t),
                    agent: None,
                    late: false,
                    timer: true,
                };
                w.judge_binding(bi, b, t, src, false, out);
            }
            let d = w.binding_deadline(b);
            schedule(queue, &mut b.queued, d, Timer::Binding(bi));
        }
    }

    fn bind_zones(&mut self, s: u32, remap: &Remap, now: i64, out: &mut Vec<Transition>) {
        // What the zones should be now: (rule, zone) -> member point lists.
        let mut want: BTreeMap<(u32, String), Vec<Vec<u32>>> = BTreeMap::new();
        {
            let site = &self.sites[s as usize];
            for (ri, rule) in self.rules.rules.iter().enumerate() {
                if matches!(rule.kind, Kind::Site { .. }) {
                    // A site-level rule: one cause per site, no members.
                    if selects_site(&rule.select, site) {
                        want.insert((ri as u32, SITE_ZONE.to_string()), Vec::new());
                    }
                    continue;
                }
                let Kind::Composite {
                    zone_tag, members, ..
                } = &rule.kind
                else {
                    continue;
                };
                if !selects_site(&rule.select, site) {
                    continue;
                }
                for &p in &site.order {
                    let pt = &self.points[p as usize];
                    let Some(spec) = pt.spec.as_deref() else {
                        continue;
                    };
                    let Some(zone) = spec.tag(zone_tag) else {
                        continue;
                    };
                    for (mi, m) in members.iter().enumerate() {
                        if selects_point(&m.select, &pt.id, Some(spec)) {
                            let e = want
                                .entry((ri as u32, zone.to_string()))
                                .or_insert_with(|| vec![Vec::new(); members.len()]);
                            e[mi].push(p);
                        }
                    }
                }
            }
        }
        let old = std::mem::take(&mut self.sites[s as usize].zones);
        let mut kept: Vec<u32> = Vec::new();
        let mut cleared: Vec<Transition> = Vec::new();
        let mut rejudge: Vec<u32> = Vec::new();
        for zi in old {
            let z = &mut self.zones[zi as usize];
            if !z.live {
                continue;
            }
            let mapped = remap.get(z.rule as usize).copied().flatten();
            let key = mapped.map(|(nr, _)| (nr, z.zone.clone()));
            match key.and_then(|k| want.remove(&k).map(|m| (k, m))) {
                Some(((nr, _), members)) => {
                    z.rule = nr;
                    z.members = members;
                    if mapped.is_some_and(|(_, same)| !same) {
                        z.m.up_since = NONE;
                        z.m.down_since = NONE;
                    }
                    rejudge.push(zi);
                    kept.push(zi);
                }
                None => {
                    if let (Some(o), Some((nr, _))) = (z.m.open, mapped) {
                        let rule = &self.rules.rules[nr as usize];
                        cleared.push(removal(
                            rule,
                            &self.sites[s as usize].id,
                            Subject::Zone {
                                zone: z.zone.clone(),
                            },
                            o,
                            None,
                            None,
                            ts(now),
                        ));
                    }
                    z.live = false;
                }
            }
        }
        out.extend(cleared);
        for ((nr, zone), members) in want {
            let cause = Cause {
                rule: self.rules.rules[nr as usize].id.clone(),
                site: self.sites[s as usize].id.clone(),
                subject: Subject::Zone { zone: zone.clone() },
            };
            let mut m = Machine::new();
            m.open = self.restored_open(&cause, None);
            let zi = self.zones.len() as u32;
            self.zones.push(ZoneSt {
                rule: nr,
                site: s,
                zone,
                members,
                m,
                a_since: NONE,
                trigger: None,
                queued: NONE,
                live: true,
            });
            kept.push(zi);
            rejudge.push(zi);
        }
        // Point -> zone lists.
        for &p in &self.sites[s as usize].order {
            self.points[p as usize].zones.clear();
        }
        for &zi in &kept {
            let z = &self.zones[zi as usize];
            let mut ps: Vec<u32> = z.members.iter().flatten().copied().collect();
            ps.sort_unstable();
            ps.dedup();
            for p in ps {
                self.points[p as usize].zones.push(zi);
            }
        }
        self.sites[s as usize].zones = kept;
        let Engine {
            rules,
            config,
            sites,
            points,
            bindings,
            queue,
            zones,
            ..
        } = self;
        let w = World {
            rules: &rules.rules,
            sites,
            points,
            config,
        };
        for zi in rejudge {
            let z = &mut zones[zi as usize];
            let src = Src {
                at: ts(now),
                agent: None,
                late: false,
                timer: true,
            };
            w.judge_zone(bindings, z, now, src, None, out);
            let d = w.zone_deadline(z);
            schedule(queue, &mut z.queued, d, Timer::Zone(zi));
        }
    }

    fn bind_agents(&mut self, s: u32, remap: &Remap, now: i64, out: &mut Vec<Transition>) {
        let wanted: Vec<u32> = {
            let site = &self.sites[s as usize];
            self.rules
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    matches!(r.kind, Kind::AgentOffline { .. }) && selects_site(&r.select, site)
                })
                .map(|(i, _)| i as u32)
                .collect()
        };
        let agents: Vec<AgentId> = self.sites[s as usize].agents.keys().cloned().collect();
        for agent in agents {
            let old = self.sites[s as usize]
                .agents
                .get_mut(&agent)
                .map(|l| std::mem::take(&mut l.causes))
                .unwrap_or_default();
            let mut kept = Vec::new();
            for ci in old {
                let c = &mut self.agents[ci as usize];
                if !c.live {
                    continue;
                }
                match remap.get(c.rule as usize).copied().flatten() {
                    Some((nr, _)) if wanted.contains(&nr) => {
                        c.rule = nr;
                        kept.push(ci);
                    }
                    other => {
                        if let (Some(o), Some((nr, _))) = (c.m.open, other) {
                            let rule = &self.rules.rules[nr as usize];
                            out.push(removal(
                                rule,
                                &self.sites[s as usize].id,
                                Subject::Agent {
                                    agent: agent.clone(),
                                },
                                o,
                                Some(agent.clone()),
                                None,
                                ts(now),
                            ));
                        }
                        c.live = false;
                    }
                }
            }
            for &nr in &wanted {
                if kept.iter().any(|&ci| self.agents[ci as usize].rule == nr) {
                    continue;
                }
                let cause = Cause {
                    rule: self.rules.rules[nr as usize].id.clone(),
                    site: self.sites[s as usize].id.clone(),
                    subject: Subject::Agent {
                        agent: agent.clone(),
                    },
                };
                let mut m = Machine::new();
                m.open = self.restored_open(&cause, None);
                let ci = self.agents.len() as u32;
                self.agents.push(AgentCause {
                    rule: nr,
                    site: s,
                    agent: agent.clone(),
                    m,
                    queued: NONE,
                    live: true,
                });
                kept.push(ci);
            }
            kept.sort_by_key(|&ci| self.agents[ci as usize].rule);
            if let Some(l) = self.sites[s as usize].agents.get_mut(&agent) {
                l.causes = kept;
            }
        }
    }

    /// The ids of the site's active warnings that shape `rule` now (sorted): what a
    /// transition of the rule at the site would carry in `warnings`. `None` for a rule or a
    /// site the engine does not know.
    pub fn shaping_warnings(&self, rule: &str, site: &SiteId) -> Option<Vec<String>> {
        let &s = self.site_index.get(site)?;
        let rule = self.rules.rules.iter().find(|r| r.id.as_str() == rule)?;
        Some(shaping_warnings(rule, &self.sites[s as usize].warnings))
    }

    /// After a restart: tell the engine which causes have an open incident (and at what
    /// severity), so a standing condition is not raised twice and a clear is not lost.
    pub fn restore_open(&mut self, cause: &Cause, severity: Severity) {
        let Some(&s) = self.site_index.get(&cause.site) else {
            self.restored.insert(cause.clone(), severity);
            return;
        };
        let site = &self.sites[s as usize];
        match &cause.subject {
            Subject::Point { point } => {
                if let Some(p) = site.points.get(point.as_str(), &self.points) {
                    for &bi in &self.points[p as usize].bindings {
                        let b = &mut self.bindings[bi as usize];
                        let rule = &self.rules.rules[b.rule as usize];
                        if rule.id == cause.rule {
                            let levels = match &rule.kind {
                                Kind::Threshold { levels, .. } => Some(levels.as_slice()),
                                _ => None,
                            };
                            b.m.open = Some(open_for(severity, levels));
                            return;
                        }
                    }
                }
            }
            Subject::Zone { zone } => {
                for &zi in &site.zones {
                    let z = &mut self.zones[zi as usize];
                    if &z.zone == zone && self.rules.rules[z.rule as usize].id == cause.rule {
                        z.m.open = Some(open_for(severity, None));
                        return;
                    }
                }
            }
            Subject::Agent { agent } => {
                if let Some(l) = site.agents.get(agent) {
                    for &ci in &l.causes {
                        let c = &mut self.agents[ci as usize];
                        if self.rules.rules[c.rule as usize].id == cause.rule {
                            c.m.open = Some(open_for(severity, None));
                            return;
                        }
                    }
                }
            }
        }
        self.restored.insert(cause.clone(), severity);
    }

    /// Causes currently raised, with severity (sorted by cause). Restored causes that no
    /// rule has taken up yet are included.
    pub fn open_causes(&self) -> Vec<(Cause, Severity)> {
        let mut v: Vec<(Cause, Severity)> = Vec::new();
        for b in self.bindings.iter().filter(|b| b.live) {
            if let Some(o) = b.m.open {
                let p = &self.points[b.point as usize];
                v.push((
                    Cause {
                        rule: self.rules.rules[b.rule as usize].id.clone(),
                        site: self.sites[p.site as usize].id.clone(),
                        subject: Subject::Point {
                            point: p.id.clone(),
                        },
                    },
                    o.severity,
                ));
            }
        }
        for z in self.zones.iter().filter(|z| z.live) {
            if let Some(o) = z.m.open {
                v.push((
                    Cause {
                        rule: self.rules.rules[z.rule as usize].id.clone(),
                        site: self.sites[z.site as usize].id.clone(),
                        subject: Subject::Zone {
                            zone: z.zone.clone(),
                        },
                    },
                    o.severity,
                ));
            }
        }
        for c in self.agents.iter().filter(|c| c.live) {
            if let Some(o) = c.m.open {
                v.push((
                    Cause {
                        rule: self.rules.rules[c.rule as usize].id.clone(),
                        site: self.sites[c.site as usize].id.clone(),
                        subject: Subject::Agent {
                            agent: c.agent.clone(),
                        },
                    },
                    o.severity,
                ));
            }
        }
        v.extend(self.restored.iter().map(|(c, s)| (c.clone(), *s)));
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
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

fn extra_for(rule: &Rule) -> Extra {
    match rule.kind {
        Kind::Rate { .. } => Extra::Rate(VecDeque::new()),
        Kind::SensorFault { .. } => Extra::Fault {
            stuck_since: NONE,
            stuck_value: f64::NAN,
            why: FaultWhy::None,
        },
        Kind::State { .. } => Extra::Active(NONE),
        _ => Extra::None,
    }
}

/// The open state of a restored cause: the highest level of that severity (or below).
fn open_for(sev: Severity, levels: Option<&[Level]>) -> Open {
    let mut level = 0u8;
    let mut threshold = f64::NAN;
    if let Some(levels) = levels {
        let mut best: Option<usize> = None;
        for (i, l) in levels.iter().enumerate() {
            if l.severity <= sev && best.is_none_or(|b| levels[b].severity <= l.severity) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            level = b as u8;
            threshold = levels[b].raise;
        }
    }
    Open {
        severity: sev,
        level,
        threshold,
    }
}

fn removal(
    rule: &Rule,
    site: &SiteId,
    subject: Subject,
    o: Open,
    agent: Option<AgentId>,
    p: Option<&PointSt>,
    now: Timestamp,
) -> Transition {
    Transition {
        cause: Cause {
            rule: rule.id.clone(),
            site: site.clone(),
            subject,
        },
        kind: TransitionKind::Cleared,
        severity: o.severity,
        agent,
        point: p.map(|p| p.id.clone()),
        value: p.and_then(|p| message::value_json(&p.value)),
        threshold: None,
        at: now,
        rule_version: rule.version.clone(),
        message: format!("rule {} removed or no longer applies: cleared", rule.id),
        warnings: Vec::new(),
        quality: p.map(|p| p.quality).unwrap_or_default(),
        late: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(sev: Severity) -> Option<Want> {
        Some(Open {
            severity: sev,
            level: 0,
            threshold: 1.0,
        })
    }

    #[test]
    fn machine_raises_at_once_without_delay_and_escalates() {
        let mut m = Machine::new();
        assert_eq!(m.step(None, 0, 0, 0), None);
        assert_eq!(
            m.step(w(Severity::Alarm), 10, 0, 0).map(|x| x.0),
            Some(TransitionKind::Raised)
        );
        assert_eq!(m.step(w(Severity::Alarm), 20, 0, 0), None);
        assert_eq!(
            m.step(w(Severity::Critical), 30, 0, 0).map(|x| x.0),
            Some(TransitionKind::Escalated)
        );
        assert_eq!(
            m.step(w(Severity::Alarm), 40, 0, 0).map(|x| x.0),
            Some(TransitionKind::Deescalated)
        );
        let (k, o) = m.step(None, 50, 0, 0).unwrap();
        assert_eq!((k, o.severity), (TransitionKind::Cleared, Severity::Alarm));
        assert_eq!(m.deadline(0, 0), NONE);
    }

    #[test]
    fn machine_delays_need_the_condition_without_a_break() {
        let mut m = Machine::new();
        assert_eq!(m.step(w(Severity::Alarm), 0, 100, 50), None);
        assert_eq!(m.deadline(100, 50), 100);
        assert_eq!(
            m.step(None, 60, 100, 50),
            None,
            "a break resets the on-delay"
        );
        assert_eq!(m.deadline(100, 50), NONE);
        assert_eq!(m.step(w(Severity::Alarm), 70, 100, 50), None);
        assert_eq!(
            m.step(w(Severity::Alarm), 170, 100, 50).map(|x| x.0),
            Some(TransitionKind::Raised)
        );
        assert_eq!(m.step(None, 200, 100, 50), None);
        assert_eq!(m.step(None, 249, 100, 50), None);
        assert_eq!(
            m.step(None, 250, 100, 50).map(|x| x.0),
            Some(TransitionKind::Cleared)
        );
    }

    #[test]
    fn point_index_handles_long_ids_and_hash_collisions() {
        let mut points = Vec::new();
        let mut idx = PointIndex::default();
        let ids = ["CH4-101", &"L".repeat(64), "a"];
        for (i, id) in ids.iter().enumerate() {
            let pid = PointId::new(*id).unwrap();
            points.push(PointSt {
                site: 0,
                key: InlineKey::new(id),
                id: pid.clone(),
                agent: None,
                spec: None,
                last_ts: NONE,
                last_at: Timestamp::default(),
                value: Value::Null,
                quality: Quality::Good,
                seen_at: 0,
                timers: false,
                bindings: Vec::new(),
                zones: Vec::new(),
            });
            idx.insert(&pid, i as u32);
        }
        assert_eq!(idx.get("CH4-101", &points), Some(0));
        assert_eq!(idx.get(&"L".repeat(64), &points), Some(1));
        assert_eq!(idx.get(&"L".repeat(63), &points), None);
        assert_eq!(idx.get("CH4-10", &points), None);
        // A forced collision: the second id lands in the overflow map and is still found.
        let mut forced = PointIndex::default();
        let h = forced.id_hash("a");
        forced.by_hash.insert(h, 0); // "a"'s slot taken by point 0 (CH4-101)
        forced.insert(&PointId::new("a").unwrap(), 2);
        assert_eq!(forced.get("a", &points), Some(2));
        assert_eq!(forced.get("CH4-101", &points), None);
    }
}
