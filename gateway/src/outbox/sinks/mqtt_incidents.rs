//! The gateway's own incident topic: every incident event, in order, to
//! `{prefix}/incidents/{site}` on the gateway's broker, read from the durable event log.

use crate::metrics::Metrics;
use crate::store::Store;
use rumqttc::{AsyncClient, QoS};
use std::sync::Arc;
use std::time::Duration;
use telemetry::TopicScheme;
use tokio_util::sync::CancellationToken;

/// Publishes every incident event, in order, to `{prefix}/incidents/{site}` from the durable
/// event log (a cursor in the store marks what was handed to the broker).
pub async fn run_event_publisher(
    store: Store,
    client: AsyncClient,
    scheme: TopicScheme,
    wake: Arc<tokio::sync::Notify>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    const CURSOR: &str = "mqtt_incidents";
    let mut cursor = loop {
        match store.cursor(CURSOR).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, "reading the publisher cursor");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
        }
    };
    loop {
        match store.events_after(cursor, 200).await {
            Ok(events) if !events.is_empty() => {
                for (pos, ev) in events {
                    let topic = scheme.incidents(&ev.incident.site);
                    let body = serde_json::to_vec(&ev).unwrap_or_default();
                    if client
                        .publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    metrics
                        .mqtt_published
                        .with_label_values(&["incident_event"])
                        .inc();
                    cursor = pos;
                }
                if let Err(e) = store.set_cursor(CURSOR, cursor).await {
                    tracing::warn!(error = %e, "saving the publisher cursor");
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading events to publish"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
