//! Judgement: the [`World`] (rules, sites and points, read-only) judges a point's bindings,
//! a zone's composite or site rule and an agent's cause, and gives their deadlines.

use super::machine::{Open, Want};
use super::motion::{fence_deadline, fence_holds};
use super::select::{
    context_effects, level_values, missing_limit, shaping_warnings, warning_matches,
};
use super::state::{AgentCause, Binding, Extra, FaultWhy, PointSt, SiteSt, ZoneSt};
use super::text::{agent_text, binding_text, site_text, zone_text};
use super::time::{ts, NONE};
use super::EngineConfig;
use crate::api::{ActiveWarning, Cause, Subject, Transition};
use crate::rule::{bump, speed_of, Kind, Level, Member, Mode, PointCondition, Repeats, Rule};
use std::collections::VecDeque;
use telemetry::{AgentId, PointSpec, Quality, Severity, Timestamp, Value};

/// Rate-of-change samples kept per binding (bounded).
const RATE_SAMPLES: usize = 256;

/// Where a judgement comes from, for the transition's fields.
#[derive(Clone, Copy)]
pub(super) struct Src<'a> {
    pub(super) at: Timestamp,
    pub(super) agent: Option<&'a AgentId>,
    pub(super) late: bool,
    /// A clock-driven judgement (timers, warnings, reloads): not a fresh reading.
    pub(super) timer: bool,
}

