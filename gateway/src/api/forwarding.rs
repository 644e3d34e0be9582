//! HTTP routes of forwarding: parked deliveries and subscribers (merged into the gateway's
//! router). Errors are JSON `{"error": "..."}`.

use super::ApiError;
use crate::access::{Access, Caller};
use crate::outbox::filter;
use crate::outbox::lane::Target;
use crate::outbox::message::Message;
use crate::outbox::outcome::Outcome;
use crate::outbox::{ForwardError, Forwarding, SubscriberConfig};
use crate::store::event_log::{EventLog, LogReader, Scope};
use crate::store::outbox::Db;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use telemetry::format_time;

/// The routes; merge them into the gateway's router.
pub fn routes(fwd: Forwarding) -> Router {
    Router::new()
        .route("/api/v1/deliveries/parked", get(parked))
        .route("/api/v1/deliveries/parked/{id}/resend", post(resend))
        .route("/api/v1/subscribers", get(subscribers).post(add_subscriber))
        .route(
            "/api/v1/subscribers/{id}",
            get(subscriber).delete(delete_subscriber),
        )
        .route("/api/v1/subscribers/{id}/events", get(subscriber_events))
        .with_state(fwd)
}

impl From<ForwardError> for ApiError {
    fn from(e: ForwardError) -> Self {
        let status = match &e {
            ForwardError::NotFound(_) => StatusCode::NOT_FOUND,
            ForwardError::Conflict(_) => StatusCode::CONFLICT,
            ForwardError::Config(_) => StatusCode::BAD_REQUEST,
            ForwardError::Channel(_) => StatusCode::BAD_GATEWAY,
            ForwardError::Store(_) | ForwardError::Db(_) | ForwardError::Corrupt(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError(status, e.to_string())
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(status, msg.into())
}

#[derive(Deserialize)]
struct ParkedQuery {
    /// `parked` (default), `resent` or `all`.
    state: Option<String>,
    limit: Option<i64>,
}

async fn parked(
    State(f): State<Forwarding>,
    Query(q): Query<ParkedQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let state = match q.state.as_deref().unwrap_or("parked") {
        "all" => None,
        s @ ("parked" | "resent") => Some(s),
        other => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("state {other:?} is not parked, resent or all"),
            ))
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 1000",
        ));
    }
    let list = Db::new(&f.shared.store).parked(state, limit).await?;
    Ok(Json(json!(list)))
}

/// Send a parked delivery again, now, once. 200 when delivered (it becomes `resent`); 502 with
/// the reason when not (it stays parked).
async fn resend(
    State(f): State<Forwarding>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let not_found = || err(StatusCode::NOT_FOUND, format!("no parked delivery {id}"));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let db = Db::new(&f.shared.store);
    let p = db.parked_one(n).await?.ok_or_else(not_found)?;
    if p.state != "parked" {
        return Err(err(
            StatusCode::CONFLICT,
            format!("parked delivery {n} was already resent"),
        ));
    }
    let target = f.targets.get(&p.target).ok_or_else(|| {
        err(
            StatusCode::CONFLICT,
            format!("{} is no longer configured", p.target),
        )
    })?;
    let msg = Message::from_json(&p.body)?;
    let info = f
        .shared
        .live
        .read()
        .expect("live lock")
        .sites
        .get(p.site.as_str())
        .map(|s| s.info.clone());
    let now = f.shared.clock.now();
    let outcome = target
        .channel
        .send(&f.shared, &msg, info.as_ref(), now)
        .await;
    let label = if outcome == Outcome::Delivered {
        "resent"
    } else {
        outcome.label()
    };
    f.shared
        .metrics
        .deliveries
        .with_label_values(&[
            target.kind,
            crate::outbox::pending::target_label(&target.key),
            label,
        ])
        .inc();
    match outcome {
        Outcome::Delivered => {
            db.resend_result(n, true, 0, "", now).await?;
            f.shared.metrics.parked.set(db.parked_count().await?);
            tracing::info!(target = %p.target, id = %p.message_id, "parked delivery resent");
            Ok(Json(
                json!({"id": n, "state": "resent", "message_id": p.message_id, "resent_at": format_time(&now)}),
            ))
        }
        Outcome::Retry { reason, .. } => {
            db.resend_result(n, false, 0, &reason, now).await?;
            Err(err(
                StatusCode::BAD_GATEWAY,
                format!("not delivered (still parked): {reason}"),
            ))
        }
        Outcome::Refused { status, reason } => {
            db.resend_result(n, false, status, &reason, now).await?;
            Err(err(
                StatusCode::BAD_GATEWAY,
                format!("refused again (still parked): {reason}"),
            ))
        }
    }
}

fn subscriber_json(
    s: &crate::store::outbox::StoredSubscriber<SubscriberConfig>,
) -> serde_json::Value {
    let created = chrono::DateTime::from_timestamp_millis(s.created_ms).map(|t| format_time(&t));
    json!({
        "id": s.config.id,
        "name": s.config.name,
        "filter": s.config.filter,
        "channel": s.config.channel.redacted(),
        "source": s.source,
        "created_at": created,
    })
}

