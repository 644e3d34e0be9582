//! What comes in: readings (the hot path), agent status, warnings and the clock. Each judges
//! the causes it touches and queues their deadlines.

use super::judge::Src;
use super::state::{schedule, AgentLink, Binding, Timer};
use super::time::{ms, ts, NONE};
use super::Engine;
use crate::api::{ActiveWarning, Transition};
use crate::rule::Kind;
use telemetry::{AgentId, AgentState, Reading, SiteId, Timestamp};

impl Engine {
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
            pt.lag = n.saturating_sub(t).max(0);
            // The point's agent comes from its birth (or its first reading); transitions of a
            // reading name the reading's agent.
            if pt.agent.is_none() {
                pt.agent = Some(agent.clone());
            }
        }
        // 3. Judge it.
        let mut j = self.split();
        let w = j.w;
        let pt = &w.points[p as usize];
        let mut timers = false;
        for &bi in &pt.bindings {
            w.judge_binding(bi, &mut j.bindings[bi as usize], t, src, true, out);
            let d = j.queue_binding(bi);
            let rule = &w.rules[j.bindings[bi as usize].rule as usize];
            timers |= d != NONE && !matches!(rule.kind, Kind::MissingData { .. });
        }
        for &zi in &pt.zones {
            j.judge_zone(zi, t, src, Some(p), out);
        }
        if self.points[p as usize].timers != timers {
            self.points[p as usize].timers = timers;
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
        let mut j = self.split();
        let w = j.w;
        let pt = &w.points[p as usize];
        for &bi in &pt.bindings {
            let b = &mut j.bindings[bi as usize];
            if matches!(w.rules[b.rule as usize].kind, Kind::MissingData { .. }) {
                continue; // gateway clock, not event time
            }
            w.fire_binding_due(bi, b, t, agent, out);
        }
        for &zi in &pt.zones {
            w.fire_zone_due(j.bindings, &mut j.zones[zi as usize], t, agent, out);
            j.queue_zone(zi);
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
        let mut j = self.split();
        for ci in causes {
            j.w.judge_agent(&mut j.agents[ci as usize], t, at, out);
            j.queue_agent(ci);
        }
        // Silent points of an agent that came back: their missing-data timers restart now.
        if state == AgentState::Online {
            for &p in &self.sites[s as usize].order {
                let pt = &mut self.points[p as usize];
                if pt.agent.as_ref() == Some(agent) {
                    pt.seen_at = pt.seen_at.max(t);
                }
            }
            let mut j = self.split();
            let w = j.w;
            for &p in &w.sites[s as usize].order {
                let pt = &w.points[p as usize];
                if pt.agent.as_ref() != Some(agent) {
                    continue;
                }
                for &bi in &pt.bindings {
                    j.queue_binding(bi);
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
        let mut j = self.split();
        let w = j.w;
        for p in order {
            let pt = &w.points[p as usize];
            if pt.last_ts == NONE {
                continue;
            }
            let t = n.max(pt.last_ts);
            let src = Src::clock(t, None);
            let shaped = |b: &Binding| !w.rules[b.rule as usize].context.is_empty();
            if pt
                .bindings
                .iter()
                .any(|&bi| shaped(&j.bindings[bi as usize]))
            {
                marks.push(p);
            }
            for &bi in &pt.bindings {
                let b = &mut j.bindings[bi as usize];
                if !shaped(b) {
                    continue;
                }
                w.judge_binding(bi, b, t, src, false, out);
                j.queue_binding(bi);
            }
        }
        for zi in zone_list {
            if w.rules[j.zones[zi as usize].rule as usize]
                .context
                .is_empty()
            {
                continue;
            }
            let src = Src {
                at: now,
                agent: None,
                late: false,
                timer: true,
            };
            j.judge_zone(zi, n, src, None, out);
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
                    // Event-time deadlines (delays, durations, windows) fire on the clock as
                    // late as the point's readings arrive: a backlog (a terminal's blind-area
                    // upload, an agent draining its buffer) is judged by its own readings, not
                    // overtaken by the clock. Before any reading (after a restart) they wait
                    // for one. Missing data is judged on the clock itself.
                    let event_time = !matches!(
                        self.rules.rules[b.rule as usize].kind,
                        Kind::MissingData { .. }
                    );
                    let pt = &self.points[p as usize];
                    let lag = match (event_time, pt.last_ts) {
                        (false, _) => 0,
                        (true, NONE) => continue,
                        (true, _) => pt.lag,
                    };
                    let fired = {
                        let mut j = self.split();
                        let b = &mut j.bindings[bi as usize];
                        let fired =
                            j.w.fire_binding_due(bi, b, n.saturating_sub(lag), None, out);
                        let d = j.w.binding_deadline(b);
                        if d != NONE && d.saturating_add(lag) > n {
                            schedule(
                                j.queue,
                                &mut b.queued,
                                d.saturating_add(lag),
                                Timer::Binding(bi),
                            );
                        }
                        j.note_accumulated(bi);
                        fired
                    };
                    self.points[p as usize].timers = true;
                    if fired && self.bindings[bi as usize].live {
                        // Zones that look at this point's causes.
                        let zl = self.points[p as usize].zones.clone();
                        let t = self.points[p as usize].last_ts.max(n);
                        let mut j = self.split();
                        for zi in zl {
                            j.judge_zone(zi, t, Src::clock(t, None), Some(p), out);
                        }
                    }
                }
                Timer::Zone(zi) => {
                    self.zones[zi as usize].queued = NONE;
                    let j = self.split();
                    let z = &mut j.zones[zi as usize];
                    j.w.fire_zone_due(j.bindings, z, n, None, out);
                    let d = j.w.zone_deadline(z);
                    if d > n {
                        schedule(j.queue, &mut z.queued, d, Timer::Zone(zi));
                    }
                }
                Timer::Agent(ci) => {
                    let j = self.split();
                    let (w, c) = (j.w, &mut j.agents[ci as usize]);
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
                        schedule(j.queue, &mut c.queued, d, Timer::Agent(ci));
                    }
                }
            }
        }
    }
}
