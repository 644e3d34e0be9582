//! Overdue incidents (督办) by region, for the supervising centre: `GET
//! /api/v1/overdue?region=CODE`.

use super::access::Visible;
use super::{ApiError, AppState};
use crate::access::Caller;
use crate::store::IncidentFilter;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub(super) struct OverdueQuery {
    /// A GB/T 2260 prefix (2, 4 or 6 digits): only sites there.
    region: Option<String>,
}

/// Open incidents marked overdue, in the caller's scope, grouped by the region of their site
/// (sites without a region under `""`), oldest first; `truncated` when more open incidents
/// stand than `http.csv_row_cap` (only that many are looked at).
pub(super) async fn overdue(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OverdueQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(r) = &q.region {
        if !(matches!(r.len(), 2 | 4 | 6) && r.bytes().all(|b| b.is_ascii_digit())) {
            return Err(super::error::bad_request(
                "region must be a GB/T 2260 prefix of 2, 4 or 6 digits",
            ));
        }
    }
    let cap = s.limits.csv_row_cap;
    let (sites, regions) = {
        let live = s.live.read().expect("live lock");
        let regions: BTreeMap<String, String> = live
            .sites
            .iter()
            .map(|(id, site)| {
                let region = site.info.region.as_ref().map(|r| r.to_string());
                (id.to_string(), region.unwrap_or_default())
            })
            .collect();
        (Visible::of(&caller, &live).sites(), regions)
    };
    let open = s
        .store
        .incidents(&IncidentFilter {
            state: Some("open".into()),
            sites,
            ascending: true,
            limit: cap + 1,
            ..Default::default()
        })
        .await?;
    let truncated = open.len() as i64 > cap;
    let mut by_region: BTreeMap<String, Vec<&telemetry::Incident>> = BTreeMap::new();
    for i in open.iter().take(cap as usize).filter(|i| i.overdue) {
        let region = regions.get(i.site.as_str()).cloned().unwrap_or_default();
        if q.region
            .as_ref()
            .is_some_and(|p| !region.starts_with(p.as_str()))
        {
            continue;
        }
        by_region.entry(region).or_default().push(i);
    }
    let regions: Vec<_> = by_region
        .into_iter()
        .map(|(region, list)| {
            json!({
                "region": region,
                "region_name": telemetry::regions::full_name(&region),
                "count": list.len(),
                "incidents": list,
            })
        })
        .collect();
    Ok(Json(json!({"truncated": truncated, "regions": regions})))
}
