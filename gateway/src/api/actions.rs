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

/// The operators' actions on an incident, one route each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Ack,
    Close,
    Comment,
    Assign,
    Shelve,
    Unshelve,
}

/// `POST /api/v1/incidents/{id}/<verb>`.
pub(super) fn route(verb: Verb) -> axum::routing::MethodRouter<AppState> {
    post(
        move |State(s): State<AppState>,
              Extension(caller): Extension<Caller>,
              Path(id): Path<String>,
              body: axum::body::Bytes| async move {
            let b = parse_body(&body)?;
            let action = action(verb, &s, caller.name.clone(), b)?;
            act(&s, &caller, id, action).await
        },
    )
}

/// The action a body asks for; `operator` is the authenticated caller (an `operator` in the
/// body is ignored).
fn action(verb: Verb, s: &AppState, operator: String, b: ActionBody) -> Result<Action, ApiError> {
    let required = |v: Option<String>, what: &str| {
        v.filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad_request(what.to_string()))
    };
    Ok(match verb {
        Verb::Ack => Action::Ack {
            operator,
            note: b.note,
        },
        Verb::Close => Action::Close {
            operator,
            note: Some(required(
                b.note,
                "a disposal note is required to close an incident",
            )?),
        },
        Verb::Comment => Action::Comment {
            operator,
            text: required(b.text.or(b.note), "text is required")?,
        },
        Verb::Assign => Action::Assign {
            operator,
            assignee: required(b.assignee, "assignee is required")?,
        },
        Verb::Shelve => Action::Shelve {
            operator,
            reason: required(b.reason.or(b.note), "reason is required")?,
            until: until_of(s, b.until.as_deref(), b.duration_ms)?,
        },
        Verb::Unshelve => Action::Unshelve { operator },
    })
}
