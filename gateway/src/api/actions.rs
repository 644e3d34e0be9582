//! Operators' actions on an incident: acknowledge, close, comment, assign, shelve, unshelve.

use super::*;

/// The longest a shelving or an out-of-service may last.
pub(super) const MAX_HOLD: chrono::Duration = chrono::Duration::days(366);

/// The end of a shelving or an out-of-service: `until` (a time with a zone) or `duration_ms`
/// from now; a duration or a time beyond a year from now is a 400, never an overflow.
pub(super) fn until_of(
    s: &AppState,
    until: Option<&str>,
    duration_ms: Option<u64>,
) -> Result<telemetry::Timestamp, ApiError> {
    let now = s.clock.now();
    let until = match (until, duration_ms) {
        (Some(u), _) => parse_time(u).map_err(|e| bad_request(format!("until: {e}")))?,
        (None, Some(ms)) => {
            let ms = i64::try_from(ms)
                .ok()
                .filter(|ms| *ms <= MAX_HOLD.num_milliseconds())
                .ok_or_else(|| bad_request("duration_ms must be at most 366 days"))?;
            now + chrono::Duration::milliseconds(ms)
        }
        (None, None) => return Err(bad_request("until or duration_ms is required")),
    };
    if until > now + MAX_HOLD {
        return Err(bad_request("until must lie within 366 days from now"));
    }
    Ok(until)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionBody {
    pub(super) operator: Option<String>,
    pub(super) note: Option<String>,
    pub(super) text: Option<String>,
    pub(super) assignee: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) until: Option<String>,
    pub(super) duration_ms: Option<u64>,
}

pub(super) fn parse_body(body: &axum::body::Bytes) -> Result<ActionBody, ApiError> {
    if body.is_empty() {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("body: {e}")))
}

pub(super) async fn act(
    s: &AppState,
    id: String,
    action: Action,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let r = s.core.act(id, action).await?;
    Ok(Json(r?.0))
}

pub(super) fn operator(b: &ActionBody) -> Result<String, ApiError> {
    b.operator
        .clone()
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| bad_request("operator is required"))
}

pub(super) async fn ack(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    let action = Action::Ack {
        operator: operator(&b)?,
        note: b.note,
    };
    act(&s, id, action).await
}

pub(super) async fn close(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    if b.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(bad_request(
            "a disposal note is required to close an incident",
        ));
    }
    let action = Action::Close {
        operator: operator(&b)?,
        note: b.note,
    };
    act(&s, id, action).await
}

pub(super) async fn comment(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    let text = b
        .text
        .clone()
        .or(b.note.clone())
        .ok_or_else(|| bad_request("text is required"))?;
    act(
        &s,
        id,
        Action::Comment {
            operator: operator(&b)?,
            text,
        },
    )
    .await
}

pub(super) async fn assign(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    let assignee = b
        .assignee
        .clone()
        .ok_or_else(|| bad_request("assignee is required"))?;
    act(
        &s,
        id,
        Action::Assign {
            operator: operator(&b)?,
            assignee,
        },
    )
    .await
}

pub(super) async fn shelve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    let reason = b
        .reason
        .clone()
        .or(b.note.clone())
        .ok_or_else(|| bad_request("reason is required"))?;
    let until = until_of(&s, b.until.as_deref(), b.duration_ms)?;
    act(
        &s,
        id,
        Action::Shelve {
            operator: operator(&b)?,
            reason,
            until,
        },
    )
    .await
}

pub(super) async fn unshelve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let b = parse_body(&body)?;
    act(
        &s,
        id,
        Action::Unshelve {
            operator: operator(&b)?,
        },
    )
    .await
}
