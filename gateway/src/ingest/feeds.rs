//! Polling of weather feeds: each configured URL is fetched on its interval with conditional
//! requests (`If-None-Match`, `If-Modified-Since`); a new document goes through the core like a
//! posted one; failures back off (doubling, capped).

use crate::core::handle::CoreHandle;
use prometheus::IntCounterVec;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// `[[weather_feeds]]`: a URL that serves one CAP document (or one CENC JSON document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub url: String,
    /// `cap` (default) or `cenc`.
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The longest wait after failures.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// The largest document taken, in bytes; a larger one is not read (an error, counted).
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// The feed's CA and the gateway's client certificate, for a feed on a private PKI.
    #[serde(default)]
    pub tls: crate::outbound::TargetTls,
}

fn default_kind() -> String {
    "cap".into()
}
fn default_interval_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_backoff_ms() -> u64 {
    600_000
}
fn default_max_document_bytes() -> usize {
    2 * 1024 * 1024
}

impl FeedConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "weather feed {:?}: url must be http:// or https://",
                self.url
            ));
        }
        if self.kind != "cap" && self.kind != "cenc" {
            return Err(format!(
                "weather feed {:?}: kind must be cap or cenc",
                self.url
            ));
        }
        if self.interval_ms < 100 || self.timeout_ms == 0 || self.max_backoff_ms < self.interval_ms
        {
            return Err(format!("weather feed {:?}: interval_ms >= 100, timeout_ms > 0, max_backoff_ms >= interval_ms", self.url));
        }
        if self.max_document_bytes < 1024 {
            return Err(format!(
                "weather feed {:?}: max_document_bytes must be at least 1024",
                self.url
            ));
        }
        self.client()
            .map(|_| ())
            .map_err(|e| format!("weather feed {:?}: {e}", self.url))
    }

    /// The feed's client: its TLS files read and checked, no redirects followed.
    fn client(&self) -> Result<reqwest::Client, crate::outbound::OutboundError> {
        crate::outbound::client(
            &self.tls.files(),
            Duration::from_millis(self.timeout_ms).min(Duration::from_secs(5)),
        )
    }
}

/// Poll one feed until shutdown.
pub async fn run_feed(
    feed: FeedConfig,
    core: CoreHandle,
    polls: IntCounterVec,
    shutdown: CancellationToken,
) {
    let client = match feed.client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client");
            return;
        }
    };
    let kind: &'static str = if feed.kind == "cenc" { "cenc" } else { "cap" };
    let interval = Duration::from_millis(feed.interval_ms);
    let mut wait = Duration::ZERO;
    // After a failure: from twice the interval up to `max_backoff_ms`, with jitter.
    let mut backoff = retry::Backoff::new(
        interval * 2,
        Duration::from_millis(feed.max_backoff_ms).max(interval),
    );
    let (mut etag, mut last_modified): (Option<String>, Option<String>) = (None, None);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let mut req = client
            .get(&feed.url)
            .timeout(Duration::from_millis(feed.timeout_ms));
        if let Some(e) = &etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(m) = &last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
        }
        let outcome = match req.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_MODIFIED => "not_modified",
            Ok(r) if r.status().is_success() => {
                let header = |name| {
                    r.headers()
                        .get(name)
                        .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                        .map(str::to_string)
                };
                let (new_etag, new_modified) = (
                    header(reqwest::header::ETAG),
                    header(reqwest::header::LAST_MODIFIED),
                );
                match crate::outbound::read_body(r, feed.max_document_bytes).await {
                    Ok(body) => {
                        match core.weather(kind, body).await {
                            Err(crate::core::handle::AskError::Stopping) => return,
                            Ok(Ok(o)) => {
                                tracing::info!(outcome = o.as_str(), "feed document taken");
                                etag = new_etag;
                                last_modified = new_modified;
                                "taken"
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "feed document refused");
                                // Remember it anyway: the same refused document is not fetched again.
                                etag = new_etag;
                                last_modified = new_modified;
                                "refused"
                            }
                            Err(_) => return,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the feed body");
                        "error"
                    }
                }
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "feed answered an error");
                "error"
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed unreachable");
                "error"
            }
        };
        polls.with_label_values(&[outcome]).inc();
        wait = if outcome == "error" {
            backoff.next_delay()
        } else {
            backoff.reset();
            interval
        };
    }
}
