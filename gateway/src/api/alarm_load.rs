//! Alarm-load figures per site (IEC 62682 / ISA-18.2).

use super::*;

#[derive(Deserialize)]
pub(super) struct LoadQuery {
    pub(super) hours: Option<i64>,
}

/// `GET /api/v1/alarm-load?hours=24`: alarm-load figures per site (IEC 62682 / ISA-18.2):
/// incidents raised over the window and per hour, standing incidents, shelved ones, and
/// chattering causes (raised 3 times or more within an hour).
pub(super) async fn alarm_load(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<LoadQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sites = visible(&s, &caller).sites();
    let hours = q.hours.unwrap_or(24).clamp(1, 24 * 31);
    let now = s.clock.now();
    let since = now - chrono::Duration::hours(hours);
    // Bounded: at most `http.csv_row_cap` incidents of each kind are read; the answer says
    // when the window held more (`truncated`).
    let cap = s.limits.csv_row_cap;
    let raised = s
        .store
        .incidents(&IncidentFilter {
            since: Some(since),
            limit: cap + 1,
            sites: sites.clone(),
            ..Default::default()
        })
        .await?;
    let standing = s
        .store
        .incidents(&IncidentFilter {
            state: Some("active".into()),
            limit: cap + 1,
            sites: sites.clone(),
            ..Default::default()
        })
        .await?;
    let acked = s
        .store
        .incidents(&IncidentFilter {
            state: Some("acknowledged".into()),
            limit: cap + 1,
            sites: sites.clone(),
            ..Default::default()
        })
        .await?;
    let truncated = [raised.len(), standing.len(), acked.len()]
        .iter()
        .any(|n| *n as i64 > cap);
    let raised = &raised[..raised.len().min(cap as usize)];
    let standing = &standing[..standing.len().min(cap as usize)];
    let acked = &acked[..acked.len().min(cap as usize)];
    #[derive(Default, serde::Serialize)]
    struct SiteLoad {
        raised: u64,
        per_hour: f64,
        peak_per_10_min: u64,
        standing: u64,
        shelved: u64,
        chattering_causes: Vec<String>,
    }
    let mut sites: std::collections::BTreeMap<String, SiteLoad> = Default::default();
    let mut raises: std::collections::BTreeMap<(String, String), Vec<telemetry::Timestamp>> =
        Default::default();
    for i in raised {
        let e = sites.entry(i.site.to_string()).or_default();
        e.raised += 1;
        let subject = i
            .zone
            .clone()
            .or(i.point.as_ref().map(|p| p.to_string()))
            .or(i.agent.as_ref().map(|a| a.to_string()))
            .unwrap_or_default();
        raises
            .entry((i.site.to_string(), format!("{} {}", i.rule, subject)))
            .or_default()
            .push(i.raised_at);
    }
    for ((site, cause), times) in raises {
        if telemetry::chatters(&times) {
            sites.entry(site).or_default().chattering_causes.push(cause);
        }
    }
    let mut by_site_times: std::collections::BTreeMap<String, Vec<telemetry::Timestamp>> =
        Default::default();
    for i in raised {
        by_site_times
            .entry(i.site.to_string())
            .or_default()
            .push(i.raised_at);
    }
    for (site, mut times) in by_site_times {
        times.sort();
        let mut peak = 0u64;
        let mut start = 0usize;
        for end in 0..times.len() {
            while times[end] - times[start] > chrono::Duration::minutes(10) {
                start += 1;
            }
            peak = peak.max((end - start + 1) as u64);
        }
        sites.entry(site).or_default().peak_per_10_min = peak;
    }
    for i in standing.iter().chain(acked) {
        let e = sites.entry(i.site.to_string()).or_default();
        e.standing += 1;
        if i.shelved_until.is_some_and(|u| u > now) {
            e.shelved += 1;
        }
    }
    for e in sites.values_mut() {
        e.per_hour = e.raised as f64 / hours as f64;
    }
    Ok(Json(
        json!({"hours": hours, "since": format_time(&since), "until": format_time(&now), "truncated": truncated, "sites": sites}),
    ))
}
