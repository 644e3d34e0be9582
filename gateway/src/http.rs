//! The HTTP API of the contract (axum). Errors are JSON `{"error": "..."}`.

use crate::clock::SharedClock;
use crate::core::{Action, CoreError};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::service::Command;
use crate::store::{IncidentFilter, Store};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use telemetry::{format_time, parse_time, IncidentEvent, TopicScheme};
use tokio::sync::{broadcast, mpsc, oneshot};

#[derive(Clone)]
pub struct AppState {
    pub commands: mpsc::Sender<Command>,
    pub store: Store,
    pub live: Arc<RwLock<Live>>,
    pub metrics: Metrics,
    pub events: broadcast::Sender<(i64, IncidentEvent)>,
    pub mqtt_connected: Arc<AtomicBool>,
    pub store_ok: Arc<AtomicBool>,
    pub clock: SharedClock,
    pub scheme: TopicScheme,
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
        .route("/api/v1/weather/cap", post(post_cap))
        .route("/api/v1/weather/cenc", post(post_cenc))
        .route("/api/v1/weather/warnings", get(warnings))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
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
        use crate::incident::ActionError::*;
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

async fn readyz(State(s): State<AppState>) -> Response {
    let mut reasons = Vec::new();
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

/// Ask the core (the single writer) and wait for its answer: 503 when it is stopping, or when it
/// has not answered within 30 s.
async fn ask<T>(
    s: &AppState,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, ApiError> {
    let unavailable = |m: &str| ApiError(StatusCode::SERVICE_UNAVAILABLE, m.to_string());
    let (tx, rx) = oneshot::channel();
    s.commands
        .send(command(tx))
        .await
        .map_err(|_| unavailable("gateway is stopping"))?;
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .map_err(|_| unavailable("gateway is busy; try again"))?
        .map_err(|_| unavailable("gateway is stopping"))
}

async fn act(
    s: &AppState,
    id: String,
    action: Action,
) -> Result<Json<telemetry::Incident>, ApiError> {
    let r = ask(s, |reply| Command::Act { id, action, reply }).await?;
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
    let until = match (&b.until, b.duration_ms) {
        (Some(u), _) => parse_time(u).map_err(|e| bad_request(format!("until: {e}")))?,
        (None, Some(ms)) => s.clock.now() + chrono::Duration::milliseconds(ms as i64),
        (None, None) => return Err(bad_request("until or duration_ms is required")),
    };
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
    match ask(&s, |reply| Command::Reload { reply }).await? {
        Ok(n) => Ok(Json(json!({"reloaded": true, "rules": n}))),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Subscribe first, then catch up from the store, so nothing falls between the two.
    let live = s.events.subscribe();
    let mut from = None;
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        from = Some(s.store.event_pos(last).await?.unwrap_or(0));
    }
    let mut backlog = Vec::new();
    let mut last_pos = i64::MAX;
    if let Some(mut pos) = from {
        loop {
            let page = s.store.events_after(pos, 500).await?;
            if page.is_empty() {
                break;
            }
            pos = page.last().map(|(p, _)| *p).unwrap_or(pos);
            backlog.extend(page);
        }
        last_pos = pos;
    }
    let to_sse = |ev: &IncidentEvent| {
        SseEvent::default()
            .id(ev.event_id.clone())
            .event("incident")
            .data(serde_json::to_string(ev).unwrap_or_default())
    };
    let backlog_stream = stream::iter(backlog.into_iter().map(move |(_, ev)| Ok(to_sse(&ev))));
    let live_stream = stream::unfold(
        (live, last_pos, from.is_some()),
        move |(mut rx, last_pos, resumed)| async move {
            loop {
                match rx.recv().await {
                    Ok((pos, ev)) => {
                        if resumed && pos <= last_pos {
                            continue;
                        }
                        return Some((Ok(to_sse(&ev)), (rx, last_pos, resumed)));
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
        },
    );
    Ok(Sse::new(backlog_stream.chain(live_stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn post_weather(
    s: &AppState,
    kind: &'static str,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = body.to_vec();
    let outcome = ask(s, |reply| Command::Weather { kind, body, reply }).await??;
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `GET /api/v1/incidents.csv?since=&until=&site=&state=&severity=&rule=`: incidents raised in a
/// period, oldest first, as CSV (UTF-8 with a header row).
async fn incidents_csv(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = incident_filter(&q, None, q.limit.unwrap_or(100_000).clamp(1, 1_000_000))?;
    let mut list = s.store.incidents(&filter).await?;
    list.reverse();
    let mut out = String::from("id,site,rule,point,agent,severity,state,value,threshold,raised_at,acked_at,acked_by,cleared_at,closed_at,closed_by,note,message\n");
    let t = |v: &Option<telemetry::Timestamp>| v.map(|t| format_time(&t)).unwrap_or_default();
    for i in &list {
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
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"incidents.csv\"",
            ),
        ],
        out,
    )
        .into_response())
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
    let raised = s
        .store
        .incidents(&IncidentFilter {
            since: Some(since),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
    let standing = s
        .store
        .incidents(&IncidentFilter {
            state: Some("active".into()),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
    let acked = s
        .store
        .incidents(&IncidentFilter {
            state: Some("acknowledged".into()),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
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
    for i in &raised {
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
    for i in &raised {
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
    for i in standing.iter().chain(&acked) {
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
        json!({"hours": hours, "since": format_time(&since), "until": format_time(&now), "sites": sites}),
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
    let until = match (&b.until, b.duration_ms) {
        (Some(u), _) => parse_time(u).map_err(|e| bad_request(format!("until: {e}")))?,
        (None, Some(ms)) => s.clock.now() + chrono::Duration::milliseconds(ms as i64),
        (None, None) => return Err(bad_request("until or duration_ms is required")),
    };
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
    let r = ask(s, |reply| Command::OutOfService {
        site,
        point,
        by,
        reason,
        until,
        reply,
    })
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
        include_str!("../openapi.json"),
    )
        .into_response()
}
