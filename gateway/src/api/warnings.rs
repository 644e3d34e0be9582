//! Weather and earthquake documents posted over HTTP, and the active warnings.

use super::*;

pub(super) async fn post_weather(
    s: &AppState,
    kind: &'static str,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = body.to_vec();
    let outcome = s.core.weather(kind, body).await??;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"taken": true, "outcome": outcome.as_str()})),
    )
        .into_response())
}

pub(super) async fn post_cap(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    post_weather(&s, "cap", body).await
}

pub(super) async fn post_cenc(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    post_weather(&s, "cenc", body).await
}

pub(super) async fn warnings(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(s.live.read().expect("live lock").warnings))
}
