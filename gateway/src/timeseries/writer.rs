//! The handle the core records readings with, and the task that writes them.

use super::journal::Journal;
use super::line::encode_reading;
use super::spool::{Spool, SpoolError};
use super::{TimeSeriesConfig, TimeSeriesError};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemetry::{AgentId, Category, PointSpec, Reading, SiteId};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The writer's metrics, registered once on the gateway's registry.
#[derive(Clone)]
pub struct TimeSeriesMetrics {
    pub points_written: IntCounter,
    pub points_spooled: IntCounter,
    /// By reason: `spool_full`, `spool_io`, `refused`.
    pub points_dropped: IntCounterVec,
    pub spool_bytes: IntGauge,
    pub memory_points: IntGauge,
    pub write_seconds: Histogram,
    /// Failed write attempts by reason: `unreachable`, `timeout`, `server_error`, `auth`, `refused`.
    pub write_failures: IntCounterVec,
    /// 1 while the last write attempt succeeded.
    pub up: IntGauge,
    /// Journal appends that failed (the points stay in memory; a crash then would lose them).
    pub journal_failures: IntCounter,
}

impl TimeSeriesMetrics {
    pub fn register(r: &Registry) -> Result<TimeSeriesMetrics, prometheus::Error> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            m: T,
        ) -> Result<T, prometheus::Error> {
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let m = TimeSeriesMetrics {
            points_written: reg(
                r,
                IntCounter::new(
                    "hrs_timeseries_points_written_total",
                    "Points the time-series database took",
                )?,
            )?,
            points_spooled: reg(
                r,
                IntCounter::new(
                    "hrs_timeseries_points_spooled_total",
                    "Points put into the disk spool",
                )?,
            )?,
            points_dropped: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hrs_timeseries_points_dropped_total",
                        "Points lost, by reason (spool_full, spool_io, refused)",
                    ),
                    &["reason"],
                )?,
            )?,
            spool_bytes: reg(
                r,
                IntGauge::new(
                    "hrs_timeseries_spool_bytes",
                    "Bytes in the time-series disk spool",
                )?,
            )?,
            memory_points: reg(
                r,
                IntGauge::new("hrs_timeseries_memory_points", "Points waiting in memory")?,
            )?,
            write_seconds: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "hrs_timeseries_write_seconds",
                        "Latency of one time-series write request",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ]),
                )?,
            )?,
            write_failures: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "hrs_timeseries_write_failures_total",
                        "Failed time-series write attempts, by reason",
                    ),
                    &["reason"],
                )?,
            )?,
            up: reg(
                r,
                IntGauge::new(
                    "hrs_timeseries_up",
                    "1 while the last time-series write succeeded",
                )?,
            )?,
            journal_failures: reg(
                r,
                IntCounter::new(
                    "hrs_timeseries_journal_failures_total",
                    "Failed appends to the time-series journal",
                )?,
            )?,
        };
        for reason in ["spool_full", "spool_io", "refused"] {
            m.points_dropped.with_label_values(&[reason]);
        }
        for reason in ["unreachable", "timeout", "server_error", "auth", "refused"] {
            m.write_failures.with_label_values(&[reason]);
        }
        Ok(m)
    }
}

/// A sealed batch of line protocol.
struct Sealed {
    no: u64,
    body: String,
    points: usize,
}

/// What waits in memory.
struct Pending {
    current: String,
    current_points: usize,
    current_since: Option<Instant>,
    sealed: VecDeque<Sealed>,
    /// Points in `current` and `sealed`.
    points: usize,
    /// The number of the batch being filled (`current`); sealing gives it and moves on.
    next_no: u64,
    /// The journal file of the batch being filled, and how many bytes of `current` it holds.
    journal_file: Option<std::fs::File>,
    journaled: usize,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Locked after `pending` where both are held.
    spool: Mutex<Spool>,
    journal: Journal,
    wake: Notify,
    metrics: TimeSeriesMetrics,
    batch_points: usize,
    memory_points: usize,
}

