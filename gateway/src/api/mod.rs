//! The HTTP API of the contract (axum). Errors are JSON `{"error": "..."}`.

pub mod config;
pub mod forwarding;

use crate::clock::SharedClock;
use crate::core::live::Live;
use crate::core::{Action, CoreError};
use crate::metrics::Metrics;
use crate::store::{IncidentFilter, Store};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use telemetry::{format_time, parse_time, IncidentEvent, TopicScheme};
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct AppState {
    pub core: crate::core::handle::CoreHandle,
    pub store: Store,
    pub live: Arc<RwLock<Live>>,
    pub metrics: Metrics,
    pub events: broadcast::Sender<(i64, IncidentEvent)>,
    pub mqtt_connected: Arc<AtomicBool>,
    pub store_ok: Arc<AtomicBool>,
    pub clock: SharedClock,
    pub scheme: TopicScheme,
    pub limits: HttpLimits,
    /// Server-Sent Event streams open now (bounded by `http.max_sse_streams`).
    pub sse_streams: Arc<tokio::sync::Semaphore>,
    /// The core's heartbeat: gateway-monotonic milliseconds of its last loop turn.
    pub core_alive: Arc<crate::core::Liveness>,
}

/// What the HTTP layer bounds (from `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub csv_row_cap: i64,
    pub max_body_bytes: usize,
    pub max_document_bytes: usize,
    pub core_stall_ms: u64,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/sites/{site}/points", get(points))
        .route("/api/v1/sites/{site}/agents", get(agents))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents.csv", get(incidents_csv))
        .route("/api/v1/alarm-load", get(alarm_load))
        .route("/api/v1/out-of-service", get(out_of_service_list))
        .route(
            "/api/v1/sites/{site}/points/{point}/out-of-service",
            post(out_of_service).delete(back_in_service),
        )
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/incidents/{id}/ack", post(ack))
        .route("/api/v1/incidents/{id}/close", post(close))
        .route("/api/v1/incidents/{id}/comment", post(comment))
        .route("/api/v1/incidents/{id}/assign", post(assign))
        .route("/api/v1/incidents/{id}/shelve", post(shelve))
        .route("/api/v1/incidents/{id}/unshelve", post(unshelve))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/rules/reload", post(reload))
        .route("/api/v1/events", get(events))
        .route(
            "/api/v1/weather/cap",
            post(post_cap).layer(DefaultBodyLimit::max(state.limits.max_document_bytes)),
        )
        .route(
            "/api/v1/weather/cenc",
            post(post_cenc).layer(DefaultBodyLimit::max(state.limits.max_document_bytes)),
        )
        .route("/api/v1/weather/warnings", get(warnings))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use crate::core::lifecycle::ActionError::*;
        let status = match &e {
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Action(NotCleared(_) | AlreadyClosed(_)) => StatusCode::CONFLICT,
            CoreError::Action(_) | CoreError::Refused(_) => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// The longest a shelving or an out-of-service may last.
const MAX_HOLD: chrono::Duration = chrono::Duration::days(366);

/// The end of a shelving or an out-of-service: `until` (a time with a zone) or `duration_ms`
/// from now; a duration or a time beyond a year from now is a 400, never an overflow.
fn until_of(
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

async fn readyz(State(s): State<AppState>) -> Response {
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
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, reasons.join("; ")).into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn sites(State(s): State<AppState>) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    let out: Vec<_> = live
        .sites
        .iter()
        .map(|(id, site)| {
            let online = site.agents.values().any(|a| a.online);
            let last_seen = site.agents.values().filter_map(|a| a.last_seen).max();
            let n = site.agents.len().max(1) as f64;
            let completeness = site.agents.values().map(|a| a.completeness).sum::<f64>() / n;
            json!({
                "id": id, "name": site.info.name, "category": site.info.category, "region": site.info.region,
                "lat": site.info.lat, "lon": site.info.lon,
                "online": online, "last_seen": last_seen.map(|t| format_time(&t)),
                "completeness": if site.agents.is_empty() { 1.0 } else { completeness },
            })
        })
        .collect();
    Json(json!(out))
}

async fn points(
    State(s): State<AppState>,
    Path(site): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = s.live.read().expect("live lock");
    let site = live
        .sites
        .get(site.as_str())
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no site {site}")))?;
    let out: Vec<_> = site
        .points
        .iter()
        .map(|(id, p)| {
            json!({
                "point": id, "agent": p.agent,
                "quantity": p.spec.as_ref().map(|s| s.quantity.to_string()),
                "unit": p.spec.as_ref().map(|s| s.unit.to_string()),
                "location": p.spec.as_ref().and_then(|s| s.location.clone()),
                "name": p.spec.as_ref().and_then(|s| s.name.clone()),
                "value": p.value, "ts": p.ts.map(|t| format_time(&t)), "quality": p.quality, "reason": p.reason,
            })
        })
        .collect();
    Ok(Json(json!(out)))
}

async fn agents(
    State(s): State<AppState>,
    Path(site): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = s.live.read().expect("live lock");
    let site = live
        .sites
        .get(site.as_str())
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no site {site}")))?;
    let out: Vec<_> = site
        .agents
        .iter()
        .map(|(id, a)| json!({"agent": id, "status": a}))
        .collect();
    Ok(Json(json!(out)))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    site: Option<String>,
    severity: Option<String>,
    rule: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    before: Option<String>,
}

/// The filters of the incident list and the CSV export, checked.
fn incident_filter(
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

async fn incidents(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
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
                .ok_or_else(|| bad_request(format!("before: no incident {id}")))?;
            Some((rec.incident.raised_at.timestamp_millis(), id.clone()))
        }
        None => None,
    };
    let filter = incident_filter(&q, before, limit + 1)?;
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

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn incident(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rec = s
        .store
        .incident(&id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no incident {id}")))?;
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    operator: Option<String>,
    note: Option<String>,
    text: Option<String>,
    assignee: Option<String>,
    reason: Option<String>,
    until: Option<String>,
    duration_ms: Option<u64>,
}

fn parse_body(body: &axum::body::Bytes) -> Result<ActionBody, ApiError> {
    if body.is_empty() {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("body: {e}")))
}

impl From<crate::core::handle::AskError> for ApiError {
    fn from(e: crate::core::handle::AskError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

async fn act(
    s: &AppState,
    id: String,
    action: Action,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let r = s.core.act(id, action).await?;
    Ok(Json(r?.0))
}

fn operator(b: &ActionBody) -> Result<String, ApiError> {
    b.operator
        .clone()
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| bad_request("operator is required"))
}

async fn ack(
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

async fn close(
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

async fn comment(
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

async fn assign(
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

async fn shelve(
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

async fn unshelve(
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

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn dead_letters(
    State(s): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s
        .store
        .dead_letters(q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(json!(list)))
}

async fn reload(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match s.core.reload().await? {
        Ok(n) => Ok(Json(json!({"reloaded": true, "rules": n}))),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

async fn events(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Ok(permit) = s.sse_streams.clone().try_acquire_owned() else {
        s.metrics
            .bounds_hit
            .with_label_values(&["sse_streams"])
            .inc();
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams open; try again later".into(),
        ));
    };
    // Subscribe first, then catch up from the store, so nothing falls between the two.
    let live = s.events.subscribe();
    let mut from = None;
    let mut unknown = None;
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        match s.store.event_pos(last).await? {
            Some(pos) => from = Some(pos),
            // An id the log does not hold: the stream starts now, and says so first (never a
            // replay of the whole log).
            None => unknown = Some(last.chars().take(128).collect::<String>()),
        }
    }
    let to_sse = |ev: &IncidentEvent| {
        SseEvent::default()
            .id(ev.event_id.clone())
            .event("incident")
            .data(serde_json::to_string(ev).unwrap_or_default())
    };
    let notice = unknown.map(|id| {
        Ok(SseEvent::default().event("resync").data(
            json!({"reason": "unknown Last-Event-ID; the stream starts now", "last_event_id": id,
                "hint": "GET /api/v1/incidents for what stands"})
            .to_string(),
        ))
    });
    // The backlog, read page by page as the client takes it.
    let store = s.store.clone();
    let backlog_stream = stream::unfold((from, false), move |(pos, done)| {
        let store = store.clone();
        async move {
            let pos = pos?;
            if done {
                return None;
            }
            match store.events_after(pos, 500).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|(p, _)| *p);
                    let full = page.len() == 500;
                    Some((page, (next, !full)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SSE backlog cut short by a store error; the client may resume");
                    None
                }
            }
        }
    })
    .flat_map(stream::iter);
    let resumed = from.is_some();
    let last_seen = Arc::new(std::sync::atomic::AtomicI64::new(from.unwrap_or(i64::MIN)));
    let seen_backlog = last_seen.clone();
    let backlog_stream = backlog_stream.map(move |(pos, ev)| {
        seen_backlog.store(pos, Ordering::Relaxed);
        Ok(to_sse(&ev))
    });
    let live_stream = stream::unfold((live, last_seen), move |(mut rx, last_seen)| async move {
        loop {
            match rx.recv().await {
                Ok((pos, ev)) => {
                    if resumed && pos <= last_seen.load(Ordering::Relaxed) {
                        continue;
                    }
                    return Some((Ok(to_sse(&ev)), (rx, last_seen)));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "SSE client lagged; it may resume with Last-Event-ID"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = stream::iter(notice)
        .chain(backlog_stream)
        .chain(live_stream)
        .map(move |item: Result<SseEvent, Infallible>| {
            let _held = &permit;
            item
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn post_weather(
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

async fn post_cap(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    post_weather(&s, "cap", body).await
}

async fn post_cenc(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    post_weather(&s, "cenc", body).await
}

async fn warnings(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(s.live.read().expect("live lock").warnings))
}

/// One CSV cell. Text that a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return) gets a leading `'`; numbers stay numbers.
fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// The header row of the CSV export.
const CSV_HEADER: &str = "id,site,rule,point,agent,severity,state,value,threshold,raised_at,acked_at,acked_by,cleared_at,closed_at,closed_by,note,message\n";

fn csv_row(i: &telemetry::Incident) -> String {
    let t = |v: &Option<telemetry::Timestamp>| v.map(|t| format_time(&t)).unwrap_or_default();
    let row = [
        i.id.clone(),
        i.site.to_string(),
        i.rule.clone(),
        i.point.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        i.agent.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        i.severity.to_string(),
        i.state.as_str().to_string(),
        i.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        i.threshold.map(|v| v.to_string()).unwrap_or_default(),
        format_time(&i.raised_at),
        t(&i.acked_at),
        i.acked_by.clone().unwrap_or_default(),
        t(&i.cleared_at),
        t(&i.closed_at),
        i.closed_by.clone().unwrap_or_default(),
        i.note.clone().unwrap_or_default(),
        i.message.clone(),
    ];
    let mut line = row
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// `GET /api/v1/incidents.csv?since=&until=&site=&state=&severity=&rule=&limit=`: incidents
/// raised in a period, oldest first, as CSV (UTF-8 with a header row), streamed page by page.
/// At most `http.csv_row_cap` rows (or `limit`, if smaller); the response states the cap in
/// `X-HRS-Row-Cap`: an export of exactly that many rows may go on from its last `raised_at`.
async fn incidents_csv(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let cap = q
        .limit
        .unwrap_or(s.limits.csv_row_cap)
        .clamp(1, s.limits.csv_row_cap);
    const PAGE: i64 = 1000;
    let mut filter = incident_filter(&q, None, PAGE)?;
    filter.ascending = true;
    // The first page before the answer starts, so a store error is still a clean 503.
    let first = s.store.incidents(&filter).await?;
    let store = s.store.clone();
    let body = stream::unfold(
        (Some(first), filter, 0i64, true),
        move |(page, mut filter, sent, head)| {
            let store = store.clone();
            async move {
                if head {
                    let chunk = Ok::<_, std::io::Error>(CSV_HEADER.to_string());
                    return Some((chunk, (page, filter, sent, false)));
                }
                if sent >= cap {
                    return None;
                }
                let page = match page {
                    Some(p) => p,
                    None => match store.incidents(&filter).await {
                        Ok(p) => p,
                        Err(e) => {
                            // The answer has started: end it, and say why in the log.
                            tracing::error!(error = %e, "CSV export cut short by a store error");
                            return None;
                        }
                    },
                };
                if page.is_empty() {
                    return None;
                }
                let take = (cap - sent).min(page.len() as i64) as usize;
                let mut chunk = String::new();
                for i in &page[..take] {
                    chunk.push_str(&csv_row(i));
                }
                if let Some(last) = page.last() {
                    filter.after = Some((last.raised_at.timestamp_millis(), last.id.clone()));
                }
                let more = page.len() as i64 == filter.limit;
                let next = if more { None } else { Some(Vec::new()) };
                Some((Ok(chunk), (next, filter, sent + take as i64, false)))
            }
        },
    );
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"incidents.csv\"",
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-hrs-row-cap", HeaderValue::from(cap));
    Ok(resp)
}

#[derive(Deserialize)]
struct LoadQuery {
    hours: Option<i64>,
}

/// `GET /api/v1/alarm-load?hours=24`: alarm-load figures per site (IEC 62682 / ISA-18.2):
/// incidents raised over the window and per hour, standing incidents, shelved ones, and
/// chattering causes (raised 3 times or more within an hour).
async fn alarm_load(
    State(s): State<AppState>,
    Query(q): Query<LoadQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hours = q.hours.unwrap_or(24).clamp(1, 24 * 31);
    let now = s.clock.now();
    let since = now - chrono::Duration::hours(hours);
    // Bounded: at most `http.csv_row_cap` incidents of each kind are read; the answer says
    // when the window held more (`truncated`).
    let cap = s.limits.csv_row_cap;
    let raised = s
        .store
        .incidents(&IncidentFilter {
            since: Some(since),
            limit: cap + 1,
            ..Default::default()
        })
        .await?;
    let standing = s
        .store
        .incidents(&IncidentFilter {
            state: Some("active".into()),
            limit: cap + 1,
            ..Default::default()
        })
        .await?;
    let acked = s
        .store
        .incidents(&IncidentFilter {
            state: Some("acknowledged".into()),
            limit: cap + 1,
            ..Default::default()
        })
        .await?;
    let truncated = [raised.len(), standing.len(), acked.len()]
        .iter()
        .any(|n| *n as i64 > cap);
    let raised = &raised[..raised.len().min(cap as usize)];
    let standing = &standing[..standing.len().min(cap as usize)];
    let acked = &acked[..acked.len().min(cap as usize)];
    #[derive(Default, serde::Serialize)]
    struct SiteLoad {
        raised: u64,
        per_hour: f64,
        peak_per_10_min: u64,
        standing: u64,
        shelved: u64,
        chattering_causes: Vec<String>,
    }
    let mut sites: std::collections::BTreeMap<String, SiteLoad> = Default::default();
    let mut raises: std::collections::BTreeMap<(String, String), Vec<telemetry::Timestamp>> =
        Default::default();
    for i in raised {
        let e = sites.entry(i.site.to_string()).or_default();
        e.raised += 1;
        let subject = i
            .zone
            .clone()
            .or(i.point.as_ref().map(|p| p.to_string()))
            .or(i.agent.as_ref().map(|a| a.to_string()))
            .unwrap_or_default();
        raises
            .entry((i.site.to_string(), format!("{} {}", i.rule, subject)))
            .or_default()
            .push(i.raised_at);
    }
    for ((site, cause), mut times) in raises {
        times.sort();
        let chatters = times
            .windows(3)
            .any(|w| w[2] - w[0] <= chrono::Duration::hours(1));
        if chatters {
            sites.entry(site).or_default().chattering_causes.push(cause);
        }
    }
    let mut by_site_times: std::collections::BTreeMap<String, Vec<telemetry::Timestamp>> =
        Default::default();
    for i in raised {
        by_site_times
            .entry(i.site.to_string())
            .or_default()
            .push(i.raised_at);
    }
    for (site, mut times) in by_site_times {
        times.sort();
        let mut peak = 0u64;
        let mut start = 0usize;
        for end in 0..times.len() {
            while times[end] - times[start] > chrono::Duration::minutes(10) {
                start += 1;
            }
            peak = peak.max((end - start + 1) as u64);
        }
        sites.entry(site).or_default().peak_per_10_min = peak;
    }
    for i in standing.iter().chain(acked) {
        let e = sites.entry(i.site.to_string()).or_default();
        e.standing += 1;
        if i.shelved_until.is_some_and(|u| u > now) {
            e.shelved += 1;
        }
    }
    for e in sites.values_mut() {
        e.per_hour = e.raised as f64 / hours as f64;
    }
    Ok(Json(
        json!({"hours": hours, "since": format_time(&since), "until": format_time(&now), "truncated": truncated, "sites": sites}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfServiceBody {
    operator: String,
    reason: String,
    until: Option<String>,
    duration_ms: Option<u64>,
}

async fn out_of_service(
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

async fn back_in_service(
    State(s): State<AppState>,
    Path((site, point)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = telemetry::SiteId::new(site).map_err(|e| bad_request(e.to_string()))?;
    let point = telemetry::PointId::new(point).map_err(|e| bad_request(e.to_string()))?;
    set_oos(&s, site, point, String::new(), String::new(), None).await
}

async fn set_oos(
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

async fn out_of_service_list(State(s): State<AppState>) -> Json<serde_json::Value> {
    let live = s.live.read().expect("live lock");
    Json(json!(live.out_of_service.values().collect::<Vec<_>>()))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}

/// What every request goes through: a bound on requests handled at once (503 at once beyond
/// it, counted in `hrs_bounds_hit_total{bound="http_concurrency"}`), a request-body read
/// timeout, and a panic in a handler answered 500 (and logged), never a dropped connection.
pub fn bounded(app: Router, cfg: &config::HttpConfig, metrics: Metrics) -> Router {
    let gate = Arc::new((
        tokio::sync::Semaphore::new(cfg.max_concurrent_requests),
        metrics,
    ));
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let gate = gate.clone();
            async move {
                match gate.0.try_acquire() {
                    Ok(_permit) => next.run(req).await,
                    Err(_) => {
                        gate.1
                            .bounds_hit
                            .with_label_values(&["http_concurrency"])
                            .inc();
                        ApiError(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many requests at once; try again".into(),
                        )
                        .into_response()
                    }
                }
            }
        },
    ))
    .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        Duration::from_millis(cfg.body_read_timeout_ms),
    ))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            tracing::error!("an HTTP handler panicked; answered 500");
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()).into_response()
        },
    ))
}

/// Serve the API until `shutdown`: a client that does not send its request headers within
/// `header_read_timeout_ms` is disconnected (a slow client cannot hold connections open);
/// open connections finish their requests on shutdown (at most 5 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cfg: config::HttpConfig,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms));
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("+86 138"), "'+86 138");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("-cmd|' /C calc'!A0"), "'-cmd|' /C calc'!A0");
        // Numbers stay numbers.
        assert_eq!(csv_field("-1.5"), "-1.5");
        assert_eq!(csv_field("+2"), "+2");
        assert_eq!(csv_field("1.3"), "1.3");
        // Quoting as before.
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=\"x\",y"), "\"'=\"\"x\"\",y\"");
        assert_eq!(csv_field("瓦斯超限"), "瓦斯超限");
    }

    /// Beyond `max_concurrent_requests` requests at once, the next is answered 503 at once and
    /// counted; when one finishes, the next is served again.
    #[tokio::test]
    async fn requests_beyond_the_concurrency_bound_are_shed() {
        use tower::ServiceExt;
        let gate = Arc::new(tokio::sync::Notify::new());
        let waiting = gate.clone();
        let app = Router::new().route(
            "/slow",
            get(move || {
                let waiting = waiting.clone();
                async move {
                    waiting.notified().await;
                    "done"
                }
            }),
        );
        let cfg = config::HttpConfig {
            max_concurrent_requests: 1,
            ..Default::default()
        };
        let metrics = Metrics::new();
        let app = bounded(app, &cfg, metrics.clone());
        let req = || {
            axum::http::Request::get("/slow")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let first = tokio::spawn(app.clone().oneshot(req()));
        // Wait until the first request holds the only slot.
        while Arc::strong_count(&gate) < 3 {
            tokio::task::yield_now().await;
        }
        let shed = app.clone().oneshot(req()).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            metrics
                .bounds_hit
                .with_label_values(&["http_concurrency"])
                .get(),
            1
        );
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        let again = tokio::spawn(app.clone().oneshot(req()));
        while Arc::strong_count(&gate) < 3 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(again.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