impl<'a> Src<'a> {
    /// A clock-driven judgement at event time `t` (ms), on behalf of `agent` if any.
    pub(super) fn clock(t: i64, agent: Option<&'a AgentId>) -> Src<'a> {
        Src {
            at: ts(t),
            agent,
            late: false,
            timer: true,
        }
    }
}

/// Threshold: the level wanted for value `v`, given what is open (hysteresis).
#[inline]
fn threshold_want(
    rule: &Rule,
    levels: &[Level],
    v: f64,
    open: Option<Open>,
    ctx: (&[ActiveWarning], Option<&PointSpec>),
    up: u8,
) -> Option<Want> {
    let (warnings, spec) = ctx;
    let plain = rule.context.is_empty();
    let mut best: Option<(usize, f64)> = None;
    let open_level = open.and_then(|o| levels.get(o.level as usize));
    for (i, l) in levels.iter().enumerate() {
        let values = if plain && l.limit.is_none() {
            Some((l.raise, l.clear))
        } else {
            level_values(rule, i, l, warnings, spec)
        };
        let Some((raise, clear)) = values else {
            continue;
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

/// A state became active at `t`: note it among the recent starts and say whether it has now
/// started more than `max_starts` times within the window (the starts kept are bounded).
fn started_often(starts: &mut VecDeque<i64>, t: i64, r: &Repeats) -> bool {
    starts.push_back(t);
    while starts
        .front()
        .is_some_and(|&s| t.saturating_sub(s) >= r.window_ms as i64)
        || starts.len() > r.max_starts as usize + 1
    {
        starts.pop_front();
    }
    starts.len() > r.max_starts as usize
}

/// The cause of a zone's rule (a composite or a site-level rule).
fn zone_cause(rule: &Rule, site: &SiteSt, z: &ZoneSt) -> Cause {
    Cause {
        rule: rule.id.clone(),
        site: site.id.clone(),
        subject: Subject::Zone {
            zone: z.zone.clone(),
        },
    }
}

/// What every judgement reads: the rules, sites and points, and the engine's settings.
#[derive(Clone, Copy)]
pub(super) struct World<'a> {
    pub(super) rules: &'a [Rule],
    pub(super) sites: &'a [SiteSt],
    pub(super) points: &'a [PointSt],
    pub(super) config: &'a EngineConfig,
}

impl World<'_> {
    /// The point's threshold for a missing-data rule, in ms, if it has one.
    fn missing_limit(&self, rule: &Rule, p: &PointSt) -> Option<i64> {
        missing_limit(rule, p, self.config.missing_factor)
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
    pub(super) fn binding_deadline(&self, b: &Binding) -> i64 {
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
                if let Extra::Active { since, .. } = b.extra {
                    if since != NONE && b.m.open.is_some_and(|o| o.severity < *escalate_to) {
                        consider(since.saturating_add(*max as i64));
                    }
                }
            }
            Kind::Geofence(g) => {
                if let Extra::Fence { since } = b.extra {
                    consider(fence_deadline(g, since, b.m.open));
                }
            }
            Kind::DrivingTime(dr) => {
                if let Extra::Driving(st) = &b.extra {
                    consider(st.deadline(dr, b.m.open));
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
        // A window's next edge (event time): a standing condition is raised when it opens and
        // cleared when it closes, without waiting for a reading. Not for missing data (the
        // gateway clock).
        if let Some(w) = &rule.window {
            if p.last_ts != NONE && !matches!(rule.kind, Kind::MissingData { .. }) {
                consider(w.next_edge(p.last_ts.max(b.judged_at)).unwrap_or(NONE));
            }
        }
        d
    }

    /// Judge a binding at `t` on the point's latest value. `reading`: a fresh reading is being
    /// judged (else a timer, warning change or reload).
    pub(super) fn judge_binding(
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
        // Before any early return: a window's next edge is looked for after it.
        b.judged_at = b.judged_at.max(t);
        let on = rule.on_delay_ms as i64;
        let off = rule.off_delay_ms as i64;
        let judgeable = p.quality.judgeable() && p.last_ts != NONE;
        let want: Option<Want> = match &rule.kind {
            Kind::Threshold { levels, .. } => {
                if !judgeable {
                    return false; // bad / calibration: neither raise nor clear
                }
                // A position is judged on its speed.
                let v = p.value.as_f64().or_else(|| speed_of(&p.value));
                let Some(v) = v.filter(|v| v.is_finite()) else {
                    return false;
                };
                let (applies, up) = context_effects(rule, &site.warnings);
                if applies {
                    let ctx = (site.warnings.as_slice(), p.spec.as_deref());
                    threshold_want(rule, levels, v, b.m.open, ctx, up)
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
                    Some(Open::plain(bump(*severity, up)))
                } else {
                    None
                }
            }
            Kind::MissingData {
                severity,
                moving_above_kmh,
                ..
            } => {
                let still =
                    moving_above_kmh.is_some_and(|m| speed_of(&p.value).is_none_or(|s| s <= m));
                if reading || still {
                    None
                } else {
                    match self.missing_limit(rule, p) {
                        Some(limit) if t >= p.seen_at.saturating_add(limit) => {
                            if self.agent_online(p) {
                                Some(Open::plain(*severity))
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
                repeats,
                bits,
                ..
            } => {
                if !judgeable {
                    return false;
                }
                let bv = match bits {
                    Some(mask) => p.value.as_f64().map(|w| (w as u64) & mask != 0),
                    None => p.value.as_bool(),
                };
                let Some(bv) = bv else {
                    return false;
                };
                let Extra::Active {
                    since,
                    starts,
                    often,
                } = &mut b.extra
                else {
                    return false;
                };
                let (applies, up) = context_effects(rule, &site.warnings);
                if bv == *active && applies {
                    if *since == NONE {
                        *since = t;
                        if let Some(r) = repeats {
                            *often = started_often(starts, t, r);
                        }
                    }
                    let sev = match max_duration_ms {
                        _ if *often => *escalate_to,
                        Some(max) if t.saturating_sub(*since) >= *max as i64 => *escalate_to,
                        _ => *severity,
                    };
                    Some(Open::plain(bump(sev, up)))
                } else {
                    *since = NONE;
                    *often = false;
                    None
                }
            }
            Kind::Geofence(g) => {
                if !judgeable {
                    return false;
                }
                let Extra::Fence { since } = &mut b.extra else {
                    return false;
                };
                let before = *since;
                let Some(holds) = fence_holds(g, &p.value, t, since) else {
                    return false;
                };
                b.acc_changed |= g.dwell_ms.is_some() && *since != before;
                let (applies, up) = context_effects(rule, &site.warnings);
                (holds && applies).then_some(Open::plain(bump(g.severity, up)))
            }
            Kind::DrivingTime(dr) => {
                let Extra::Driving(st) = &mut b.extra else {
                    return false;
                };
                let speed = if reading {
                    if !judgeable {
                        return false;
                    }
                    match speed_of(&p.value) {
                        Some(s) => Some(s),
                        None => return false,
                    }
                } else {
                    None
                };
                let before = st.mark();
                st.advance(dr, t, speed);
                b.acc_changed |= st.mark() != before;
                let (applies, up) = context_effects(rule, &site.warnings);
                st.want(dr).filter(|_| applies).map(|(level, max)| Open {
                    severity: bump(dr.severity, up),
                    level,
                    threshold: max as f64,
                })
            }
            Kind::AgentOffline { .. } | Kind::Composite { .. } | Kind::Site { .. } => return false,
        };
        // A time-of-day window: outside it the rule does not hold (event time).
        let want = want.filter(|_| rule.window.as_ref().is_none_or(|w| w.holds(t)));
        let Some((kind, open)) = b.m.step(want, t, on, off) else {
            return false;
        };
        let (threshold, text) = binding_text(
            rule,
            b,
            p,
            &site.warnings,
            self.config.missing_factor,
            kind,
            open,
        );
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
            value: Some(p.value),
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
            PointCondition::BelowLimit(k) => {
                let limit = pt.spec.as_deref().and_then(|s| s.limits.as_ref()?.get(*k));
                judgeable && limit.is_some_and(|l| pt.value.as_f64().is_some_and(|v| v < l))
            }
            PointCondition::Present => true,
        }
    }

    pub(super) fn zone_deadline(&self, z: &ZoneSt) -> i64 {
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

    /// Fire the binding's deadlines that fall at or before `upto`, each judged at its deadline
    /// by the clock (at most four in a row: a deadline that does not move ends the run).
    /// Whether any judgement emitted a transition.
    pub(super) fn fire_binding_due(
        &self,
        bi: u32,
        b: &mut Binding,
        upto: i64,
        agent: Option<&AgentId>,
        out: &mut Vec<Transition>,
    ) -> bool {
        let mut fired = false;
        for _ in 0..4 {
            let d = self.binding_deadline(b);
            if d == NONE || d > upto {
                break;
            }
            fired |= self.judge_binding(bi, b, d, Src::clock(d, agent), false, out);
            if self.binding_deadline(b) == d {
                break;
            }
        }
        fired
    }

    /// Fire the zone's deadlines that fall at or before `upto`, as
    /// [`World::fire_binding_due`] does a binding's.
    pub(super) fn fire_zone_due(
        &self,
        bindings: &[Binding],
        z: &mut ZoneSt,
        upto: i64,
        agent: Option<&AgentId>,
        out: &mut Vec<Transition>,
    ) {
        for _ in 0..4 {
            let d = self.zone_deadline(z);
            if d == NONE || d > upto {
                break;
            }
            self.judge_zone(bindings, z, d, Src::clock(d, agent), None, out);
            if self.zone_deadline(z) == d {
                break;
            }
        }
    }

    pub(super) fn judge_zone(
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
            Mode::AWithoutB => {
                trigger = z.members[0].first().copied();
                trigger.is_some() && z.members[1].is_empty()
            }
        };
        let in_window = rule.window.as_ref().is_none_or(|w| w.holds(t));
        let want = (cond && applies && in_window).then_some(Open::plain(bump(*severity, up)));
        if trigger.is_some() {
            z.trigger = trigger;
        }
        let Some((kind, open)) =
            z.m.step(want, t, rule.on_delay_ms as i64, rule.off_delay_ms as i64)
        else {
            return false;
        };
        let tp = z.trigger.or(cause_point).map(|p| &self.points[p as usize]);
        let text = zone_text(rule, z, members, mode, *within_ms, kind, tp, self.points);
        out.push(Transition {
            cause: zone_cause(rule, site, z),
            kind,
            severity: open.severity,
            agent: src
                .agent
                .cloned()
                .or_else(|| tp.and_then(|p| p.agent.clone())),
            point: tp.map(|p| p.id.clone()),
            value: tp.map(|p| p.value),
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
        let want = applies.then_some(Open::plain(bump(severity, up)));
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
        let text = site_text(label, kind, &matching);
        out.push(Transition {
            cause: zone_cause(rule, site, z),
            kind,
            severity: open.severity,
            agent: None,
            point: None,
            value: magnitude.map(Value::Number),
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

    pub(super) fn judge_agent(
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
        let want = (!online).then_some(Open::plain(severity));
        let Some((kind, open)) =
            c.m.step(want, t, rule.on_delay_ms as i64, rule.off_delay_ms as i64)
        else {
            return false;
        };
        let text = agent_text(&c.agent, kind);
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
