//! The platform heartbeat: a signed `POST` every `interval_ms` with the newest position of the
//! event log and the parked count, so the platform can tell a quiet gateway from a dead one.

use super::http::{post, signed};
use crate::outbox::outcome::Outcome;
use crate::outbox::{HeartbeatConfig, Shared};
use std::time::Duration;
use telemetry::format_time;
use tokio_util::sync::CancellationToken;

/// Post a heartbeat every `interval_ms` so the platform can tell a quiet gateway from a dead one.
pub async fn run(
    cfg: HeartbeatConfig,
    gateway: String,
    shared: Shared,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let name = cfg.gateway.clone().unwrap_or(gateway);
    let log = crate::store::event_log::EventLog::new(&shared.store);
    let url = match reqwest::Url::parse(&cfg.url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "heartbeat url; no heartbeats");
            return;
        }
    };
    let client = match crate::outbound::client(&cfg.tls.files(), Duration::from_secs(5)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "heartbeat TLS; no heartbeats");
            return;
        }
    };
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = ticker.tick() => {} }
        let now = shared.clock.now();
        let body = serde_json::json!({
            "kind": "heartbeat",
            "gateway": name,
            "at": format_time(&now),
            "last_event_pos": log.end().await.ok(),
            "parked": shared.metrics.parked.get(),
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let req = client
            .post(url.clone())
            .timeout(Duration::from_millis(cfg.timeout_ms));
        let outcome = post(signed(req, cfg.secret.as_deref(), now, body), false).await;
        shared
            .metrics
            .heartbeats
            .with_label_values(&[if outcome == Outcome::Delivered {
                "delivered"
            } else {
                "failed"
            }])
            .inc();
        if let Outcome::Retry { reason, .. } | Outcome::Refused { reason, .. } = &outcome {
            tracing::debug!(%reason, "heartbeat not taken");
        }
    }
}
