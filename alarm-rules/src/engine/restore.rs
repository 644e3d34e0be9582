//! After a restart: the causes the gateway reports open (`restore_open`), taken up by the
//! causes as they are bound or cleared when no rule takes them up; and the open causes.

use super::machine::Open;
use super::state::CauseSt;
use super::Engine;
use crate::api::{Cause, Subject, Transition, TransitionKind};
use crate::message::Message;
use crate::rule::{Kind, Level};
use telemetry::{Quality, Severity, Timestamp};

impl Engine {
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

    pub(super) fn restored_open(
        &mut self,
        cause: &Cause,
        levels: Option<&[Level]>,
    ) -> Option<Open> {
        let sev = self.restored.remove(cause)?;
        Some(open_for(sev, levels))
    }

    /// Restored causes that no rule takes up: their rule is gone, or their point is named by
    /// a birth and no longer selected by it. Cleared, so no incident stays open for ever.
    pub(super) fn settle_restored(&mut self, now: Timestamp, out: &mut Vec<Transition>) {
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
                message: Message::RuleGone {
                    rule: cause.rule.clone(),
                    maybe_removed: false,
                },
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

    /// Causes currently raised, with severity (sorted by cause). Restored causes that no
    /// rule has taken up yet are included.
    pub fn open_causes(&self) -> Vec<(Cause, Severity)> {
        let mut v: Vec<(Cause, Severity)> = Vec::new();
        // Every subject kind: points (bindings), zones, agents.
        let causes = (self.bindings.iter().map(|b| b as &dyn CauseSt))
            .chain(self.zones.iter().map(|z| z as &dyn CauseSt))
            .chain(self.agents.iter().map(|c| c as &dyn CauseSt));
        for c in causes.filter(|c| c.is_live()) {
            if let Some(o) = c.machine().open {
                let (site, subject) = c.site_subject(&self.points);
                v.push((
                    Cause {
                        rule: self.rules.rules[c.rule_idx() as usize].id.clone(),
                        site: self.sites[site as usize].id.clone(),
                        subject,
                    },
                    o.severity,
                ));
            }
        }
        v.extend(self.restored.iter().map(|(c, s)| (c.clone(), *s)));
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
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