impl Shared {
    /// Append what the batch being filled holds beyond its journal file to that file.
    fn journal_current(&self, p: &mut Pending) -> Result<(), SpoolError> {
        let Pending {
            current,
            journaled,
            journal_file,
            next_no,
            ..
        } = p;
        match self.journal.append(
            journal_file,
            *next_no,
            *journaled,
            &current.as_bytes()[*journaled..],
        ) {
            Ok(()) => {
                *journaled = current.len();
                Ok(())
            }
            Err(e) => {
                // Kept in memory; the next sync tries again (a line twice is harmless: the
                // database keeps one point per series and time).
                *journal_file = None;
                self.metrics.journal_failures.inc();
                tracing::error!(error = %e, "time-series journal append failed");
                Err(e)
            }
        }
    }

    /// Seal the batch being filled. Only once its journal file holds all of it, unless
    /// `force` (the batch goes to the spool at once): a batch whose last lines could not be
    /// journaled stays the one being filled, so the next sync appends them to its file (its
    /// flush timer starts again).
    fn seal(&self, p: &mut Pending, force: bool) {
        if p.current_points == 0 {
            return;
        }
        if self.journal_current(p).is_err() && !force {
            p.current_since = Some(Instant::now());
            return;
        }
        p.journal_file = None;
        p.journaled = 0;
        let cap = p.current.capacity();
        let body = std::mem::replace(&mut p.current, String::with_capacity(cap));
        p.sealed.push_back(Sealed {
            no: p.next_no,
            body,
            points: p.current_points,
        });
        p.next_no += 1;
        p.current_points = 0;
        p.current_since = None;
        self.wake.notify_one();
    }

    /// Put a batch into the spool (its journal file goes); count it as spooled, or as dropped
    /// when it cannot be. Returns whether it is in the spool.
    fn spill(&self, spool: &mut Spool, b: &Sealed) -> bool {
        let spooled = match spool.push(b.no, b.body.as_bytes(), b.points) {
            Ok(()) => {
                self.metrics.points_spooled.inc_by(b.points as u64);
                true
            }
            Err(SpoolError::Full { used, max, needed }) => {
                self.metrics
                    .points_dropped
                    .with_label_values(&["spool_full"])
                    .inc_by(b.points as u64);
                tracing::error!(
                    points = b.points,
                    used,
                    max,
                    needed,
                    "time-series spool full: points dropped"
                );
                false
            }
            Err(e) => {
                self.metrics
                    .points_dropped
                    .with_label_values(&["spool_io"])
                    .inc_by(b.points as u64);
                tracing::error!(points = b.points, error = %e, "time-series spool write failed: points dropped");
                false
            }
        };
        self.metrics.spool_bytes.set(spool.bytes() as i64);
        self.journal.remove(b.no);
        spooled
    }

    /// Keep sealed batches and the batch being filled within `memory_points`: after a seal,
    /// move the oldest sealed batches to the spool until a whole new batch fits again.
    fn enforce_memory_bound(&self, p: &mut Pending) {
        let sealed_bound = self.memory_points - self.batch_points;
        if p.points <= sealed_bound {
            return;
        }
        let mut spool = self.spool.lock().expect("spool lock");
        while p.points > sealed_bound {
            let Some(b) = p.sealed.pop_front() else { break };
            p.points -= b.points;
            self.spill(&mut spool, &b);
        }
    }

    /// Move every batch in memory (the one being filled too) to the spool.
    fn spill_all(&self, seal_current: bool) {
        let mut p = self.pending.lock().expect("pending lock");
        if seal_current {
            self.seal(&mut p, true);
        }
        if p.sealed.is_empty() {
            return;
        }
        let mut spool = self.spool.lock().expect("spool lock");
        while let Some(b) = p.sealed.pop_front() {
            p.points -= b.points;
            self.spill(&mut spool, &b);
        }
        self.metrics.memory_points.set(p.points as i64);
    }
}

/// The core's handle: cheap to clone, `record` never waits for the network.
#[derive(Clone)]
pub struct TimeSeriesHandle {
    shared: Arc<Shared>,
    /// Dropped with the last handle: tells the writer that no more points will come.
    _alive: mpsc::Sender<()>,
}

