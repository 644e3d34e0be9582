//! What a site's points are judged against now: the levels of the threshold rules bound to
//! each point, with the values and severities the site's active warnings give them (a
//! console's site page shows them beside the live values). Read-only.

use super::select::{context_effects, level_values};
use super::Engine;
use crate::rule::{bump, Kind, Side};
use serde::Serialize;
use telemetry::{PointId, Severity, SiteId};

/// Which way a level is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelSide {
    /// Raised at or above `raise`.
    High,
    /// Raised at or below `raise`.
    Low,
}

/// One level a point is judged against now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointLevel {
    /// The rule the level belongs to.
    pub rule: String,
    /// The level's label in the rule file (`power_cut`, `alarm`, ...).
    pub label: String,
    /// Its severity, with the steps the site's active warnings add.
    pub severity: Severity,
    pub side: LevelSide,
    /// The value that raises it (the rule's, or the point's own limit from its catalogue; set
    /// by a warning when `tightened`).
    pub raise: f64,
    /// The value it clears at (hysteresis).
    pub clear: f64,
    /// `raise` is `>=` / `<=` (true) or `>` / `<` (false).
    pub inclusive: bool,
    /// An active warning set `raise` or `clear`.
    pub tightened: bool,
    /// The rule applies now (a rule that holds only under a warning does not without one).
    pub applies: bool,
    /// This level is the one open on the point now.
    pub open: bool,
}

impl Engine {
    /// The threshold levels of each of the site's points that has any, in the order the
    /// points became known and the rules' order. Empty for a site the engine does not know.
    pub fn site_levels(&self, site: &SiteId) -> Vec<(PointId, Vec<PointLevel>)> {
        let Some(&s) = self.site_index.get(site) else {
            return Vec::new();
        };
        let site = &self.sites[s as usize];
        let mut out = Vec::new();
        for &p in &site.order {
            let point = &self.points[p as usize];
            let mut levels = Vec::new();
            for &bi in &point.bindings {
                let b = &self.bindings[bi as usize];
                let rule = &self.rules.rules[b.rule as usize];
                let Kind::Threshold { levels: ls, .. } = &rule.kind else {
                    continue;
                };
                if !b.live {
                    continue;
                }
                let (applies, up) = context_effects(rule, &site.warnings);
                let spec = point.spec.as_deref();
                for (i, l) in ls.iter().enumerate() {
                    // A level taken from the point's own limits, which it has none of: none.
                    let Some((raise, clear)) = level_values(rule, i, l, &site.warnings, spec)
                    else {
                        continue;
                    };
                    let plain = l.values_for(spec);
                    levels.push(PointLevel {
                        rule: rule.id.clone(),
                        label: l.label.clone(),
                        severity: bump(l.severity, up),
                        side: match l.side {
                            Side::High => LevelSide::High,
                            Side::Low => LevelSide::Low,
                        },
                        raise,
                        clear,
                        inclusive: l.inclusive,
                        tightened: plain != Some((raise, clear)),
                        applies,
                        open: b.m.open.is_some_and(|o| o.level as usize == i),
                    });
                }
            }
            if !levels.is_empty() {
                out.push((point.id.clone(), levels));
            }
        }
        out
    }
}
