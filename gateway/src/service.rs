//! The running gateway: the core task, the MQTT connection (ingest with acknowledgements after
//! processing, and the incident-event publisher), the timer and the HTTP server.

use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::core::{Action, Core, CoreError};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::store::Store;
use anyhow::Context;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use telemetry::{Incident, IncidentEvent, TopicScheme};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub type ActReply = Result<(Incident, Option<IncidentEvent>), CoreError>;

/// What the core task is asked to do, in arrival order.
pub enum Command {
    /// An MQTT message; acknowledged to the broker once processed.
    Message(Publish),
    /// A weather document posted over HTTP (`cap` or `cenc`).
    Weather {
        kind: &'static str,
        body: Vec<u8>,
        reply: oneshot::Sender<Result<weather::Outcome, CoreError>>,
    },
    Act {
        id: String,
        action: Action,
        reply: oneshot::Sender<ActReply>,
    },
    Reload {
        reply: oneshot::Sender<Result<usize, String>>,
    },
    /// Take a point out of service until a time, or back into service (`until` None).
    OutOfService {
        site: telemetry::SiteId,
        point: telemetry::PointId,
        by: String,
        reason: String,
        until: Option<telemetry::Timestamp>,
        reply: oneshot::Sender<Result<Option<crate::live::OutOfService>, CoreError>>,
    },
}

/// The gateway's long-lived tasks. Each ends with `Some(name)` when it must not end while the
/// gateway runs (the core, the broker link, the HTTP server ...) and `None` when it may (a
/// subscriber removed over the API): see [`must_run`] and [`may_end`].
pub type Tasks = tokio::task::JoinSet<Option<&'static str>>;

/// A task that must run as long as the gateway does: its end (or its panic, which the join
/// reports) stops the process, so the service manager restarts it rather than leave a gateway
/// that looks alive and judges nothing.
pub fn must_run(
    name: &'static str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = Option<&'static str>> + Send + 'static {
    async move {
        task.await;
        Some(name)
    }
}

