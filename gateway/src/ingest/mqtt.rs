//! MQTT ingest: the gateway's subscription on the broker. Messages are handed to the core in
//! order and acknowledged by the core after processing; the event loop keeps being polled
//! while the core is busy, within the bound of [`IngestBuffer`].

use crate::core::handle::Command;
use crate::metrics::Metrics;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use telemetry::TopicScheme;

use tokio_util::sync::CancellationToken;

/// After a failed connection over TLS: read the TLS files again, so a renewed certificate
/// or CA takes effect at the next attempt without a restart. Files that cannot be read now
/// leave the configuration read before in force.
pub fn reload_tls(eventloop: &mut EventLoop, mqtt: &super::mqtt_config::MqttConfig) {
    if !matches!(
        eventloop.mqtt_options.transport(),
        rumqttc::Transport::Tls(_)
    ) {
        return;
    }
    match mqtt.broker() {
        Ok(b) => {
            eventloop.mqtt_options.set_transport(b.transport());
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "TLS files not readable now; keeping the ones read before")
        }
    }
}

/// `mqtt` is the broker's config: its topic prefix, and its TLS files to read again.
#[allow(clippy::too_many_arguments)]
pub async fn run_mqtt_ingest(
    mut eventloop: EventLoop,
    mqtt: super::mqtt_config::MqttConfig,
    max_pending: usize,
    client: AsyncClient,
    core: crate::core::handle::CoreHandle,
    connected: Arc<AtomicBool>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let scheme = TopicScheme::new(mqtt.topic_prefix.clone());
    let mut backoff = retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    // Messages received but not yet handed to the core. The event loop keeps being polled while
    // the core is busy (so keep-alives and acknowledgements go out); the buffer holds at most
    // what the broker has in flight to us unacknowledged (its per-client inflight limit).
    let mut pending = IngestBuffer::new(max_pending);
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = core.reserve_message(), if !pending.is_empty() => {
                match permit {
                    Ok(permit) => {
                        if let Some(p) = pending.pop() {
                            permit.send(Command::Message(p));
                        }
                        continue;
                    }
                    Err(_) => break,
                }
            }
            // At the hard bound, stop reading from the broker until the core catches up.
            r = eventloop.poll(), if !pending.is_full() => r,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                connected.store(true, Ordering::Relaxed);
                metrics.mqtt_connected.set(1);
                tracing::info!(
                    session_present = ack.session_present,
                    "connected to the broker"
                );
                // Subscribe again on every connect: cheap, and right when the broker lost the session.
                for filter in scheme.gateway_subscriptions() {
                    let c = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(filter.clone(), QoS::AtLeastOnce).await {
                            tracing::error!(%filter, error = %e, "subscribe failed");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if !pending.push(p) {
                    metrics
                        .bounds_hit
                        .with_label_values(&["ingest_buffer"])
                        .inc();
                    metrics
                        .ingest_dropped
                        .with_label_values(&["buffer_full"])
                        .inc();
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "broker connection lost");
                }
                metrics.mqtt_connected.set(0);
                reload_tls(&mut eventloop, &mqtt);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
}

/// Messages received from the broker and not yet handed to the core, bounded. QoS 1 and 2
/// messages are bounded by the broker's in-flight window and always kept (they are only
/// acknowledged after processing); beyond `bound`, QoS 0 messages (which the broker does not
/// bound) are dropped and counted. At twice the bound the ingest stops reading from the broker.
pub struct IngestBuffer {
    queue: std::collections::VecDeque<Publish>,
    bound: usize,
}

impl IngestBuffer {
    pub fn new(bound: usize) -> Self {
        IngestBuffer {
            queue: Default::default(),
            bound: bound.max(1),
        }
    }
    /// Keep a message; `false` when it was dropped (QoS 0 beyond the bound).
    pub fn push(&mut self, p: Publish) -> bool {
        if p.qos == QoS::AtMostOnce && self.queue.len() >= self.bound {
            return false;
        }
        self.queue.push_back(p);
        true
    }
    pub fn pop(&mut self) -> Option<Publish> {
        self.queue.pop_front()
    }
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.bound * 2
    }
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(qos: QoS) -> Publish {
        Publish::new("hrs/v1/sites/s/a/readings", qos, b"{}".to_vec())
    }

    /// QoS 0 messages beyond the bound are dropped; QoS 1 messages (bounded by the broker's
    /// in-flight window, acknowledged only after processing) are always kept; at twice the
    /// bound the ingest stops reading.
    #[test]
    fn the_ingest_buffer_drops_only_qos0_beyond_its_bound() {
        let mut b = IngestBuffer::new(3);
        for _ in 0..3 {
            assert!(b.push(msg(QoS::AtMostOnce)));
        }
        assert!(!b.push(msg(QoS::AtMostOnce)), "QoS 0 beyond the bound");
        assert!(!b.is_full());
        for _ in 0..3 {
            assert!(b.push(msg(QoS::AtLeastOnce)), "QoS 1 is kept");
        }
        assert_eq!(b.len(), 6);
        assert!(b.is_full(), "twice the bound: stop reading from the broker");
        assert_eq!(b.pop().map(|p| p.qos), Some(QoS::AtMostOnce), "in order");
        assert!(!b.is_full());
    }
}
