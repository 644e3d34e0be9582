//! The agent: pollers and MQTT device input -> batcher -> durable buffer -> publisher.
//!
//! Queues, all bounded:
//! - readings (pollers and MQTT devices -> batcher): `reading_queue` readings. Pollers wait
//!   when it is full (their polls slip); MQTT device input cannot wait inside the MQTT event
//!   handling, so it drops and counts (`hrs_agent_readings_dropped_total{reason="queue_full"}`).
//! - the batcher holds at most `max_batch_readings` readings before it writes a batch early.
//! - the buffer is bounded in bytes (`buffer.max_bytes`, oldest dropped and counted).
//! - at most `mqtt.max_inflight_batches` batches await their PUBACK.
//!
//! Shutdown: pollers stop, the batcher writes what it holds, the publisher sends what is
//! buffered (bounded by `mqtt.timeout_ms`), publishes `offline` and disconnects.

use crate::buffer::{random_epoch, Buffer, BufferError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AgentConfig, ConfigError, Transport};
use crate::metrics::AgentMetrics;
use crate::poll::DevicePoller;
use crate::publish::{buffer_gauges, Publisher};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use telemetry::{encode_batch, Batch, Reading};
use tokio::sync::{mpsc, watch, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error("metrics listener on {addr}: {source}")]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("agent task failed: {0}")]
    Task(String),
    #[error("jt808 listener on {addr}: {source}")]
    Jt808Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Jt808Auth(#[from] crate::jt808::auth::AuthError),
}

/// A vehicle agent (one birth) of a JT/T 808 listener, ready to run.
struct VehicleBirth {
    config: Arc<AgentConfig>,
    buffer: Buffer,
    metrics: AgentMetrics,
}

/// A JT/T 808 listener, bound, with its vehicles and births.
struct PreparedListener {
    listener: tokio::net::TcpListener,
    cfg: Arc<crate::jt808::Jt808Config>,
    fleet: Arc<std::sync::Mutex<crate::jt808::points::Fleet>>,
    store: crate::jt808::auth::AuthStore,
    births: Vec<VehicleBirth>,
}

/// The configuration a vehicle agent publishes with: the agent's broker settings, its own
/// id, site, buffer file and client id, no inputs of its own.
fn vehicle_agent_config(
    main: &AgentConfig,
    l: &crate::jt808::Jt808Config,
    agent: &str,
) -> Result<AgentConfig, ConfigError> {
    let mut c = main.clone();
    c.agent = telemetry::AgentId::new(agent)
        .map_err(|e| ConfigError::Invalid(vec![format!("jt808 agent: {e}")]))?;
    c.site = l.site.clone();
    c.site_info = l.site_info.clone().or_else(|| {
        (l.site == main.site)
            .then(|| main.site_info.clone())
            .flatten()
    });
    c.mqtt.client_id = Some(match &main.mqtt.client_id {
        Some(id) => format!("{id}-{agent}").chars().take(64).collect(),
        None => agent.to_string(),
    });
    // A birth of 4,000 vehicles is about 2.5 MB; the gateway takes up to 4 MiB.
    c.mqtt.max_packet_bytes = c.mqtt.max_packet_bytes.max(8 * 1024 * 1024);
    c.buffer.path = Some(main.data_dir.join(format!("jt808-{agent}.sqlite")));
    c.devices = Vec::new();
    c.mqtt_inputs = Vec::new();
    c.jt808 = Vec::new();
    c.metrics_addr = None;
    Ok(c)
}

