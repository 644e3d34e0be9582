//! The incident list (filters, paging) and one incident with its history.

use super::*;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    pub(super) state: Option<String>,
    pub(super) site: Option<String>,
    pub(super) severity: Option<String>,
    pub(super) rule: Option<String>,
    pub(super) since: Option<String>,
    pub(super) until: Option<String>,
    pub(super) limit: Option<i64>,
    pub(super) before: Option<String>,
}

/// The filters of the incident list and the CSV export, checked.
pub(super) fn incident_filter(
    seen: &Visible,
    q: &ListQuery,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<IncidentFilter, ApiError> {
    if let Some(st) = &q.state {
        if st != "open" && telemetry::IncidentState::parse(st).is_none() {
            return Err(bad_request(format!(
                "state {st:?} is not open, active, acknowledged, cleared or closed"
            )));
        }
    }
    if let Some(sev) = &q.severity {
        if telemetry::Severity::parse(sev).is_none() {
            return Err(bad_request(format!(
                "severity {sev:?} is not info, warning, alarm or critical"
            )));
        }
    }
    let time = |v: &Option<String>, name: &str| -> Result<_, ApiError> {
        v.as_deref()
            .map(|t| parse_time(t).map_err(|e| bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    Ok(IncidentFilter {
        state: q.state.clone(),
        site: q.site.clone(),
        sites: seen.sites(),
        severity: q.severity.clone(),
        rule: q.rule.clone(),
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
        before,
        after: None,
        ascending: false,
        limit,
    })
}

pub(super) async fn incidents(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let seen = visible(&s, &caller);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("limit must be between 1 and 1000"));
    }
    let before = match &q.before {
        Some(id) => {
            let rec = s
                .store
                .incident(id)
                .await?
                .filter(|r| seen.sees(r.incident.site.as_str()))
                .ok_or_else(|| bad_request(format!("before: no incident {id}")))?;
            Some((rec.incident.raised_at.timestamp_millis(), id.clone()))
        }
        None => None,
    };
    let filter = incident_filter(&seen, &q, before, limit + 1)?;
    let mut list = s.store.incidents(&filter).await?;
    let more = list.len() as i64 > limit;
    list.truncate(limit as usize);
    let mut resp = Json(&list).into_response();
    if more {
        if let Some(last) = list.last() {
            let mut params: Vec<String> = Vec::new();
            for (k, v) in [
                ("state", &q.state),
                ("site", &q.site),
                ("severity", &q.severity),
                ("rule", &q.rule),
                ("since", &q.since),
                ("until", &q.until),
            ] {
                if let Some(v) = v {
                    params.push(format!("{k}={}", urlencode(v)));
                }
            }
            params.push(format!("limit={limit}"));
            params.push(format!("before={}", last.id));
            let link = format!("</api/v1/incidents?{}>; rel=\"next\"", params.join("&"));
            if let Ok(v) = HeaderValue::from_str(&link) {
                resp.headers_mut().insert(header::LINK, v);
            }
        }
    }
    Ok(resp)
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn incident(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rec = visible_incident(&s, &caller, &id).await?;
    let history = s.store.history(&id).await?;
    let mut v = serde_json::to_value(&rec.incident)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    v["history"] = json!(history
        .iter()
        .map(|e| json!({"event": e.event, "event_id": e.event_id, "event_seq": e.event_seq, "at": format_time(&e.at),
            "by": e.by, "tier": e.tier, "severity": e.incident.severity, "state": e.incident.state,
            "value": e.incident.value, "threshold": e.incident.threshold, "message": e.incident.message, "note": e.incident.note}))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

/// An incident the caller sees; one outside its scope is 404, exactly as an unknown one.
pub(super) async fn visible_incident(
    s: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::core::lifecycle::IncidentRecord, ApiError> {
    s.store
        .incident(id)
        .await?
        .filter(|r| visible(s, caller).sees(r.incident.site.as_str()))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no incident {id}")))
}