/// A task that may end by itself.
pub fn may_end(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = Option<&'static str>> + Send + 'static {
    async move {
        task.await;
        None
    }
}

/// A handle to the running gateway.
pub struct Gateway {
    pub http_addr: std::net::SocketAddr,
    /// The core's queue (operator actions, rule reload).
    pub commands: mpsc::Sender<Command>,
    pub shutdown: CancellationToken,
    pub tasks: Tasks,
}

impl Gateway {
    /// Wait until a task that must run ends or fails (never returns while all is well): the
    /// clear reason to stop the process.
    pub async fn failed_task(&mut self) -> String {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(None)) => continue,
                Some(Ok(Some(name))) => return format!("the {name} task ended"),
                Some(Err(e)) => return format!("a gateway task failed: {e}"),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// Load the rule set: the built-in pack plus the files of `rules_dir`.
pub fn load_rules(config: &GatewayConfig) -> anyhow::Result<alarm_rules::RuleSet> {
    let mut files = Vec::new();
    if let Some(dir) = &config.rules_dir {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading rules dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            files.push((p.display().to_string(), text));
        }
    }
    alarm_rules::RuleSet::parse(&files, true).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Start the gateway; returns once the HTTP server listens.
pub async fn start(config: GatewayConfig, clock: SharedClock) -> anyhow::Result<Gateway> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = Store::open(&config.store_url())
        .await
        .with_context(|| format!("opening store {}", redact(&config.store_url())))?;
    let rules = load_rules(&config)?;
    tracing::info!(rules = rules.len(), "rules loaded");
    let metrics = Metrics::new();
    let engine = alarm_rules::Engine::new(
        rules,
        alarm_rules::EngineConfig {
            late_after: chrono::Duration::milliseconds(config.ingest.late_after_ms as i64),
            // A key of its own per process for the engine's maps of ids from the network.
            hash_seed: rand::random(),
            ..Default::default()
        },
    );
    let scheme = TopicScheme::new(config.mqtt.topic_prefix.clone());
    let core = Core::start(
        engine,
        store.clone(),
        clock.clone(),
        scheme.clone(),
        config.ingest.clone(),
        config.sites.clone(),
        config.weather.clone(),
        metrics.clone(),
    )
    .await
    .context("recovering state from the store")?;

    let shutdown = CancellationToken::new();
    let mut tasks = Tasks::new();
    // timeseries (issue 10): the writer task, and the core's handle to it (none without a URL).
    let mut core = core;
    if let Some((handle, writer)) = crate::timeseries::TimeSeriesWriter::from_config(
        &config.timeseries,
        &config.data_dir,
        &metrics.registry,
    )? {
        core.set_timeseries(handle);
        tasks.spawn(must_run("time-series writer", writer.run(shutdown.clone())));
    }
    let broker = config.mqtt.broker()?;
    let mut opts = config.mqtt.options(&broker, config.mqtt.client_id.clone());
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(config.mqtt.keep_alive_s.max(5)))
        .set_inflight(config.mqtt.inflight)
        .set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let mqtt_connected = Arc::new(AtomicBool::new(false));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(config.mqtt.inflight as usize + 64);
    let core_alive = Arc::new(crate::core::Liveness::default());
    core_alive.mark();

    let live = core.live.clone();
    let events_tx = core.events_sender();
    let store_ok = core.store_ok.clone();
    let event_written = core.event_written.clone();

    tasks.spawn(must_run(
        "MQTT ingest",
        run_mqtt_ingest(
            eventloop,
            config.mqtt.clone(),
            config.ingest.max_pending_messages,
            client.clone(),
            cmd_tx.clone(),
            mqtt_connected.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("mqtt", role = "ingest", broker = %config.mqtt.url)),
    ));
    tasks.spawn(must_run(
        "core",
        run_core(
            core,
            cmd_rx,
            client.clone(),
            config.clone(),
            core_alive.clone(),
            shutdown.clone(),
        ),
    ));
    // Incident events go out on a connection of their own: the ingest connection's request
    // queue then only carries acknowledgements (at most `inflight`), so the ingest event loop,
    // waiting on a busy core, can never hold up an acknowledgement the core waits to send.
    let mut pub_opts = config
        .mqtt
        .options(&broker, format!("{}-pub", config.mqtt.client_id));
    pub_opts
        .set_clean_session(true)
        .set_keep_alive(Duration::from_secs(config.mqtt.keep_alive_s.max(5)))
        .set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    let (pub_client, mut pub_loop) = AsyncClient::new(pub_opts, 1024);
    let sd = shutdown.clone();
    let pub_mqtt = config.mqtt.clone();
    tasks.spawn(must_run(
        "MQTT publisher connection",
        async move {
            loop {
                tokio::select! {
                    _ = sd.cancelled() => break,
                    r = pub_loop.poll() => if let Err(e) = r {
                        tracing::debug!(error = %e, "publisher connection");
                        reload_tls(&mut pub_loop, &pub_mqtt);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
        .instrument(tracing::info_span!("mqtt", role = "publisher")),
    ));
    tasks.spawn(must_run(
        "incident-event publisher",
        run_event_publisher(
            store.clone(),
            pub_client,
            scheme.clone(),
            event_written,
            metrics.clone(),
            shutdown.clone(),
        ),
    ));

    // forwarding (issue 9): endpoints, subscribers, escalation, heartbeat; routes merged below.
    let forwarding = crate::forward::start(
        &config.forwarding,
        crate::forward::Wiring {
            store: store.clone(),
            live: live.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            events: events_tx.clone(),
            commands: cmd_tx.clone(),
            topic_prefix: config.mqtt.topic_prefix.clone(),
            gateway_name: config.mqtt.client_id.clone(),
        },
        &mut tasks,
        shutdown.clone(),
    )
    .await
    .context("starting forwarding")?;

    for feed in config.weather_feeds.clone() {
        let span = tracing::info_span!("weather_feed", url = %feed.url);
        tasks.spawn(must_run(
            "weather feed",
            crate::feeds::run_feed(
                feed,
                cmd_tx.clone(),
                metrics.weather_feed_polls.clone(),
                shutdown.clone(),
            )
            .instrument(span),
        ));
    }
    let state = AppState {
        commands: cmd_tx.clone(),
        store,
        live,
        metrics,
        events: events_tx,
        mqtt_connected,
        store_ok,
        clock,
        scheme,
        limits: config.http.limits(),
        sse_streams: Arc::new(tokio::sync::Semaphore::new(config.http.max_sse_streams)),
        core_alive,
    };
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http.addr))?;
    let http_addr = listener.local_addr()?;
    let app = http::router(state.clone()).merge(crate::forward::http::routes(forwarding)); // forwarding (issue 9)
    let app = http::bounded(app, &config.http, state.metrics.clone());
    tasks.spawn(must_run(
        "HTTP server",
        http::serve(listener, app, config.http.clone(), shutdown.clone()),
    ));
    tracing::info!(%http_addr, "gateway listening");
    Ok(Gateway {
        http_addr,
        commands: cmd_tx,
        shutdown,
        tasks,
    })
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// After a failed connection over TLS: read the TLS files again, so a renewed certificate
/// or CA takes effect at the next attempt without a restart. Files that cannot be read now
/// leave the configuration read before in force.
fn reload_tls(eventloop: &mut EventLoop, mqtt: &crate::config::MqttConfig) {
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
async fn run_mqtt_ingest(
    mut eventloop: EventLoop,
    mqtt: crate::config::MqttConfig,
    max_pending: usize,
    client: AsyncClient,
    commands: mpsc::Sender<Command>,
    connected: Arc<AtomicBool>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let scheme = TopicScheme::new(mqtt.topic_prefix.clone());
    let mut backoff = Duration::from_millis(200);
    // Messages received but not yet handed to the core. The event loop keeps being polled while
    // the core is busy (so keep-alives and acknowledgements go out); the buffer holds at most
    // what the broker has in flight to us unacknowledged (its per-client inflight limit).
    let mut pending = IngestBuffer::new(max_pending);
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = commands.reserve(), if !pending.is_empty() => {
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
                backoff = Duration::from_millis(200);
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
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
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

async fn run_core(
    mut core: Core,
    mut commands: mpsc::Receiver<Command>,
    client: AsyncClient,
    config: GatewayConfig,
    alive: Arc<crate::core::Liveness>,
    shutdown: CancellationToken,
) {
    // Whatever way the loop ends (a panic included), `/readyz` says so at once.
    struct Ended(Arc<crate::core::Liveness>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.end();
        }
    }
    let _ended = Ended(alive.clone());
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // A group holds at most what the broker may have in flight to us.
    let max_group = usize::from(config.mqtt.inflight).clamp(1, 256);
    // A command taken from the queue while a group was gathered, to handle next.
    let mut next: Option<Command> = None;
    loop {
        alive.mark();
        let cmd = match next.take() {
            Some(c) => c,
            None => tokio::select! {
                biased;
                // Timers first (at most every 500 ms), so a queue that never empties under
                // load cannot hold back missing-data alarms or the end of a shelving.
                _ = ticker.tick() => {
                    if let Err(e) = core.tick().await {
                        tracing::error!(error = %e, "tick failed");
                    }
                    continue;
                }
                // Drain what was received before stopping: in-flight messages are finished and acknowledged.
                c = commands.recv() => match c { Some(c) => c, None => break },
                _ = shutdown.cancelled() => break,
            },
        };
        match cmd {
            Command::Message(first) => {
                // Group commit: the messages already waiting are processed in order, their seq
                // windows saved in one transaction, and only then are they acknowledged.
                core.begin_group();
                let mut taken = Vec::new();
                let mut handled = 0;
                let mut p = first;
                loop {
                    handled += 1;
                    if let Err(e) = core.handle_message(&p.topic, &p.payload).await {
                        // Store outages are ridden out inside and refusals dead-lettered: an
                        // error here is a defect. The message is dead-lettered with it and
                        // acknowledged, so one message can never hold up the rest.
                        tracing::error!(error = %e, topic = %p.topic, "message not processed; dead-lettered");
                        core.refuse_unprocessed(&p.topic, &p.payload, &e.to_string())
                            .await;
                    }
                    taken.push(p);
                    alive.mark();
                    if handled >= max_group {
                        break;
                    }
                    match commands.try_recv() {
                        Ok(Command::Message(q)) => p = q,
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                core.commit_group().await;
                for p in taken {
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, "acknowledgement not sent");
                    }
                }
            }
            Command::Weather { kind, body, reply } => {
                let _ = reply.send(core.handle_weather(kind, &body).await.map(|(o, _)| o));
            }
            Command::Act { id, action, reply } => {
                let _ = reply.send(core.act(&id, action).await);
            }
            Command::OutOfService {
                site,
                point,
                by,
                reason,
                until,
                reply,
            } => {
                let _ = reply.send(
                    core.set_out_of_service(site, point, by, reason, until)
                        .await,
                );
            }
            Command::Reload { reply } => {
                let r = match load_rules(&config) {
                    Ok(rules) => {
                        let n = rules.len();
                        match core.reload_rules(rules).await {
                            Ok(_) => Ok(n),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(format!("{e:#}")),
                };
                match &r {
                    Ok(n) => tracing::info!(rules = n, "rules reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "rule reload refused; the old rules stay in force")
                    }
                }
                let _ = reply.send(r);
            }
        }
    }
    tracing::info!("core stopped");
}

/// Publishes every incident event, in order, to `{prefix}/incidents/{site}` from the durable
/// event log (a cursor in the store marks what was handed to the broker).
async fn run_event_publisher(
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

    #[test]
    fn liveness_reports_a_stalled_or_ended_core() {
        let l = crate::core::Liveness::default();
        l.mark();
        assert_eq!(l.stalled_for_ms(10_000), None);
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.stalled_for_ms(10).is_some_and(|ms| ms >= 30));
        l.mark();
        assert_eq!(l.stalled_for_ms(10_000), None);
        l.end();
        assert!(
            l.stalled_for_ms(10_000).is_some(),
            "an ended core is never ready"
        );
    }

    /// A task that must run and ends is reported with its name; one that may end is not.
    #[tokio::test]
    async fn a_task_that_must_run_and_ends_is_reported() {
        let mut tasks = Tasks::new();
        tasks.spawn(may_end(async {}));
        tasks.spawn(must_run("core", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        let (tx, _) = mpsc::channel(1);
        let mut gw = Gateway {
            http_addr: "127.0.0.1:1".parse().unwrap(),
            commands: tx,
            shutdown: CancellationToken::new(),
            tasks,
        };
        assert_eq!(gw.failed_task().await, "the core task ended");
        let mut tasks = Tasks::new();
        tasks.spawn(must_run("HTTP server", async { panic!("boom") }));
        gw.tasks = tasks;
        let why = gw.failed_task().await;
        assert!(why.contains("panicked") && why.contains("boom"), "{why}");
    }
}