impl TimeSeriesHandle {
    /// Record one taken reading. Bounded memory: when the writer is behind or the database is
    /// down, the oldest batches go to the disk spool.
    pub fn record(
        &self,
        site: &SiteId,
        agent: &AgentId,
        reading: &Reading,
        spec: Option<&PointSpec>,
        category: Option<&Category>,
    ) {
        let s = &*self.shared;
        let mut p = s.pending.lock().expect("pending lock");
        encode_reading(&mut p.current, site, agent, reading, spec, category);
        p.current_points += 1;
        p.points += 1;
        if p.current_since.is_none() {
            // The first point of a batch: the writer starts its flush timer.
            p.current_since = Some(Instant::now());
            s.wake.notify_one();
        }
        if p.current_points >= s.batch_points {
            s.seal(&mut p, false);
            s.enforce_memory_bound(&mut p);
        }
        s.metrics.memory_points.set(p.points as i64);
    }

    /// Append the points recorded since the last successful call to the journal. The core
    /// calls it before it acknowledges the message they came in, so a crash after the
    /// acknowledgement cannot lose them; on `Err` (counted in
    /// `hrs_timeseries_journal_failures_total`) it does not acknowledge, and calls again.
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut p = self.shared.pending.lock().expect("pending lock");
        self.shared.journal_current(&mut p)
    }

    /// Seal the batch being filled so that the writer sends it now.
    pub fn flush(&self) {
        let mut p = self.shared.pending.lock().expect("pending lock");
        self.shared.seal(&mut p, false);
    }

    /// Points in memory and in the spool, not yet written.
    pub fn backlog_points(&self) -> usize {
        let p = self.shared.pending.lock().expect("pending lock").points;
        p + self.shared.spool.lock().expect("spool lock").points()
    }
}