async fn subscribers(State(f): State<Forwarding>) -> Result<Json<serde_json::Value>, ApiError> {
    let list = Db::new(&f.shared.store)
        .subscribers::<SubscriberConfig>()
        .await?;
    Ok(Json(json!(list
        .iter()
        .map(subscriber_json)
        .collect::<Vec<_>>())))
}

async fn subscriber(
    State(f): State<Forwarding>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = Db::new(&f.shared.store)
        .subscriber(&id)
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no subscriber {id}")))?;
    Ok(Json(subscriber_json(&s)))
}

async fn add_subscriber(
    State(f): State<Forwarding>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut s: SubscriberConfig = serde_json::from_slice(&body)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    let now = f.shared.clock.now();
    if s.id.is_empty() {
        // Derived from the clock and the body: no hidden randomness.
        use sha2::{Digest, Sha256};
        let d = Sha256::new()
            .chain_update(&body)
            .chain_update(now.timestamp_nanos_opt().unwrap_or(0).to_be_bytes())
            .finalize();
        s.id = format!("sub-{}", &hex::encode(d)[..12]);
    }
    if s.tls().is_some() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "a subscriber added over the API cannot name TLS files; set them in the configuration file",
        ));
    }
    s.validate()?;
    s.check_host(&f.shared.config.subscriber_hosts)?;
    let db = Db::new(&f.shared.store);
    if !db.add_subscriber(&s.id, &s, now).await? {
        return Err(ForwardError::Conflict(format!("subscriber {} exists", s.id)).into());
    }
    match Target::subscriber(&s, &f.shared) {
        Ok(Some(t)) => {
            tokio::spawn(f.targets.add(t));
        }
        Ok(None) => {}
        Err(e) => {
            let _ = db.delete_subscriber(&s.id).await;
            return Err(e.into());
        }
    }
    tracing::info!(subscriber = %s.id, channel = s.channel.kind(), "subscriber added");
    let stored = db
        .subscriber::<SubscriberConfig>(&s.id)
        .await?
        .ok_or_else(|| err(StatusCode::SERVICE_UNAVAILABLE, "subscriber vanished"))?;
    Ok((StatusCode::CREATED, Json(subscriber_json(&stored))).into_response())
}

async fn delete_subscriber(
    State(f): State<Forwarding>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let db = Db::new(&f.shared.store);
    let s = db
        .subscriber::<SubscriberConfig>(&id)
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no subscriber {id}")))?;
    if s.source == "config" {
        return Err(err(
            StatusCode::CONFLICT,
            format!("subscriber {id} is defined in the config file; remove it there"),
        ));
    }
    db.delete_subscriber(&id).await?;
    let key = format!("subscriber:{id}");
    f.targets.remove(&key);
    EventLog::new(&f.shared.store).forget_target(&key).await?;
    tracing::info!(subscriber = %id, "subscriber deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The events a subscriber gets, as Server-Sent Events (`id:` = `event_id`; `Last-Event-ID`
/// resumes). Read from the log, so nothing is skipped however slow the client.
async fn subscriber_events(
    State(f): State<Forwarding>,
    Extension(caller): Extension<Caller>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let db = Db::new(&f.shared.store);
    let s = db
        .subscriber::<SubscriberConfig>(&id)
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no subscriber {id}")))?;
    let rx = f.shared.events.subscribe();
    // An id the log does not hold starts the stream now (never a scan of the whole log).
    let log = EventLog::new(&f.shared.store);
    let from = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(last) => match log.position_of(last).await? {
            Some(pos) => pos,
            None => log.end().await?,
        },
        None => log.end().await?,
    };
    struct St {
        reader: LogReader,
        buf: VecDeque<SseEvent>,
        rx: tokio::sync::broadcast::Receiver<(i64, telemetry::IncidentEvent)>,
    }
    let shared = f.shared.clone();
    let sub = s.config;
    let stream = stream::unfold(
        St {
            reader: log.reader(Scope::All, from, 200),
            buf: VecDeque::new(),
            rx,
        },
        move |mut st| {
            let shared = shared.clone();
            let sub = sub.clone();
            async move {
                loop {
                    if let Some(ev) = st.buf.pop_front() {
                        return Some((Ok(ev), st));
                    }
                    let page = match st.reader.next_page().await {
                        Ok(Some(p)) => p,
                        Ok(None) => {
                            tokio::select! {
                                _ = shared.shutdown.cancelled() => return None,
                                _ = st.rx.recv() => {}
                                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                            }
                            continue;
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    for (_, ev) in page {
                        let info = shared
                            .live
                            .read()
                            .expect("live lock")
                            .sites
                            .get(ev.incident.site.as_str())
                            .map(|s| s.info.clone());
                        let wanted = filter::wants(&sub.filter, &ev, info.as_ref(), |tier| {
                            shared.tiers.get(tier).is_some_and(|m| m.contains(&sub.id))
                        });
                        if wanted {
                            st.buf.push_back(
                                SseEvent::default()
                                    .id(ev.event_id.clone())
                                    .event("incident")
                                    .data(serde_json::to_string(&ev).unwrap_or_default()),
                            );
                        }
                    }
                }
            }
        },
    );
    let stream = stream.take_until(super::access::revoked(access, caller));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
