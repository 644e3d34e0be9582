//! The gateway's own incident topic: every incident event, in order, to
//! `{prefix}/incidents/{site}` on the gateway's broker, read from the durable event log.

use crate::metrics::Metrics;
use crate::store::event_log::{EventLog, Scope};
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
    let log = EventLog::new(&store);
    let mut cursor = loop {
        match log.cursor(CURSOR).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, "reading the publisher cursor");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
        }
    };
    loop {
        let mut reader = log.reader(Scope::All, cursor, 200);
        match reader.next_page().await {
            Ok(Some(page)) => {
                let mut handed_all = true;
                for (pos, ev) in page {
                    let topic = scheme.incidents(&ev.incident.site);
                    let body = serde_json::to_vec(&ev).unwrap_or_default();
                    if client
                        .publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .is_err()
                    {
                        handed_all = false;
                        break;
                    }
                    metrics
                        .mqtt_published
                        .with_label_values(&["incident_event"])
                        .inc();
                    cursor = pos;
                }
                if handed_all {
                    // Past unreadable rows at the page's end too.
                    cursor = reader.position();
                }
                if let Err(e) = log.set_cursor(CURSOR, cursor).await {
                    tracing::warn!(error = %e, "saving the publisher cursor");
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading events to publish"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
