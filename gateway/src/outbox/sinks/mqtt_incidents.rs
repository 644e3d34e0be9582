//! The gateway's own incident topic: every incident event, in order, to
//! `{prefix}/incidents/{site}` on the gateway's broker, read from the durable event log.
//!
//! The publisher owns its connection's event loop (a persistent session of its own client id)
//! and keeps at most [`WINDOW`] events in flight. Its durable cursor moves only over events
//! whose PUBACK came, matched by packet id ([`super::puback::PubAcks`]): an event the broker
//! did not acknowledge (queued in the client, in a socket when the broker died, dropped with a
//! session the broker lost) is published again, so every event arrives at least once, in the
//! log's order.

use super::puback::PubAcks;
use crate::ingest::mqtt::reload_tls;
use crate::ingest::mqtt_config::MqttConfig;
use crate::metrics::Metrics;
use crate::store::event_log::{EventLog, Scope};
use crate::store::Store;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use telemetry::TopicScheme;
use tokio_util::sync::CancellationToken;

/// Events handed to the connection and not yet acknowledged, at most (below the client's
/// in-flight limit and its request queue, so a `publish` never waits on the event loop that
/// this same task polls).
pub const WINDOW: usize = 64;

const CURSOR: &str = "mqtt_incidents";

/// The event loop and client of the publisher's own connection, and the broker's config (its
/// TLS files are read again after a failed connection).
pub struct PublisherConnection {
    pub client: AsyncClient,
    pub eventloop: EventLoop,
    pub mqtt: MqttConfig,
}

/// Events handed out in log order; `acked` once the PUBACK of its packet came. A position
/// the log reader passed over (an unreadable row) is an entry acknowledged from the start.
struct Window {
    sent: VecDeque<(i64, bool)>,
}

impl Window {
    fn ack(&mut self, pos: i64) {
        if let Some(e) = self.sent.iter_mut().find(|(p, _)| *p == pos) {
            e.1 = true;
        }
    }
    /// Drop the acknowledged front: the new confirmed position, if it moved.
    fn confirmed(&mut self) -> Option<i64> {
        let mut last = None;
        while let Some((pos, true)) = self.sent.front().copied() {
            last = Some(pos);
            self.sent.pop_front();
        }
        last
    }
}

/// Publishes every incident event, in order, to `{prefix}/incidents/{site}` from the durable
/// event log; the cursor in the store marks what the broker acknowledged.
pub async fn run_event_publisher(
    store: Store,
    connection: PublisherConnection,
    scheme: TopicScheme,
    wake: Arc<tokio::sync::Notify>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let PublisherConnection {
        client,
        mut eventloop,
        mqtt,
    } = connection;
    let log = EventLog::new(&store);
    let mut confirmed = loop {
        match log.cursor(CURSOR).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::error!(error = %e, "reading the publisher cursor");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
        }
    };
    let mut saved = confirmed;
    let mut last_save = tokio::time::Instant::now();
    // Where the next page is read from: after the last event handed out.
    let mut next_from = confirmed;
    let mut acks: PubAcks<i64> = PubAcks::default();
    let mut window = Window {
        sent: VecDeque::new(),
    };
    let mut connected = false;
    // Whether the log may hold events after `next_from` (read at once, without a wake).
    let mut more = true;
    let mut backoff = retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let room = connected && window.sent.len() < WINDOW;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connected = true;
                    backoff.reset();
                    if !ack.session_present && !acks.is_empty() {
                        // The client dropped what was not acknowledged: publish it again.
                        let lost = acks.lost().len();
                        tracing::warn!(lost, "the broker had no session for the publisher; unacknowledged events go again");
                        window.sent.clear();
                        next_from = confirmed;
                        more = true;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => acks.written(pkid),
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(pos) = acks.acked(ack.pkid) {
                        window.ack(pos);
                        if let Some(pos) = window.confirmed() {
                            confirmed = pos;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        tracing::warn!(error = %e, "publisher connection lost");
                    } else {
                        tracing::debug!(error = %e, "publisher connection");
                    }
                    connected = false;
                    reload_tls(&mut eventloop, &mqtt);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            },
            _ = std::future::ready(()), if room && more => {
                let room = (WINDOW - window.sent.len()) as i64;
                let mut reader = log.reader(Scope::All, next_from, room);
                match reader.next_page().await {
                    Ok(Some(page)) => {
                        // Read again at once; an empty read says the log is caught up.
                        more = true;
                        let mut handed_all = true;
                        for (pos, ev) in page {
                            let topic = scheme.incidents(&ev.incident.site);
                            let body = serde_json::to_vec(&ev).unwrap_or_default();
                            // Never waits: the window is below the request queue's bound.
                            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, body) {
                                tracing::warn!(error = %e, "publishing an incident event");
                                handed_all = false;
                                break;
                            }
                            acks.handed(pos);
                            window.sent.push_back((pos, false));
                            next_from = pos;
                            metrics
                                .mqtt_published
                                .with_label_values(&["incident_event"])
                                .inc();
                        }
                        if handed_all && reader.position() > next_from {
                            // Unreadable rows at the page's end: passed over.
                            window.sent.push_back((reader.position(), true));
                            next_from = reader.position();
                            if let Some(pos) = window.confirmed() {
                                confirmed = pos;
                            }
                        }
                    }
                    Ok(None) => more = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading events to publish");
                        more = false;
                    }
                }
            }
            _ = wake.notified(), if room && !more => more = true,
            // Not while connecting: that would cut the attempt short.
            _ = tick.tick(), if connected => {
                if room {
                    more = true;
                }
            }
        }
        // Saved when the window is empty, else at most every 200 ms.
        if confirmed > saved
            && (window.sent.is_empty() || last_save.elapsed() >= Duration::from_millis(200))
        {
            match log.set_cursor(CURSOR, confirmed).await {
                Ok(()) => saved = confirmed,
                Err(e) => tracing::warn!(error = %e, "saving the publisher cursor"),
            }
            last_save = tokio::time::Instant::now();
        }
    }
    if confirmed > saved {
        let _ = log.set_cursor(CURSOR, confirmed).await;
    }
    let _ = client.try_disconnect();
}

#[cfg(test)]
#[path = "mqtt_incidents_tests.rs"]
mod tests;
