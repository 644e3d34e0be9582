//! Sites, their points (live values) and their agents.

use super::*;

pub(super) async fn sites(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    let seen = access::Visible::of(&caller, &live);
    let out: Vec<_> = live
        .sites
        .iter()
        .filter(|(id, _)| seen.sees(id.as_str()))
        .map(|(id, site)| {
            let online = site.agents.values().any(|a| a.online);
            let last_seen = site.agents.values().filter_map(|a| a.last_seen).max();
            let n = site.agents.len().max(1) as f64;
            let completeness = site.agents.values().map(|a| a.completeness).sum::<f64>() / n;
            json!({
                "id": id, "name": site.info.name, "category": site.info.category, "region": site.info.region,
                "region_name": site.info.region.as_ref().and_then(|r| telemetry::regions::full_name(r.as_str())),
                "lat": site.info.lat, "lon": site.info.lon,
                "online": online, "last_seen": last_seen.map(|t| format_time(&t)),
                "completeness": if site.agents.is_empty() { 1.0 } else { completeness },
            })
        })
        .collect();
    Json(json!(out))
}

pub(super) async fn points(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(site): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let lang = s.presentation.language;
    site_answer(&s, &caller, &site, |site| {
        site.points
            .iter()
            .map(|(id, p)| {
                let location = p.spec.as_ref().and_then(|s| s.location.clone());
                json!({
                    "point": id, "agent": p.agent,
                    "quantity": p.spec.as_ref().map(|s| s.quantity.to_string()),
                    "unit": p.spec.as_ref().map(|s| s.unit.to_string()),
                    "location_text": location.as_deref().map(|l| presentation::place_word(l, lang)),
                    "location": location,
                    "name": p.spec.as_ref().and_then(|s| s.name.clone()),
                    "value": p.value, "ts": p.ts.map(|t| format_time(&t)), "quality": p.quality, "reason": p.reason,
                })
            })
            .collect()
    })
}

/// The most positions `GET /api/v1/positions` answers with (a province's fleet).
const POSITIONS_MAX: usize = 20_000;

/// `GET /api/v1/positions`: the last position of every vehicle (a point whose live value is a
/// position) at the sites in the caller's scope, for the console's position plot; at most
/// [`POSITIONS_MAX`], with `truncated` when there were more.
pub(super) async fn positions(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    let seen = access::Visible::of(&caller, &live);
    let all = live
        .sites
        .iter()
        .filter(|(id, _)| seen.sees(id.as_str()))
        .flat_map(|(id, site)| site.points.iter().map(move |(p, live)| (id, p, live)))
        .filter_map(|(site, point, p)| match p.value {
            Some(telemetry::Value::Position(pos)) => Some(json!({
                "site": site, "point": point,
                "name": p.spec.as_ref().and_then(|s| s.name.clone()),
                "vehicle_class": p.spec.as_ref().and_then(|s| s.tag("vehicle_class")),
                "lat": pos.lat, "lon": pos.lon, "speed_kmh": pos.speed_kmh,
                "ts": p.ts.map(|t| format_time(&t)), "quality": p.quality,
            })),
            _ => None,
        });
    let mut out: Vec<_> = all.take(POSITIONS_MAX + 1).collect();
    let truncated = out.len() > POSITIONS_MAX;
    out.truncate(POSITIONS_MAX);
    Json(json!({"positions": out, "truncated": truncated}))
}

/// `GET /api/v1/sites/{site}/levels`: each point with the threshold levels the rules judge it
/// against now, under the site's active warnings (tightened values, severities a step up, a
/// rule that holds only under a warning marked as not applying), and which level is open.
pub(super) async fn levels(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(site): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = {
        let live = s.live.read().expect("live lock");
        visible_site(&live, &caller, &site)?.0.clone()
    };
    let levels = s.core.site_levels(id).await?;
    let lang = s.presentation.language;
    let out: Vec<_> = levels
        .into_iter()
        .map(|(point, levels)| {
            let levels: Vec<_> = levels
                .into_iter()
                .map(|l| {
                    let text = presentation::label_word(&l.label, lang);
                    let mut v = json!(l);
                    v["label_text"] = json!(text);
                    v
                })
                .collect();
            json!({"point": point, "levels": levels})
        })
        .collect();
    Ok(Json(json!(out)))
}

pub(super) async fn agents(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(site): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    site_answer(&s, &caller, &site, |site| {
        site.agents
            .iter()
            .map(|(id, a)| json!({"agent": id, "status": a}))
            .collect()
    })
}

/// What `view` makes of a site the caller sees.
fn site_answer(
    s: &AppState,
    caller: &Caller,
    site: &str,
    view: impl FnOnce(&crate::core::live::SiteLive) -> Vec<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = s.live.read().expect("live lock");
    let (_, found) = visible_site(&live, caller, site)?;
    Ok(Json(json!(view(found))))
}

/// A site the caller sees; one outside its scope is 404, exactly as an unknown one.
fn visible_site<'a>(
    live: &'a Live,
    caller: &Caller,
    site: &str,
) -> Result<(&'a telemetry::SiteId, &'a crate::core::live::SiteLive), ApiError> {
    live.sites
        .get_key_value(site)
        .filter(|(id, _)| Visible::sees_one(caller, live, id))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no site {site}")))
}

/// `GET /api/v1/sites/{site}/points/{point}/trend`: the recent samples the gateway keeps in
/// memory for the point (`core/trend.rs`), oldest first; a site outside the caller's scope,
/// or a point the site does not have, is 404.
pub(super) async fn trend(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((site, point)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::core::trend::{SAMPLES, SLOT_SECS};
    let live = s.live.read().expect("live lock");
    let (_, found) = visible_site(&live, &caller, &site)?;
    let p = found
        .points
        .get(point.as_str())
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no point {point} at {site}")))?;
    let samples: Vec<_> = found
        .trends
        .of(&point)
        .into_iter()
        .flat_map(|ring| ring.samples())
        .map(|x| {
            let at = chrono::DateTime::from_timestamp(i64::from(x.at_s), 0).unwrap_or_default();
            json!({"ts": format_time(&at), "value": x.value})
        })
        .collect();
    Ok(Json(json!({
        "site": site, "point": point,
        "unit": p.spec.as_ref().map(|s| s.unit.to_string()),
        "interval_ms": u64::from(SLOT_SECS) * 1000, "capacity": SAMPLES,
        "samples": samples,
    })))
}
