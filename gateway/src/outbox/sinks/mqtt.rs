//! Other MQTT brokers (upstream platforms, subscribers): publish at QoS 1 and wait for the
//! PUBACK, one message in flight at a time so the order per site is kept.

use crate::outbox::outcome::Outcome;
use crate::outbox::ForwardError;
use broker_link::Broker;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A connection to another broker that publishes at QoS 1 and waits for each PUBACK.
pub struct MqttSink {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    acked_notify: Arc<Notify>,
    connected: Arc<AtomicBool>,
    one_at_a_time: tokio::sync::Mutex<()>,
    timeout: Duration,
}

impl MqttSink {
    /// Connect to `broker` (see [`Broker::resolve`]) as `client_id`, with `credentials` when
    /// the broker asks for them.
    pub fn start(
        broker: &Broker,
        client_id: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
        shutdown: CancellationToken,
    ) -> Result<MqttSink, ForwardError> {
        let mut opts = broker.options(client_id);
        if let Some((user, password)) = credentials {
            opts.set_credentials(user, password);
        }
        opts.set_keep_alive(Duration::from_secs(15))
            .set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let acked = Arc::new(AtomicU64::new(0));
        let acked_notify = Arc::new(Notify::new());
        let connected = Arc::new(AtomicBool::new(false));
        let (a, n, c) = (acked.clone(), acked_notify.clone(), connected.clone());
        let url = format!("{}:{}", broker.host, broker.port);
        tokio::spawn(async move {
            let mut backoff =
                retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            loop {
                let polled = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = eventloop.poll() => r,
                };
                match polled {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        c.store(true, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if c.swap(false, Ordering::Relaxed) {
                            tracing::warn!(%url, error = %e, "upstream broker connection lost");
                        }
                        tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(backoff.next_delay()) => {} }
                    }
                }
            }
        });
        Ok(MqttSink {
            client,
            acked,
            acked_notify,
            connected,
            one_at_a_time: tokio::sync::Mutex::new(()),
            timeout,
        })
    }

    /// Publish and wait for the PUBACK (one message in flight at a time: order is kept).
    pub async fn publish(&self, topic: String, body: Vec<u8>) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        if !self.connected.load(Ordering::Relaxed) {
            tracing::debug!(
                "upstream broker not connected yet; the publish waits for the connection"
            );
        }
        let before = self.acked.load(Ordering::Relaxed);
        let wait = async {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let notified = self.acked_notify.notified();
                if self.acked.load(Ordering::Relaxed) > before {
                    return Ok::<(), String>(());
                }
                notified.await;
            }
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(())) => Outcome::Delivered,
            Ok(Err(e)) => Outcome::Retry {
                reason: format!("publish: {e}"),
                after: None,
            },
            Err(_) => Outcome::Retry {
                reason: format!("no PUBACK within {:?}", self.timeout),
                after: None,
            },
        }
    }
}
