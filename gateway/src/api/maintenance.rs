//! Points out of service for maintenance.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutOfServiceBody {
    pub(super) operator: String,
    pub(super) reason: String,
    pub(super) until: Option<String>,
    pub(super) duration_ms: Option<u64>,
}

pub(super) async fn out_of_service(
    State(s): State<AppState>,
    Path((site, point)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: OutOfServiceBody =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("body: {e}")))?;
    let site = telemetry::SiteId::new(site).map_err(|e| bad_request(e.to_string()))?;
    let point = telemetry::PointId::new(point).map_err(|e| bad_request(e.to_string()))?;
    let until = until_of(&s, b.until.as_deref(), b.duration_ms)?;
    set_oos(&s, site, point, b.operator, b.reason, Some(until)).await
}

pub(super) async fn back_in_service(
    State(s): State<AppState>,
    Path((site, point)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = telemetry::SiteId::new(site).map_err(|e| bad_request(e.to_string()))?;
    let point = telemetry::PointId::new(point).map_err(|e| bad_request(e.to_string()))?;
    set_oos(&s, site, point, String::new(), String::new(), None).await
}

pub(super) async fn set_oos(
    s: &AppState,
    site: telemetry::SiteId,
    point: telemetry::PointId,
    by: String,
    reason: String,
    until: Option<telemetry::Timestamp>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = s
        .core
        .out_of_service(site, point, by, reason, until)
        .await??;
    Ok(Json(json!({"out_of_service": r})))
}

pub(super) async fn out_of_service_list(State(s): State<AppState>) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    Json(json!(live.out_of_service.values().collect::<Vec<_>>()))
}
