//! MQTT publishing per the contract: birth (retained, QoS 1), status `online` (retained,
//! QoS 1) with a retained `offline` last will, and reading batches (QoS 1) out of the durable
//! buffer, oldest first, at most `max_inflight_batches` awaiting their PUBACK at a time. A
//! batch leaves the buffer only on its PUBACK.
//!
//! Each broker connection is a fresh session (clean session, fresh rumqttc event loop): when
//! it breaks, everything still in the buffer is sent again, in seq order, on the next one,
//! so the gateway may see a batch twice (same epoch and seq: it drops the duplicate) but
//! never misses one. Reconnecting backs off from 200 ms to 10 s.

use crate::buffer::Buffer;
use crate::clock::SharedClock;
use crate::config::{topic_matches, AgentConfig};
use crate::metrics::AgentMetrics;
use crate::mqtt_input::decode_message;
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, QoS};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use telemetry::{AgentState, AgentStatus, Reading, TopicScheme};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Resolves when a dynamic birth's points change; never for a configured one.
async fn birth_changed(birth: &mut BirthSource) {
    match birth {
        BirthSource::Dynamic { version, .. } => {
            if version.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        BirthSource::Config => std::future::pending::<()>().await,
    }
}

/// The least time between two births of a dynamic catalogue.
const BIRTH_MIN_INTERVAL: Duration = Duration::from_secs(1);

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What a published message was, until its PUBACK.
#[derive(Debug, Clone, Copy)]
enum Sent {
    /// Birth or status.
    Retained,
    Batch {
        seq: u64,
        stored_at_ms: i64,
    },
}

/// The publishing side of the agent.
pub struct Publisher {
    pub config: Arc<AgentConfig>,
    pub buffer: Arc<Mutex<Buffer>>,
    /// The seq of the newest stored batch; changes wake the publisher.
    pub stored: watch::Receiver<u64>,
    pub metrics: AgentMetrics,
    pub clock: SharedClock,
    /// Where readings of MQTT devices go (try_send: dropped and counted when full).
    pub inputs_tx: mpsc::Sender<Reading>,
    pub epoch: String,
    /// Where the birth's points come from.
    pub birth: BirthSource,
}

/// Where a publisher's birth comes from.
#[derive(Clone)]
pub enum BirthSource {
    /// The configuration's points ([`AgentConfig::catalogue`]).
    Config,
    /// Points that change while the agent runs (the vehicles of a JT/T 808 listener): when
    /// `version` changes, the birth is built again by `points` and published (retained) before
    /// the next batch, so a batch never names a point its birth does not have yet.
    Dynamic {
        version: watch::Receiver<u64>,
        points: Arc<dyn Fn() -> Vec<telemetry::PointSpec> + Send + Sync>,
    },
}

struct AbortOnDrop(JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping: sending what is buffered until the deadline.
    Draining(Instant),
    /// The offline status is out; waiting for its PUBACK until the deadline.
    Goodbye(Instant),
}

enum End {
    /// Cancelled and finished the goodbye.
    Stopped,
}

/// Refresh the buffer gauges.
pub fn buffer_gauges(metrics: &AgentMetrics, b: &Buffer) {
    metrics.buffer_batches.set(b.len() as i64);
    metrics.buffer_bytes.set(b.bytes() as i64);
}

impl Publisher {
    fn scheme(&self) -> TopicScheme {
        TopicScheme::new(self.config.mqtt.topic_prefix.clone())
    }

    fn status_payload(&self, state: AgentState) -> Vec<u8> {
        let s = AgentStatus {
            agent: self.config.agent.clone(),
            state,
            ts: self.clock.now(),
        };
        serde_json::to_vec(&s).expect("status serializes")
    }

    /// Run sessions until `cancel`; on cancel, send what is buffered (bounded by
    /// `mqtt.timeout_ms`), publish `offline` and disconnect.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = retry::Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let started = Instant::now();
            let ended = self.session(&cancel).await;
            // A session that lived a while starts the backoff afresh.
            if started.elapsed() > BACKOFF_MAX {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            match ended {
                Ok(End::Stopped) => return,
                Err(e) => {
                    self.metrics.mqtt_connected.set(0);
                    self.metrics.mqtt_disconnects_total.inc();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "mqtt session ended");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(&mut self, cancel: &CancellationToken) -> Result<End, String> {
        let cfg = self.config.clone();
        let m = &cfg.mqtt;
        // Read on every connection, so renewed certificates on disk are picked up.
        let broker = m.broker().map_err(|e| e.to_string())?;
        let scheme = self.scheme();
        let status_topic = scheme.status(&cfg.site, &cfg.agent);
        let readings_topic = scheme.readings(&cfg.site, &cfg.agent);
        let max_inflight = usize::from(m.max_inflight_batches);
        let ack_timeout = Duration::from_millis(m.timeout_ms);

        let mut opts = broker.options(cfg.client_id());
        opts.set_keep_alive(Duration::from_secs(m.keep_alive_s));
        opts.set_clean_session(true);
        opts.set_max_packet_size(m.max_packet_bytes, m.max_packet_bytes);
        opts.set_inflight(m.max_inflight_batches.saturating_add(8));
        opts.set_last_will(LastWill::new(
            status_topic.clone(),
            self.status_payload(AgentState::Offline),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(u) = &m.username {
            opts.set_credentials(u.clone(), m.password.clone().unwrap_or_default());
        }
        // The request channel holds every message this session can have queued at once.
        let (client, mut eventloop) =
            AsyncClient::new(opts, max_inflight + 16 + cfg.mqtt_inputs.len());
        let mut net = eventloop.network_options();
        net.set_connection_timeout(m.timeout_ms.div_ceil(1000).max(1));
        eventloop.set_network_options(net);
        let (ev_tx, mut ev_rx) = mpsc::channel::<Result<Event, rumqttc::ConnectionError>>(256);
        let _loop_task = AbortOnDrop(tokio::spawn(async move {
            loop {
                let r = eventloop.poll().await;
                let stop = r.is_err();
                if ev_tx.send(r).await.is_err() || stop {
                    break;
                }
            }
        }));

        // Wait for the CONNACK.
        let deadline = Instant::now() + Duration::from_millis(m.timeout_ms);
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return Ok(End::Stopped),
                _ = tokio::time::sleep_until(deadline) => return Err(format!("no CONNACK from {}:{} within {} ms", broker.host, broker.port, m.timeout_ms)),
                ev = ev_rx.recv() => ev.ok_or("mqtt event loop ended")?,
            };
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code != rumqttc::ConnectReturnCode::Success {
                        return Err(format!("broker refused the connection: {:?}", ack.code));
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "connecting to {}:{}{}: {e}",
                        broker.host,
                        broker.port,
                        if broker.is_tls() { " over TLS" } else { "" }
                    ))
                }
            }
        }
        tracing::info!(broker = %format!("{}:{}", broker.host, broker.port), tls = broker.is_tls(), epoch = %self.epoch, "mqtt connected");
        self.metrics.mqtt_connected.set(1);

        let mut queued: VecDeque<(Sent, Instant)> = VecDeque::new();
        let mut inflight: HashMap<u16, (Sent, Instant)> = HashMap::new();
        let mut batches_out = 0usize;
        let mut last_sent: Option<u64> = None;

        let birth = self.birth_payload();
        let birth_topic = scheme.birth(&cfg.site, &cfg.agent);
        let publish = |queued: &mut VecDeque<(Sent, Instant)>,
                       topic: &str,
                       retain: bool,
                       payload: Vec<u8>,
                       what: Sent|
         -> Result<(), String> {
            client
                .try_publish(topic, QoS::AtLeastOnce, retain, payload)
                .map_err(|e| format!("queueing a publish: {e}"))?;
            queued.push_back((what, Instant::now()));
            Ok(())
        };
        publish(&mut queued, &birth_topic, true, birth, Sent::Retained)?;
        publish(
            &mut queued,
            &status_topic,
            true,
            self.status_payload(AgentState::Online),
            Sent::Retained,
        )?;
        for input in &cfg.mqtt_inputs {
            client
                .try_subscribe(input.topic.clone(), QoS::AtLeastOnce)
                .map_err(|e| format!("subscribing to {}: {e}", input.topic))?;
        }

        // Fill the window of unacknowledged batches from the buffer.
        // A dynamic birth whose points changed goes out before the next batch (a batch never
        // names a point its birth lacks) and at most once per BIRTH_MIN_INTERVAL: meanwhile
        // batches wait (registration bursts: thousands of terminals within seconds).
        let mut birth_dirty = false;
        let mut birth_at = Instant::now();
        macro_rules! fill {
            () => {{
                let dirty = birth_dirty || self.birth_changed();
                let hold = dirty && birth_at.elapsed() < BIRTH_MIN_INTERVAL;
                if dirty && !hold {
                    publish(
                        &mut queued,
                        &birth_topic,
                        true,
                        self.birth_payload(),
                        Sent::Retained,
                    )?;
                    birth_dirty = false;
                    birth_at = Instant::now();
                    tracing::debug!("birth published again: its points changed");
                }
                if batches_out < max_inflight && !hold {
                    let room = (max_inflight - batches_out) as u32;
                    let batches = self
                        .buffer
                        .lock()
                        .await
                        .after(last_sent, room)
                        .await
                        .map_err(|e| e.to_string())?;
                    for b in batches {
                        publish(
                            &mut queued,
                            &readings_topic,
                            false,
                            b.payload,
                            Sent::Batch {
                                seq: b.seq,
                                stored_at_ms: b.stored_at_ms,
                            },
                        )?;
                        last_sent = Some(b.seq);
                        batches_out += 1;
                    }
                }
            }};
        }
        fill!();

        let mut check = tokio::time::interval(Duration::from_millis(250));
        let mut phase = Phase::Running;
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled(), if phase == Phase::Running => {
                    phase = Phase::Draining(Instant::now() + ack_timeout);
                    None
                }
                _ = birth_changed(&mut self.birth), if phase == Phase::Running => {
                    // `changed` marked the version seen: remember it.
                    birth_dirty = true;
                    fill!();
                    None
                }
                changed = self.stored.changed(), if phase == Phase::Running => {
                    if changed.is_err() {
                        // The batcher is gone: nothing more will be stored.
                        phase = Phase::Draining(Instant::now() + ack_timeout);
                    }
                    fill!();
                    None
                }
                _ = check.tick() => {
                    if phase == Phase::Running && (birth_dirty || self.birth_changed()) {
                        fill!();
                    }
                    if phase == Phase::Running {
                        let oldest = queued.front().map(|q| q.1).into_iter().chain(inflight.values().map(|v| v.1)).min();
                        if oldest.is_some_and(|t| t.elapsed() > ack_timeout) {
                            return Err(format!("no PUBACK within {} ms", m.timeout_ms));
                        }
                    }
                    None
                }
                ev = ev_rx.recv() => Some(ev.ok_or("mqtt event loop ended")?),
            };
            match ev {
                None => {}
                Some(Err(e)) => return Err(format!("mqtt connection: {e}")),
                Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    if let Some(q) = queued.pop_front() {
                        if pkid != 0 {
                            inflight.insert(pkid, q);
                        }
                    }
                }
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some((Sent::Batch { seq, stored_at_ms }, _)) = inflight.remove(&ack.pkid)
                    {
                        batches_out -= 1;
                        let mut b = self.buffer.lock().await;
                        b.ack(seq).await.map_err(|e| e.to_string())?;
                        buffer_gauges(&self.metrics, &b);
                        drop(b);
                        self.metrics.batches_published_total.inc();
                        let age_ms = self.clock.now().timestamp_millis() - stored_at_ms;
                        self.metrics
                            .publish_latency_seconds
                            .observe(age_ms.max(0) as f64 / 1000.0);
                        tracing::trace!(seq, "batch acknowledged");
                        fill!();
                    }
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    self.device_message(&p.topic, &p.payload);
                }
                Some(Ok(_)) => {}
            }
            match phase {
                Phase::Running => {}
                Phase::Draining(deadline) => {
                    let drained = batches_out == 0
                        && self
                            .buffer
                            .lock()
                            .await
                            .after(last_sent, 1)
                            .await
                            .map_err(|e| e.to_string())?
                            .is_empty();
                    if drained || Instant::now() >= deadline {
                        if !drained {
                            tracing::warn!(
                                unacked = batches_out,
                                "stopping before every batch was acknowledged; they stay buffered"
                            );
                        }
                        publish(
                            &mut queued,
                            &status_topic,
                            true,
                            self.status_payload(AgentState::Offline),
                            Sent::Retained,
                        )?;
                        phase = Phase::Goodbye(
                            Instant::now() + ack_timeout.min(Duration::from_secs(2)),
                        );
                    } else {
                        fill!();
                    }
                }
                Phase::Goodbye(deadline) => {
                    let settled = queued.is_empty()
                        && inflight.values().all(|v| matches!(v.0, Sent::Batch { .. }));
                    if settled || Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        let _ = client.try_disconnect();
        // Give the DISCONNECT a moment to leave, so the broker does not send the will.
        let flush_deadline = Instant::now() + Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(flush_deadline) => break,
                ev = ev_rx.recv() => match ev {
                    Some(Ok(Event::Outgoing(Outgoing::Disconnect))) | Some(Err(_)) | None => break,
                    _ => {}
                },
            }
        }
        self.metrics.mqtt_connected.set(0);
        tracing::info!("mqtt session closed");
        Ok(End::Stopped)
    }

    /// The birth as it is now; marks the points' version as seen.
    fn birth_payload(&mut self) -> Vec<u8> {
        let cat = match &mut self.birth {
            BirthSource::Config => self.config.catalogue(&self.epoch),
            BirthSource::Dynamic { version, points } => {
                version.borrow_and_update();
                telemetry::Catalogue {
                    agent: self.config.agent.clone(),
                    epoch: self.epoch.clone(),
                    site: self.config.site_info.clone(),
                    points: points(),
                }
            }
        };
        serde_json::to_vec(&cat).expect("catalogue serializes")
    }

    fn birth_changed(&self) -> bool {
        match &self.birth {
            BirthSource::Config => false,
            BirthSource::Dynamic { version, .. } => version.has_changed().unwrap_or(false),
        }
    }

    fn device_message(&self, topic: &str, payload: &[u8]) {
        for input in self
            .config
            .mqtt_inputs
            .iter()
            .filter(|i| topic_matches(&i.topic, topic))
        {
            match decode_message(input, payload, self.clock.now()) {
                Ok(readings) => {
                    for r in readings {
                        match self.inputs_tx.try_send(r) {
                            Ok(()) => self.metrics.readings_total.inc(),
                            Err(_) => self
                                .metrics
                                .readings_dropped_total
                                .with_label_values(&["queue_full"])
                                .inc(),
                        }
                    }
                }
                Err(e) => {
                    self.metrics
                        .readings_dropped_total
                        .with_label_values(&["bad_payload"])
                        .inc();
                    tracing::warn!(topic, error = %e, "mqtt device message refused");
                }
            }
        }
    }
}
