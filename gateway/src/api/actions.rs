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
    /// Ignored: the operator is the authenticated caller (kept so older clients still work).
    #[allow(dead_code)]
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

/// Act on an incident the caller sees (404 otherwise, before anything is done); the answer
/// names the incident's site for the audit entry.
pub(super) async fn act(
    s: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> Result<Response, ApiError> {
    let rec = super::incidents::visible_incident(s, caller, &id).await?;
    let r = s.core.act(id, action).await?;
    let mut resp = Json(r?.0).into_response();
    resp.extensions_mut()
        .insert(AuditSite(rec.incident.site.to_string()));
    Ok(resp)
}

/// The operator of an action: the authenticated caller (an `operator` in the body is
/// ignored).
pub(super) fn operator(caller: &Caller) -> String {
    caller.name.clone()
}

pub(super) async fn ack(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let action = Action::Ack {
        operator: operator(&caller),
        note: b.note,
    };
    act(&s, &caller, id, action).await
}

pub(super) async fn close(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    if b.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(bad_request(
            "a disposal note is required to close an incident",
        ));
    }
    let action = Action::Close {
        operator: operator(&caller),
        note: b.note,
    };
    act(&s, &caller, id, action).await
}

pub(super) async fn comment(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let text = b
        .text
        .clone()
        .or(b.note.clone())
        .ok_or_else(|| bad_request("text is required"))?;
    act(
        &s,
        &caller,
        id,
        Action::Comment {
            operator: operator(&caller),
            text,
        },
    )
    .await
}

pub(super) async fn assign(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let assignee = b
        .assignee
        .clone()
        .ok_or_else(|| bad_request("assignee is required"))?;
    act(
        &s,
        &caller,
        id,
        Action::Assign {
            operator: operator(&caller),
            assignee,
        },
    )
    .await
}

pub(super) async fn shelve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let reason = b
        .reason
        .clone()
        .or(b.note.clone())
        .ok_or_else(|| bad_request("reason is required"))?;
    let until = until_of(&s, b.until.as_deref(), b.duration_ms)?;
    act(
        &s,
        &caller,
        id,
        Action::Shelve {
            operator: operator(&caller),
            reason,
            until,
        },
    )
    .await
}

pub(super) async fn unshelve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    parse_body(&body)?;
    act(
        &s,
        &caller,
        id,
        Action::Unshelve {
            operator: operator(&caller),
        },
    )
    .await
}
