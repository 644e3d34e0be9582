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
use crate::config::{AgentConfig, ConfigError};
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
}

/// A configured agent, its buffer open, ready to run.
pub struct Agent {
    config: Arc<AgentConfig>,
    clock: SharedClock,
    metrics: AgentMetrics,
    buffer: Buffer,
    metrics_listener: Option<tokio::net::TcpListener>,
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
        tracing::info!(
            agent = %config.agent, site = %config.site, epoch = buffer.epoch(), next_seq = buffer.next_seq(),
            buffered = buffer.len(), "agent built"
        );
        Ok(Agent {
            config: Arc::new(config),
            clock,
            metrics,
            buffer,
            metrics_listener,
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

    /// Run until `shutdown` completes, then stop in order (see the module documentation).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let Agent {
            config,
            clock,
            metrics,
            buffer,
            metrics_listener,
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
        for d in &config.devices {
            let poller = DevicePoller::new(d.clone(), metrics.clone(), clock.clone());
            let span = tracing::info_span!(parent: &span, "device", device = %d.name);
            pollers.push(tokio::spawn(
                poller
                    .run(readings_tx.clone(), acquire.clone())
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
        };
        let publisher_task = tokio::spawn(
            publisher
                .run(publishing.clone())
                .instrument(tracing::info_span!(parent: &span, "publisher")),
        );
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
                .run(readings_rx, acquire.clone())
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
        match batcher_task.await {
            Err(e) => {
                first_err.get_or_insert(AgentError::Task(format!("batcher: {e}")));
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(AgentError::Buffer(e));
            }
            Ok(Ok(())) => {}
        }
        publishing.cancel();
        if let Err(e) = publisher_task.await {
            first_err.get_or_insert(AgentError::Task(format!("publisher: {e}")));
        }
        serving.cancel();
        if let Some(t) = metrics_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        buffer.lock().await.close().await;
        tracing::info!(parent: &span, "agent stopped");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Gathers readings into batches and stores each in the buffer.
struct Batcher {
    config: Arc<AgentConfig>,
    buffer: Arc<Mutex<Buffer>>,
    stored: watch::Sender<u64>,
    metrics: AgentMetrics,
    clock: SharedClock,
    epoch: String,
}

impl Batcher {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Reading>,
        cancel: CancellationToken,
    ) -> Result<(), BufferError> {
        let max = self.config.max_batch_readings;
        let mut pending: Vec<Reading> = Vec::with_capacity(max.min(4096));
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.config.publish_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => {
                        pending.push(r);
                        if pending.len() >= max {
                            self.flush(&mut pending, &mut failures).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.flush(&mut pending, &mut failures).await,
                _ = cancel.cancelled() => {
                    // Take what the pollers already queued, then write the last batch.
                    while let Ok(r) = rx.try_recv() {
                        pending.push(r);
                        if pending.len() >= max {
                            self.flush(&mut pending, &mut failures).await;
                        }
                    }
                    break;
                }
            }
        }
        self.flush(&mut pending, &mut failures).await;
        Ok(())
    }

    async fn flush(&self, pending: &mut Vec<Reading>, failures: &mut u32) {
        if pending.is_empty() {
            return;
        }
        let readings = std::mem::take(pending);
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
            }
            Err(e) => {
                *failures += 1;
                self.metrics
                    .readings_dropped_total
                    .with_label_values(&["buffer_error"])
                    .inc_by(n as u64);
                tracing::error!(error = %e, readings = n, consecutive_failures = *failures, "cannot store a batch; its readings are lost");
            }
        }
    }
}
