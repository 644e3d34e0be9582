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

/// The active warnings; the `sites` each touches hold only the caller's. A warning that
/// touches none of them is still listed (warnings are public), with no sites.
pub(super) async fn warnings(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    let seen = access::Visible::of(&caller, &live);
    let mut list = live.warnings.clone();
    for w in &mut list {
        if let Some(sites) = w.get_mut("sites").and_then(|v| v.as_array_mut()) {
            sites.retain(|site| {
                site.as_str()
                    .or_else(|| site.get("site").and_then(|v| v.as_str()))
                    .is_some_and(|id| seen.sees(id))
            });
        }
    }
    Json(json!(list))
}