/// A configured agent, its buffer open, ready to run.
pub struct Agent {
    config: Arc<AgentConfig>,
    clock: SharedClock,
    metrics: AgentMetrics,
    buffer: Buffer,
    metrics_listener: Option<tokio::net::TcpListener>,
    jt808: Vec<PreparedListener>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("agent", &self.config.agent)
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl Agent {
    /// Validate the configuration, open (or create) the buffer and bind the metrics listener.
    pub async fn build(config: AgentConfig) -> Result<Agent, AgentError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Agent::build`], with the clock that stamps readings and status messages.
    pub async fn build_with_clock(
        config: AgentConfig,
        clock: SharedClock,
    ) -> Result<Agent, AgentError> {
        config.validate()?;
        let buffer =
            Buffer::open(&config.buffer_path(), config.buffer.max_bytes, random_epoch).await?;
        let metrics = AgentMetrics::new();
        buffer_gauges(&metrics, &buffer);
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                crate::metrics::bind(addr)
                    .await
                    .map_err(|source| AgentError::MetricsBind { addr, source })?,
            ),
            None => None,
        };
        let mut stores: std::collections::HashMap<
            std::path::PathBuf,
            crate::jt808::auth::AuthStore,
        > = Default::default();
        let mut jt808 = Vec::new();
        for l in &config.jt808 {
            let path = l
                .auth_path
                .clone()
                .unwrap_or_else(|| config.data_dir.join("jt808-auth.sqlite"));
            let store = match stores.get(&path) {
                Some(s) => s.clone(),
                None => {
                    let s = crate::jt808::auth::AuthStore::open(&path).await?;
                    stores.insert(path, s.clone());
                    s
                }
            };
            let mut fleet = crate::jt808::points::Fleet::new(l);
            let mut registered = store.terminals(l.site.as_str());
            registered.sort_by(|a, b| a.0.cmp(&b.0));
            for (t, r) in registered {
                fleet.note(&t, r.plate.as_deref(), r.driver.zip(r.driver_license));
            }
            metrics.jt808_vehicles.add(fleet.vehicles() as i64);
            let mut births = Vec::new();
            for k in 0..l.shards.max(1) {
                let agent = l.shard_agent(&config.agent, k);
                let c = vehicle_agent_config(&config, l, &agent)?;
                let buffer =
                    Buffer::open(&c.buffer_path(), c.buffer.max_bytes, random_epoch).await?;
                let m = metrics.for_vehicle_agent(&agent);
                buffer_gauges(&m, &buffer);
                tracing::info!(agent, site = %l.site, epoch = buffer.epoch(), next_seq = buffer.next_seq(), "jt808 vehicle agent built");
                births.push(VehicleBirth {
                    config: Arc::new(c),
                    buffer,
                    metrics: m,
                });
            }
            let listener = tokio::net::TcpListener::bind(l.listen)
                .await
                .map_err(|source| AgentError::Jt808Bind {
                    addr: l.listen,
                    source,
                })?;
            jt808.push(PreparedListener {
                listener,
                cfg: Arc::new(l.clone()),
                fleet: Arc::new(std::sync::Mutex::new(fleet)),
                store,
                births,
            });
        }
        tracing::info!(
            agent = %config.agent, site = %config.site, epoch = buffer.epoch(), next_seq = buffer.next_seq(),
            buffered = buffer.len(), jt808_listeners = jt808.len(), "agent built"
        );
        Ok(Agent {
            config: Arc::new(config),
            clock,
            metrics,
            buffer,
            metrics_listener,
            jt808,
        })
    }

    /// The epoch of this agent's batches.
    pub fn epoch(&self) -> &str {
        self.buffer.epoch()
    }
    /// The seq the next batch will get.
    pub fn next_seq(&self) -> u64 {
        self.buffer.next_seq()
    }
    /// Where `/metrics` is served (the bound address, also with port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }
    /// The agent's metrics (shared: they keep counting while it runs).
    pub fn metrics(&self) -> AgentMetrics {
        self.metrics.clone()
    }
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }
    /// Where the JT/T 808 listeners listen (the bound addresses, also with port 0).
    pub fn jt808_addrs(&self) -> Vec<SocketAddr> {
        self.jt808
            .iter()
            .filter_map(|l| l.listener.local_addr().ok())
            .collect()
    }

    /// Run until `shutdown` completes, then stop in order (see the module documentation).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let Agent {
            config,
            clock,
            metrics,
            buffer,
            metrics_listener,
            jt808,
        } = self;
        let span = tracing::info_span!("agent", agent = %config.agent, site = %config.site);
        let epoch = buffer.epoch().to_string();
        let (stored_tx, stored_rx) = watch::channel(buffer.next_seq().saturating_sub(1));
        let buffer = Arc::new(Mutex::new(buffer));
        let (readings_tx, readings_rx) = mpsc::channel::<Reading>(config.reading_queue);

        let acquire = CancellationToken::new();
        let publishing = CancellationToken::new();
        let serving = CancellationToken::new();

        let metrics_task = metrics_listener.map(|l| {
            let s = serving.clone();
            tokio::spawn(crate::metrics::serve(l, metrics.clone(), async move {
                s.cancelled().await
            }))
        });

        let mut pollers = Vec::new();
        // Devices on one serial port share the line: one task polls them in turn.
        let mut lines: Vec<(String, Vec<DevicePoller>)> = Vec::new();
        for d in &config.devices {
            let poller = DevicePoller::new(d.clone(), metrics.clone(), clock.clone());
            if let (Transport::RtuSerial, Some(port)) = (d.transport, &d.serial_port) {
                match lines.iter_mut().find(|(p, _)| p == port) {
                    Some((_, on_line)) => on_line.push(poller),
                    None => lines.push((port.clone(), vec![poller])),
                }
                continue;
            }
            let span = tracing::info_span!(parent: &span, "device", device = %d.name);
            pollers.push(tokio::spawn(
                poller
                    .run(readings_tx.clone(), acquire.clone())
                    .instrument(span),
            ));
        }
        for (port, on_line) in lines {
            let span = tracing::info_span!(parent: &span, "serial_line", port = %port);
            pollers.push(tokio::spawn(
                crate::serial_line::run_line(on_line, readings_tx.clone(), acquire.clone())
                    .instrument(span),
            ));
        }

        let publisher = Publisher {
            config: config.clone(),
            buffer: buffer.clone(),
            stored: stored_rx,
            metrics: metrics.clone(),
            clock: clock.clone(),
            inputs_tx: readings_tx.clone(),
            epoch: epoch.clone(),
            birth: crate::publish::BirthSource::Config,
        };
        // An agent whose only inputs are JT/T 808 listeners publishes nothing of its own.
        let main_has_inputs = !config.devices.is_empty() || !config.mqtt_inputs.is_empty();
        let publisher_task = main_has_inputs.then(|| {
            tokio::spawn(
                publisher
                    .run(publishing.clone())
                    .instrument(tracing::info_span!(parent: &span, "publisher")),
            )
        });

        let mut vehicle_publishers = Vec::new();
        let mut vehicle_batchers = Vec::new();
        let mut listeners = Vec::new();
        let mut stores = Vec::new();
        let mut vehicle_buffers = Vec::new();
        for l in jt808 {
            let mut inputs = Vec::new();
            for (k, b) in l.births.into_iter().enumerate() {
                let agent = b.config.agent.to_string();
                let vspan = tracing::info_span!(parent: &span, "vehicles", agent = %agent);
                let epoch = b.buffer.epoch().to_string();
                let (stored_tx, stored_rx) = watch::channel(b.buffer.next_seq().saturating_sub(1));
                let buffer = Arc::new(Mutex::new(b.buffer));
                vehicle_buffers.push(buffer.clone());
                let (ingest_tx, ingest_rx) = mpsc::channel(l.cfg.ingest_queue);
                let (version_tx, version_rx) = watch::channel(0u64);
                let fleet = l.fleet.clone();
                let points: Arc<dyn Fn() -> Vec<telemetry::PointSpec> + Send + Sync> =
                    Arc::new(move || fleet.lock().expect("fleet lock").points(k));
                let (unused_tx, _) = mpsc::channel(1);
                let publisher = Publisher {
                    config: b.config.clone(),
                    buffer: buffer.clone(),
                    stored: stored_rx,
                    metrics: b.metrics.clone(),
                    clock: clock.clone(),
                    inputs_tx: unused_tx,
                    epoch: epoch.clone(),
                    birth: crate::publish::BirthSource::Dynamic {
                        version: version_rx,
                        points,
                    },
                };
                vehicle_publishers.push(tokio::spawn(
                    publisher.run(publishing.clone()).instrument(vspan.clone()),
                ));
                let batcher = Batcher {
                    config: b.config.clone(),
                    buffer,
                    stored: stored_tx,
                    metrics: b.metrics.clone(),
                    clock: clock.clone(),
                    epoch,
                };
                vehicle_batchers.push(tokio::spawn(
                    batcher
                        .run(None, Some(ingest_rx), acquire.clone())
                        .instrument(vspan),
                ));
                inputs.push(crate::jt808::server::BirthInput {
                    agent,
                    ingest: ingest_tx,
                    version: Arc::new(version_tx),
                });
            }
            stores.push(l.store.clone());
            let ctx = Arc::new(crate::jt808::server::ListenerContext {
                cfg: l.cfg.clone(),
                site: l.cfg.site.clone(),
                fleet: l.fleet.clone(),
                store: l.store,
                births: inputs,
                metrics: metrics.clone(),
                clock: clock.clone(),
            });
            let lspan = tracing::info_span!(parent: &span, "jt808", site = %l.cfg.site);
            listeners.push(tokio::spawn(
                crate::jt808::server::serve(l.listener, ctx, acquire.clone()).instrument(lspan),
            ));
        }
        drop(readings_tx);

        let batcher = Batcher {
            config: config.clone(),
            buffer: buffer.clone(),
            stored: stored_tx,
            metrics: metrics.clone(),
            clock: clock.clone(),
            epoch,
        };
        let batcher_task = tokio::spawn(
            batcher
                .run(Some(readings_rx), None, acquire.clone())
                .instrument(tracing::info_span!(parent: &span, "batcher")),
        );

        shutdown.await;
        tracing::info!(parent: &span, "agent stopping");
        acquire.cancel();
        let mut first_err = None;
        for p in pollers {
            if let Err(e) = p.await {
                first_err.get_or_insert(AgentError::Task(format!("poller: {e}")));
            }
        }
        for l in listeners {
            if let Err(e) = l.await {
                first_err.get_or_insert(AgentError::Task(format!("jt808 listener: {e}")));
            }
        }
        let batchers = vehicle_batchers.into_iter().map(|b| ("jt808 batcher", b));
        for (what, b) in batchers.chain([("batcher", batcher_task)]) {
            match b.await {
                Err(e) => {
                    first_err.get_or_insert(AgentError::Task(format!("{what}: {e}")));
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(AgentError::Buffer(e));
                }
                Ok(Ok(())) => {}
            }
        }
        publishing.cancel();
        for p in publisher_task.into_iter().chain(vehicle_publishers) {
            if let Err(e) = p.await {
                first_err.get_or_insert(AgentError::Task(format!("publisher: {e}")));
            }
        }
        serving.cancel();
        if let Some(t) = metrics_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        buffer.lock().await.close().await;
        for b in vehicle_buffers {
            b.lock().await.close().await;
        }
        for s in stores {
            s.close().await;
        }
        tracing::info!(parent: &span, "agent stopped");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

pub use crate::durable::DurableReadings;

/// Gathers readings into batches and stores each in the buffer.
pub(crate) struct Batcher {
    pub(crate) config: Arc<AgentConfig>,
    pub(crate) buffer: Arc<Mutex<Buffer>>,
    pub(crate) stored: watch::Sender<u64>,
    pub(crate) metrics: AgentMetrics,
    pub(crate) clock: SharedClock,
    pub(crate) epoch: String,
}

#[derive(Default)]
struct Pending {
    readings: Vec<Reading>,
    waiters: Vec<tokio::sync::oneshot::Sender<bool>>,
}

impl Batcher {
    /// Run until both inputs are closed or `cancel`; then write what is held.
    pub(crate) async fn run(
        self,
        mut rx: Option<mpsc::Receiver<Reading>>,
        mut durable: Option<mpsc::Receiver<DurableReadings>>,
        cancel: CancellationToken,
    ) -> Result<(), BufferError> {
        let max = self.config.max_batch_readings;
        let mut pending = Pending {
            readings: Vec::with_capacity(max.min(4096)),
            waiters: Vec::new(),
        };
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.config.publish_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            if rx.is_none() && durable.is_none() {
                break;
            }
            tokio::select! {
                r = async { rx.as_mut().expect("guarded").recv().await }, if rx.is_some() => match r {
                    Some(r) => {
                        pending.readings.push(r);
                        if pending.readings.len() >= max {
                            self.flush(&mut pending, &mut failures).await;
                        }
                    }
                    None => rx = None,
                },
                d = async { durable.as_mut().expect("guarded").recv().await }, if durable.is_some() => match d {
                    Some(d) => self.take(d, &mut pending, &mut failures).await,
                    None => durable = None,
                },
                _ = tick.tick() => { self.flush(&mut pending, &mut failures).await; }
                _ = cancel.cancelled() => {
                    // Take what the inputs already queued, then write the last batch.
                    if let Some(rx) = rx.as_mut() {
                        while let Ok(r) = rx.try_recv() {
                            pending.readings.push(r);
                            if pending.readings.len() >= max {
                                self.flush(&mut pending, &mut failures).await;
                            }
                        }
                    }
                    if let Some(d) = durable.as_mut() {
                        while let Ok(d) = d.try_recv() {
                            self.take(d, &mut pending, &mut failures).await;
                        }
                    }
                    break;
                }
            }
        }
        self.flush(&mut pending, &mut failures).await;
        Ok(())
    }

    async fn take(&self, d: DurableReadings, pending: &mut Pending, failures: &mut u32) {
        let max = self.config.max_batch_readings;
        // Whether every batch written early for this input was stored.
        let mut all_stored = true;
        for r in d.readings {
            pending.readings.push(r);
            if pending.readings.len() >= max {
                all_stored &= self.flush(pending, failures).await;
            }
        }
        match d.done {
            Some(w) if !all_stored => {
                let _ = w.send(false);
            }
            // Nothing of it is pending: it is all stored already.
            Some(w) if pending.readings.is_empty() => {
                let _ = w.send(true);
            }
            Some(w) => pending.waiters.push(w),
            None => {}
        }
    }

    /// Store what is pending as one batch; tell the waiters. Whether it was stored.
    async fn flush(&self, pending: &mut Pending, failures: &mut u32) -> bool {
        let waiters = std::mem::take(&mut pending.waiters);
        if pending.readings.is_empty() {
            for w in waiters {
                let _ = w.send(true);
            }
            return true;
        }
        let readings = std::mem::take(&mut pending.readings);
        let n = readings.len();
        let now = self.clock.now();
        let mut b = self.buffer.lock().await;
        let agent = self.config.agent.clone();
        let epoch = self.epoch.clone();
        let result = b
            .push(now, move |seq| {
                encode_batch(&Batch {
                    agent,
                    epoch,
                    seq,
                    readings,
                })
            })
            .await;
        match result {
            Ok(outcome) => {
                *failures = 0;
                if !outcome.dropped.is_empty() {
                    self.metrics
                        .batches_dropped_total
                        .with_label_values(&["buffer_full"])
                        .inc_by(outcome.dropped.len() as u64);
                    tracing::warn!(
                        dropped = outcome.dropped.len(),
                        first = outcome.dropped[0],
                        last = outcome.dropped[outcome.dropped.len() - 1],
                        max_bytes = self.config.buffer.max_bytes,
                        "buffer full: oldest batches dropped"
                    );
                }
                buffer_gauges(&self.metrics, &b);
                drop(b);
                tracing::debug!(seq = outcome.seq, readings = n, "batch stored");
                let _ = self.stored.send(outcome.seq);
                for w in waiters {
                    let _ = w.send(true);
                }
                true
            }
            Err(e) => {
                *failures += 1;
                self.metrics
                    .readings_dropped_total
                    .with_label_values(&["buffer_error"])
                    .inc_by(n as u64);
                tracing::error!(error = %e, readings = n, consecutive_failures = *failures, "cannot store a batch; its readings are lost");
                for w in waiters {
                    let _ = w.send(false);
                }
                false
            }
        }
    }
}