/// How a write attempt went.
enum Outcome {
    Written,
    /// Try again later (unreachable, timeout, 5xx, 429, auth, unknown bucket...).
    Retry(&'static str, String),
    /// The database refused the batch as such (malformed, too large): retrying cannot help.
    Refused(String),
}

/// The next batch to send, and where it is kept.
enum Next {
    Memory(Sealed),
    Spool {
        no: u64,
        points: usize,
        path: std::path::PathBuf,
    },
}

/// The writer task.
pub struct TimeSeriesWriter {
    shared: Arc<Shared>,
    client: reqwest::Client,
    /// The bound on one write request, connection to answer.
    request_timeout: Duration,
    url: reqwest::Url,
    token: Option<String>,
    flush_interval: Duration,
    retry_max: Duration,
    alive: mpsc::Receiver<()>,
}

impl TimeSeriesWriter {
    /// Build the writer and its handle from the config, or `None` when no URL is set. Opens the
    /// spool under `<data_dir>/spool/timeseries/` (what a previous run left is drained first)
    /// and registers the metrics on `registry`.
    pub fn from_config(
        config: &TimeSeriesConfig,
        data_dir: &Path,
        registry: &Registry,
    ) -> Result<Option<(TimeSeriesHandle, TimeSeriesWriter)>, TimeSeriesError> {
        config.validate()?;
        let Some(url) = config.write_url()? else {
            return Ok(None);
        };
        let spool = Spool::open(
            &data_dir.join("spool").join("timeseries"),
            config.spool_max_bytes,
        )?
        .with_fsync(config.fsync);
        let (journal, recovered) = Journal::open(
            &data_dir.join("spool").join("timeseries-journal"),
            config.fsync,
        )?;
        let metrics = TimeSeriesMetrics::register(registry)?;
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let client =
            crate::outbound::client(&config.tls.files(), timeout.min(Duration::from_secs(5)))
                .map_err(|e| TimeSeriesError::Tls(e.to_string()))?;
        // New batches are numbered after everything an earlier run left.
        let next_no = spool
            .last_no()
            .max(recovered.last().map(|r| r.no))
            .map_or(1, |n| n + 1);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                current: String::with_capacity(config.batch_points.min(10_000) * 160),
                current_points: 0,
                current_since: None,
                sealed: VecDeque::new(),
                points: 0,
                next_no,
                journal_file: None,
                journaled: 0,
            }),
            spool: Mutex::new(spool),
            journal,
            wake: Notify::new(),
            metrics,
            batch_points: config.batch_points,
            memory_points: config.memory_points,
        });
        {
            // Batches that were in memory when an earlier run died: into the spool, in order
            // (unless they reached it before the crash).
            let mut spool = shared.spool.lock().expect("spool lock");
            for r in recovered {
                if spool.file(r.no).is_some() || r.points == 0 {
                    shared.journal.remove(r.no);
                    continue;
                }
                let batch = Sealed {
                    no: r.no,
                    body: String::from_utf8_lossy(&r.body).into_owned(),
                    points: r.points,
                };
                if shared.spill(&mut spool, &batch) {
                    tracing::info!(
                        batch = r.no,
                        points = r.points,
                        "time-series journal batch recovered into the spool"
                    );
                }
            }
            shared.metrics.spool_bytes.set(spool.bytes() as i64);
            if spool.batches() > 0 {
                tracing::info!(
                    batches = spool.batches(),
                    points = spool.points(),
                    bytes = spool.bytes(),
                    "time-series spool from an earlier run: draining first"
                );
            }
        }
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let handle = TimeSeriesHandle {
            shared: shared.clone(),
            _alive: alive_tx,
        };
        let writer = TimeSeriesWriter {
            shared,
            client,
            request_timeout: timeout,
            url,
            token: config.token.clone(),
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            alive: alive_rx,
        };
        Ok(Some((handle, writer)))
    }

    pub fn metrics(&self) -> TimeSeriesMetrics {
        self.shared.metrics.clone()
    }

    /// Send batches until `shutdown`; then wait (5 s at most) for the handles to be dropped and
    /// put what is left in memory into the spool for the next run.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!("timeseries", url = %redact(&self.url));
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(mut self, shutdown: CancellationToken) {
        let shared = self.shared.clone();
        let mut backoff = retry::Backoff::new(Duration::from_millis(100), self.retry_max);
        let mut down_since: Option<Instant> = None;
        tracing::info!("time-series writer started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.seal_if_due();
            let Some(next) = self.next_batch() else {
                // Nothing sealed: wait for a batch, for the time to seal the current one, or the end.
                let due = self.seal_deadline();
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = shared.wake.notified() => {}
                    _ = sleep_until_opt(due) => {}
                }
                continue;
            };
            let (outcome, points) = match &next {
                Next::Memory(b) => (self.send(b.body.clone().into_bytes()).await, b.points),
                Next::Spool { path, points, .. } => match tokio::fs::read(path).await {
                    Ok(body) => (self.send(body).await, *points),
                    Err(e) => {
                        shared
                            .metrics
                            .points_dropped
                            .with_label_values(&["spool_io"])
                            .inc_by(*points as u64);
                        tracing::error!(points, file = %path.display(), error = %e, "time-series spool file unreadable: dropped");
                        self.forget(&next);
                        continue;
                    }
                },
            };
            match outcome {
                Outcome::Written => {
                    shared.metrics.points_written.inc_by(points as u64);
                    shared.metrics.up.set(1);
                    if let Some(since) = down_since.take() {
                        tracing::info!(
                            down_for_ms = since.elapsed().as_millis() as u64,
                            "time-series database reachable again; draining the spool"
                        );
                    }
                    backoff.reset();
                    self.forget(&next);
                }
                Outcome::Refused(reason) => {
                    shared
                        .metrics
                        .points_dropped
                        .with_label_values(&["refused"])
                        .inc_by(points as u64);
                    tracing::error!(points, %reason, "time-series batch refused by the database: dropped");
                    self.forget(&next);
                }
                Outcome::Retry(kind, reason) => {
                    shared.metrics.up.set(0);
                    if down_since.is_none() {
                        down_since = Some(Instant::now());
                        tracing::warn!(kind, %reason, "time-series database unreachable; spooling to disk");
                    } else {
                        tracing::debug!(kind, %reason, "time-series write failed again");
                    }
                    // Keep the batch and everything in memory on disk while the database is away.
                    if let Next::Memory(b) = &next {
                        let mut spool = shared.spool.lock().expect("spool lock");
                        shared.spill(&mut spool, b);
                    }
                    shared.spill_all(false);
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
        // Stop: the core may still record its last readings; wait until every handle is gone.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.alive.recv()).await;
        shared.spill_all(true);
        let spool = shared.spool.lock().expect("spool lock");
        tracing::info!(
            spooled_batches = spool.batches(),
            spooled_points = spool.points(),
            "time-series writer stopped"
        );
    }

    fn seal_deadline(&self) -> Option<Instant> {
        let p = self.shared.pending.lock().expect("pending lock");
        p.current_since.map(|t| t + self.flush_interval)
    }

    fn seal_if_due(&self) {
        let mut p = self.shared.pending.lock().expect("pending lock");
        if p.current_since
            .is_some_and(|t| t.elapsed() >= self.flush_interval)
        {
            self.shared.seal(&mut p, false);
        }
    }

    /// The oldest batch, from memory or the spool (batch numbers give the order).
    fn next_batch(&self) -> Option<Next> {
        let mut p = self.shared.pending.lock().expect("pending lock");
        let spool = self.shared.spool.lock().expect("spool lock");
        let mem = p.sealed.front().map(|b| b.no);
        match (mem, spool.first()) {
            (Some(m), Some((s, e))) if s < m => Some(Next::Spool {
                no: s,
                points: e.points,
                path: spool.file(s)?,
            }),
            (None, Some((s, e))) => Some(Next::Spool {
                no: s,
                points: e.points,
                path: spool.file(s)?,
            }),
            (Some(_), _) => {
                let b = p.sealed.pop_front()?;
                p.points -= b.points;
                self.shared.metrics.memory_points.set(p.points as i64);
                Some(Next::Memory(b))
            }
            (None, None) => None,
        }
    }

    /// A batch is done with (written or refused): it leaves the spool or the journal.
    fn forget(&self, next: &Next) {
        match next {
            Next::Spool { no, .. } => {
                let mut spool = self.shared.spool.lock().expect("spool lock");
                if let Err(e) = spool.remove(*no) {
                    tracing::error!(error = %e, "removing a drained spool file");
                }
                self.shared.metrics.spool_bytes.set(spool.bytes() as i64);
            }
            Next::Memory(b) => self.shared.journal.remove(b.no),
        }
    }

    async fn send(&self, body: Vec<u8>) -> Outcome {
        let started = std::time::Instant::now();
        let mut req = self
            .client
            .post(self.url.clone())
            .timeout(self.request_timeout)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        let outcome = match req.send().await {
            Err(e) if e.is_timeout() => Outcome::Retry("timeout", e.to_string()),
            Err(e) => Outcome::Retry("unreachable", format!("{e:#}")),
            Ok(r) => {
                let status = r.status();
                if status.is_success() {
                    Outcome::Written
                } else {
                    let text = tokio::time::timeout(
                        Duration::from_secs(2),
                        crate::outbound::body_snippet(r, 4096),
                    )
                    .await
                    .unwrap_or_default();
                    let reason =
                        format!("{status}: {}", text.chars().take(500).collect::<String>());
                    match status.as_u16() {
                        400 | 413 | 422 => Outcome::Refused(reason),
                        401 | 403 | 404 => Outcome::Retry("auth", reason),
                        _ => Outcome::Retry("server_error", reason),
                    }
                }
            }
        };
        self.shared
            .metrics
            .write_seconds
            .observe(started.elapsed().as_secs_f64());
        match &outcome {
            Outcome::Written => {}
            Outcome::Retry(kind, _) => self
                .shared
                .metrics
                .write_failures
                .with_label_values(&[kind])
                .inc(),
            Outcome::Refused(_) => self
                .shared
                .metrics
                .write_failures
                .with_label_values(&["refused"])
                .inc(),
        }
        outcome
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}
