//! The HTTP API of the contract (axum). Errors are JSON `{"error": "..."}`.

pub mod access;
mod actions;
mod admin;
mod alarm_load;
pub mod config;
pub mod console;
mod error;
mod events;
mod export;
mod figures;
pub mod forwarding;
mod health;
mod incidents;
mod maintenance;
mod overdue;
mod server;
mod sites;
pub mod tls;
mod warnings;

use actions::*;
use admin::*;
use alarm_load::*;
use error::bad_request;
pub use error::ApiError;
use events::*;
use export::*;
use health::*;
use incidents::*;
use maintenance::*;
pub use server::{bounded, serve};
use sites::*;
use warnings::*;

use crate::access::Caller;
use crate::clock::SharedClock;
use crate::core::live::Live;
use crate::core::{Action, CoreError};
use crate::metrics::Metrics;
use crate::store::event_log::{EventLog, Scope};
use crate::store::{IncidentFilter, Store};
use access::{visible, AuditSite, Visible};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
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
    /// Who may see and do what.
    pub access: crate::access::Access,
    /// The language and time zone of what people read.
    pub presentation: presentation::Presentation,
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
        .route("/", get(console::page))
        .route("/console/{file}", get(console::asset))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/sites/{site}/points", get(points))
        .route("/api/v1/sites/{site}/agents", get(agents))
        .route("/api/v1/sites/{site}/points/{point}/trend", get(trend))
        .route("/api/v1/sites/{site}/levels", get(levels))
        .route("/api/v1/positions", get(positions))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents.csv", get(incidents_csv))
        .route("/api/v1/alarm-load", get(alarm_load))
        .route("/api/v1/overdue", get(overdue::overdue))
        .route("/api/v1/figures", get(figures::figures))
        .route("/api/v1/figures.csv", get(figures::figures_csv))
        .route("/api/v1/out-of-service", get(out_of_service_list))
        .route(
            "/api/v1/sites/{site}/points/{point}/out-of-service",
            post(out_of_service).delete(back_in_service),
        )
        .route("/api/v1/incidents/{id}", get(incident))
        .route(
            "/api/v1/incidents/{id}/ack",
            actions::route(actions::Verb::Ack),
        )
        .route(
            "/api/v1/incidents/{id}/close",
            actions::route(actions::Verb::Close),
        )
        .route(
            "/api/v1/incidents/{id}/comment",
            actions::route(actions::Verb::Comment),
        )
        .route(
            "/api/v1/incidents/{id}/assign",
            actions::route(actions::Verb::Assign),
        )
        .route(
            "/api/v1/incidents/{id}/shelve",
            actions::route(actions::Verb::Shelve),
        )
        .route(
            "/api/v1/incidents/{id}/unshelve",
            actions::route(actions::Verb::Unshelve),
        )
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
        .route("/api/v1/login", post(access::login))
        .route("/api/v1/logout", post(access::logout))
        .route("/api/v1/me", get(access::me))
        .route("/api/v1/audit", get(access::audit))
        .route("/api/v1/users", get(access::users).post(access::add_user))
        .route("/api/v1/users/{name}/disable", post(access::disable_user))
        .route(
            "/api/v1/tokens",
            get(access::tokens).post(access::add_token),
        )
        .route("/api/v1/tokens/{name}/revoke", post(access::revoke_token))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}
