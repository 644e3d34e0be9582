//! Time series: every reading the gateway takes, written to an InfluxDB v2 write API
//! (InfluxDB 2.x, or VictoriaMetrics' compatible endpoint) as line protocol (see the contract's
//! "Time series" section and `docs/timeseries.md`).
//!
//! - [`TimeSeriesHandle::record`] is what the core calls per reading: it encodes the line into
//!   a batch in memory and returns; it never waits for the network.
//! - [`TimeSeriesWriter::run`] sends sealed batches (by size, or by time), one request at a time,
//!   in order. While the database is unreachable, batches go to the disk spool
//!   (`<data_dir>/spool/timeseries/`) and are drained in order when it is back.
//! - Every batch in memory is also journaled (`<data_dir>/spool/timeseries-journal/`) before
//!   the message its points came in is acknowledged, so a killed gateway loses none of them.
//! - Memory is bounded (`memory_points`); past it, the oldest batches go to the spool. Points
//!   are dropped (and counted) only when the spool's byte bound is reached too, or when the
//!   database refuses a batch as malformed (400/413/422).

pub mod history;
mod journal;
mod line;
mod spool;
mod writer;

pub use line::{encode_reading, FIELDS, MEASUREMENT, TAGS};
pub use spool::{Spool, SpoolEntry, SpoolError};
pub use writer::{TimeSeriesHandle, TimeSeriesMetrics, TimeSeriesWriter};

use serde::{Deserialize, Serialize};

/// `[timeseries]` in the gateway config; `HRS_INFLUX_URL`, `HRS_INFLUX_ORG`,
/// `HRS_INFLUX_BUCKET`, `HRS_INFLUX_TOKEN` override it. No URL: no writer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSeriesConfig {
    /// Base URL of the database, e.g. `http://127.0.0.1:8086`; a path prefix is kept
    /// (`https://proxy/influx` writes to `https://proxy/influx/api/v2/write`).
    pub url: Option<String>,
    /// InfluxDB organisation (ignored by VictoriaMetrics).
    pub org: String,
    /// InfluxDB bucket (ignored by VictoriaMetrics).
    pub bucket: String,
    /// API token, sent as `Authorization: Token ...`.
    pub token: Option<String>,
    /// A batch is sealed and sent when it holds this many points...
    pub batch_points: usize,
    /// ...or when it is this old.
    pub flush_interval_ms: u64,
    /// Points held in memory at most (sealed batches and the one being filled); past it the
    /// oldest batches go to the disk spool.
    pub memory_points: usize,
    /// The disk spool's bound; past it points are dropped and counted.
    pub spool_max_bytes: u64,
    /// Timeout of one write request.
    pub request_timeout_ms: u64,
    /// Cap of the backoff between attempts while the database is unreachable.
    pub retry_max_ms: u64,
    /// Sync journal appends and spool files to the disk (survive a power cut, not only a
    /// killed process), at the cost of a disk sync per message.
    pub fsync: bool,
    /// The database's CA and the gateway's client certificate, for `https://` on a private
    /// PKI.
    pub tls: crate::outbound::TargetTls,
}

impl Default for TimeSeriesConfig {
    fn default() -> Self {
        TimeSeriesConfig {
            url: None,
            org: "hrs".into(),
            bucket: "hrs".into(),
            token: None,
            batch_points: 5_000,
            flush_interval_ms: 1_000,
            memory_points: 200_000,
            spool_max_bytes: 1 << 30,
            request_timeout_ms: 10_000,
            retry_max_ms: 5_000,
            fsync: false,
            tls: crate::outbound::TargetTls::default(),
        }
    }
}

impl std::fmt::Debug for TimeSeriesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSeriesConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("batch_points", &self.batch_points)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("memory_points", &self.memory_points)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("fsync", &self.fsync)
            .finish()
    }
}

impl TimeSeriesConfig {
    /// The `HRS_INFLUX_*` environment variables override the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(v) = get("HRS_INFLUX_URL") {
            self.url = if v.is_empty() { None } else { Some(v) };
        }
        if let Some(v) = get("HRS_INFLUX_ORG") {
            self.org = v;
        }
        if let Some(v) = get("HRS_INFLUX_BUCKET") {
            self.bucket = v;
        }
        if let Some(v) = get("HRS_INFLUX_TOKEN") {
            self.token = if v.is_empty() { None } else { Some(v) };
        }
    }

    pub fn validate(&self) -> Result<(), TimeSeriesError> {
        let bad = |m: String| Err(TimeSeriesError::Config(m));
        if let Some(url) = &self.url {
            self.write_url_for(url)?;
        }
        crate::outbound::client(&self.tls.files(), std::time::Duration::from_secs(5))
            .map_err(|e| TimeSeriesError::Tls(e.to_string()))?;
        if self.batch_points == 0 {
            return bad("timeseries.batch_points must be at least 1".into());
        }
        if self.memory_points < 2 * self.batch_points {
            return bad(format!(
                "timeseries.memory_points ({}) must be at least twice batch_points ({})",
                self.memory_points, self.batch_points
            ));
        }
        if self.flush_interval_ms == 0 {
            return bad("timeseries.flush_interval_ms must be at least 1".into());
        }
        if self.request_timeout_ms < 100 {
            return bad("timeseries.request_timeout_ms must be at least 100".into());
        }
        if self.retry_max_ms < 100 {
            return bad("timeseries.retry_max_ms must be at least 100".into());
        }
        Ok(())
    }

    /// The write endpoint: `{url}/api/v2/write?org=..&bucket=..&precision=ms`.
    pub fn write_url(&self) -> Result<Option<reqwest::Url>, TimeSeriesError> {
        self.url
            .as_deref()
            .map(|u| self.write_url_for(u))
            .transpose()
    }

    fn write_url_for(&self, base: &str) -> Result<reqwest::Url, TimeSeriesError> {
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| TimeSeriesError::Config(format!("timeseries.url {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(TimeSeriesError::Config(format!(
                "timeseries.url {base:?} must be http://host[:port][/prefix] or https://..."
            )));
        }
        let mut url = parsed;
        let path = format!("{}/api/v2/write", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("org", &self.org)
            .append_pair("bucket", &self.bucket)
            .append_pair("precision", "ms");
        Ok(url)
    }
}

/// Errors of the time-series layer.
#[derive(Debug, thiserror::Error)]
pub enum TimeSeriesError {
    #[error("time-series config: {0}")]
    Config(String),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("time-series metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("time-series HTTP client: {0}")]
    Tls(String),
    #[error("time-series HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("reading the time-series store: {0}")]
    Read(String),
}

#[cfg(test)]
mod tests;
