//! Binding rules to what they judge: points, zones and agents, on a birth, a change of site
//! and a reload. Causes whose rule is removed or no longer applies are cleared.

use super::accumulate::{accumulates, restored_extra};
use super::judge::Src;
use super::machine::{Machine, Open};
use super::select::{selects_point, selects_site};
use super::state::{extra_for, AgentCause, AgentLink, Binding, CauseSt, PointSt, SiteSt, ZoneSt};
use super::time::{ms, ts, NONE};
use super::Engine;
use crate::api::{Cause, SiteContext, Subject, Transition, TransitionKind};
use crate::message::Message;
use crate::rule::{Kind, Rule, SITE_ZONE};
use crate::ruleset::RuleSet;
use std::collections::BTreeMap;
use telemetry::{AgentId, Catalogue, PointId, SiteId, Timestamp};

/// What becomes of an old rule index after a swap: new index and whether its version is the same.
pub(super) type Remap = Vec<Option<(u32, bool)>>;

impl Engine {
    pub(super) fn identity_remap(&self) -> Remap {
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
        let (sites, points) = (&self.sites, &self.points);
        let freed = remove_gone(
            &mut self.bindings,
            old,
            remap,
            sites,
            points,
            now,
            &mut gone,
        );
        self.free_bindings.extend(freed);
        remove_gone(&mut self.zones, old, remap, sites, points, now, &mut gone);
        remove_gone(&mut self.agents, old, remap, sites, points, now, &mut gone);
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
    pub(super) fn rebind_site(
        &mut self,
        s: u32,
        remap: &Remap,
        now: i64,
        out: &mut Vec<Transition>,
    ) {
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

    /// (Re)bind one point to the per-point rules that select it now.
    pub(super) fn bind_point(
        &mut self,
        p: u32,
        remap: &Remap,
        now: i64,
        out: &mut Vec<Transition>,
    ) {
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
        // (binding, new rule, how it was open)
        let mut cleared: Vec<(u32, u32, Open)> = Vec::new();
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
                        // A changed rule starts its accumulation afresh; so does what is saved.
                        b.acc_changed = accumulates(&self.rules.rules[nr as usize]);
                        rejudge.push(bi);
                    }
                    kept.push(bi);
                }
                Some((nr, _)) => {
                    // The rule exists but no longer selects this point.
                    if let Some(o) = b.m.open {
                        cleared.push((bi, nr, o));
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
        for (bi, nr, o) in cleared {
            let (rule, b) = (&self.rules.rules[nr as usize], &self.bindings[bi as usize]);
            out.push(removal(rule, b, o, &self.sites, &self.points, ts(now)));
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
            let extra = restored_extra(&mut self.restored_acc, &cause, rule)
                .unwrap_or_else(|| extra_for(rule));
            let mut m = Machine::new();
            m.open = self.restored_open(&cause, levels.as_deref());
            let bi = self.alloc_binding(Binding {
                rule: nr,
                point: p,
                m,
                extra,
                queued: NONE,
                judged_at: NONE,
                live: true,
                acc_changed: false,
            });
            kept.push(bi);
            rejudge.push(bi);
        }
        kept.sort_by_key(|&bi| self.bindings[bi as usize].rule);
        self.points[p as usize].bindings = kept;
        self.points[p as usize].timers = true;
        // New and changed rules judge the latest value at once.
        let mut j = self.split();
        let w = j.w;
        let pt = &w.points[p as usize];
        for bi in rejudge {
            if pt.last_ts != NONE {
                let t = now.max(pt.last_ts);
                let src = Src::clock(t, None);
                w.judge_binding(bi, &mut j.bindings[bi as usize], t, src, false, out);
            }
            j.queue_binding(bi);
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
                        cleared.push(removal(rule, z, o, &self.sites, &self.points, ts(now)));
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
        let mut j = self.split();
        for zi in rejudge {
            j.judge_zone(zi, now, Src::clock(now, None), None, out);
        }
    }

    pub(super) fn bind_agents(
        &mut self,
        s: u32,
        remap: &Remap,
        now: i64,
        out: &mut Vec<Transition>,
    ) {
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
                            out.push(removal(rule, c, o, &self.sites, &self.points, ts(now)));
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
}

/// Retire the live causes in `causes` whose rule is gone from the new rules (`remap`), adding
/// the clears of the open ones (written with the old rule) to `gone`. Returns the indices of
/// the causes retired, in order.
fn remove_gone<C: CauseSt>(
    causes: &mut [C],
    old: &RuleSet,
    remap: &Remap,
    sites: &[SiteSt],
    points: &[PointSt],
    now: Timestamp,
    gone: &mut Vec<Transition>,
) -> Vec<u32> {
    let mut retired = Vec::new();
    for (i, c) in causes.iter_mut().enumerate().filter(|(_, c)| c.is_live()) {
        if remap[c.rule_idx() as usize].is_none() {
            retired.push(i as u32);
            if let Some(o) = c.machine().open {
                let rule = &old.rules[c.rule_idx() as usize];
                gone.push(removal(rule, c, o, sites, points, now));
            }
            c.retire();
        }
    }
    retired
}

/// The clear of cause `c`, open as `o`, whose rule is removed or no longer applies.
fn removal(
    rule: &Rule,
    c: &impl CauseSt,
    o: Open,
    sites: &[SiteSt],
    points: &[PointSt],
    now: Timestamp,
) -> Transition {
    let (site, subject) = c.site_subject(points);
    let p = c.point(points);
    Transition {
        cause: Cause {
            rule: rule.id.clone(),
            site: sites[site as usize].id.clone(),
            subject,
        },
        kind: TransitionKind::Cleared,
        severity: o.severity,
        agent: c.agent(points),
        point: p.map(|p| p.id.clone()),
        value: p.map(|p| p.value),
        threshold: None,
        at: now,
        rule_version: rule.version.clone(),
        message: Message::RuleGone {
            rule: rule.id.clone(),
            maybe_removed: true,
        },
        warnings: Vec::new(),
        quality: p.map(|p| p.quality).unwrap_or_default(),
        late: false,
    }
}
