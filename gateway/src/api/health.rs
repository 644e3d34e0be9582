//! `/readyz`, `/metrics` and the OpenAPI document.

use super::*;

/// Why the gateway is not ready (empty: ready): the checks of `/readyz`, also behind
/// `hrs_gateway_ready`.
async fn not_ready(s: &AppState) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(ms) = s.core_alive.stalled_for_ms(s.limits.core_stall_ms) {
        reasons.push(format!("the core has not turned for {ms} ms"));
    }
    if !s.mqtt_connected.load(Ordering::Relaxed) {
        reasons.push("not connected to the MQTT broker".to_string());
    }
    if !s.store_ok.load(Ordering::Relaxed) {
        reasons.push("store writes are failing".to_string());
    } else if let Err(e) = s.store.ping().await {
        reasons.push(format!("store does not answer: {e}"));
    }
    reasons
}

pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    let reasons = not_ready(&s).await;
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, reasons.join("; ")).into_response()
    }
}

pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let ready = not_ready(&s).await.is_empty();
    s.metrics.gateway_ready.set(i64::from(ready));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}
