//! Dead letters and rule reloads.

use super::*;

#[derive(Deserialize)]
pub(super) struct LimitQuery {
    pub(super) limit: Option<i64>,
}

pub(super) async fn dead_letters(
    State(s): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s
        .store
        .dead_letters(q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(json!(list)))
}

pub(super) async fn reload(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match s.core.reload().await? {
        Ok(n) => Ok(Json(json!({"reloaded": true, "rules": n}))),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}
