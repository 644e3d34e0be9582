//! Which rules apply to what, and with which values: site and point selectors, the gas of a
//! point, context conditions on active warnings (and the level values they tighten), and the
//! silence a missing-data rule allows a point.

use super::state::{PointSt, SiteSt};
use crate::api::ActiveWarning;
use crate::rule::{ContextRule, Kind, Level, Rule, Selector, Side};
use telemetry::{PointId, PointSpec};

pub(super) fn selects_site(sel: &Selector, site: &SiteSt) -> bool {
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
    if let Some(listed) = sel.emission_reduction_list {
        if site.ctx.emission_reduction_list != listed {
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

pub(super) fn selects_point(sel: &Selector, id: &PointId, spec: Option<&PointSpec>) -> bool {
    if let Some(g) = &sel.point {
        if !g.matches(id.as_str()) {
            return false;
        }
    }
    if !sel.without_tags.is_empty() {
        if let Some(spec) = spec {
            if sel.without_tags.iter().any(|k| spec.tag(k).is_some()) {
                return false;
            }
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

pub(super) fn warning_matches(c: &ContextRule, w: &ActiveWarning) -> bool {
    w.kind == c.warning
        && w.level >= c.min_level
        && c.min_magnitude
            .is_none_or(|m| w.magnitude.is_some_and(|x| x >= m))
}

/// Context effects of the site's active warnings on a rule: (rule applies, severity steps up).
#[inline]
pub(super) fn context_effects(rule: &Rule, warnings: &[ActiveWarning]) -> (bool, u8) {
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

/// Raise and clear values of a level for a point (`spec`: its catalogue entry, whose limits a
/// level may take) under the active warnings; `None` where the level has no value for it.
#[inline]
pub(super) fn level_values(
    rule: &Rule,
    idx: usize,
    level: &Level,
    warnings: &[ActiveWarning],
    spec: Option<&PointSpec>,
) -> Option<(f64, f64)> {
    let (mut raise, mut clear) = level.values_for(spec)?;
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
                if let Some(by) = t.by {
                    let by = match level.side {
                        Side::High => -by,
                        Side::Low => by,
                    };
                    raise += by;
                    clear += by;
                }
            }
        }
    }
    Some((raise, clear))
}

/// The ids of the warnings that shape a rule now (sorted).
pub(super) fn shaping_warnings(rule: &Rule, warnings: &[ActiveWarning]) -> Vec<String> {
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

/// The point's threshold for a missing-data rule, in ms, if it has one.
pub(super) fn missing_limit(rule: &Rule, p: &PointSt, missing_factor: f64) -> Option<i64> {
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
    let f = factor.unwrap_or(missing_factor);
    Some((interval as f64 * f).round() as i64)
}
