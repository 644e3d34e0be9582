//! Points out of service for maintenance.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutOfServiceBody {
    /// Ignored: the operator is the authenticated caller.
    #[allow(dead_code)]
    pub(super) operator: Option<String>,
    pub(super) reason: String,
    pub(super) until: Option<String>,
    pub(super) duration_ms: Option<u64>,
}

pub(super) async fn out_of_service(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((site, point)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: OutOfServiceBody =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("body: {e}")))?;
    let site = telemetry::SiteId::new(site).map_err(|e| bad_request(e.to_string()))?;
    let point = telemetry::PointId::new(point).map_err(|e| bad_request(e.to_string()))?;
    let until = until_of(&s, b.until.as_deref(), b.duration_ms)?;
    set_oos(&s, &caller, site, point, b.reason, Some(until)).await
}

pub(super) async fn back_in_service(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((site, point)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site = telemetry::SiteId::new(site).map_err(|e| bad_request(e.to_string()))?;
    let point = telemetry::PointId::new(point).map_err(|e| bad_request(e.to_string()))?;
    set_oos(&s, &caller, site, point, String::new(), None).await
}

/// Take a point out of service (`until`) or back in (`None`), on a site the caller sees (404
/// otherwise, as an unknown site).
pub(super) async fn set_oos(
    s: &AppState,
    caller: &Caller,
    site: telemetry::SiteId,
    point: telemetry::PointId,
    reason: String,
    until: Option<telemetry::Timestamp>,
) -> Result<Response, ApiError> {
    if !visible(s, caller).sees(site.as_str()) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no site {site}")));
    }
    let audit = AuditSite(site.to_string());
    let r = s
        .core
        .out_of_service(site, point, caller.name.clone(), reason, until)
        .await??;
    let mut resp = Json(json!({"out_of_service": r})).into_response();
    resp.extensions_mut().insert(audit);
    Ok(resp)
}

pub(super) async fn out_of_service_list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    let seen = access::Visible::of(&caller, &live);
    Json(json!(live
        .out_of_service
        .iter()
        .filter(|((site, _), _)| seen.sees(site.as_str()))
        .map(|(_, o)| o)
        .collect::<Vec<_>>()))
}
