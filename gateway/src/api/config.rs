//! `[http]`: where the API listens and what it bounds.

use super::HttpLimits;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// A client must send a request's headers within this time, or its connection is closed.
    pub header_read_timeout_ms: u64,
    /// A request's body must arrive within this time (408 otherwise).
    pub body_read_timeout_ms: u64,
    /// Requests handled at once; beyond this they are answered 503 at once (event streams
    /// count apart, see `max_sse_streams`).
    pub max_concurrent_requests: usize,
    /// Server-Sent Event streams open at once; beyond this a new one is answered 503.
    pub max_sse_streams: usize,
    /// The largest request body of an action or a subscriber, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// The largest weather document posted (CAP, CENC), in bytes (413 beyond).
    pub max_document_bytes: usize,
    /// The most rows of one CSV export, and incidents read for one alarm-load answer.
    pub csv_row_cap: i64,
    /// `/readyz` says 503 when the core has not turned for this long.
    pub core_stall_ms: u64,
    /// HTTPS: the server's certificate chain (PEM). With `tls_key_file`, the API speaks only
    /// TLS (a plain HTTP request gets no answer); both are read again on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of `tls_cert_file` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
    /// A TLS handshake must finish within this time, or the connection is closed.
    pub tls_handshake_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8080".parse().expect("literal address"),
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_concurrent_requests: 256,
            max_sse_streams: 256,
            max_body_bytes: 64 * 1024,
            max_document_bytes: 2 * 1024 * 1024,
            csv_row_cap: 100_000,
            core_stall_ms: 15_000,
            tls_cert_file: None,
            tls_key_file: None,
            tls_handshake_timeout_ms: 10_000,
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, v, min) in [
            (
                "http.header_read_timeout_ms",
                self.header_read_timeout_ms,
                100,
            ),
            ("http.body_read_timeout_ms", self.body_read_timeout_ms, 100),
            ("http.core_stall_ms", self.core_stall_ms, 1000),
            (
                "http.tls_handshake_timeout_ms",
                self.tls_handshake_timeout_ms,
                100,
            ),
        ] {
            if v < min {
                bail!("{key} must be at least {min}");
            }
        }
        if self.max_concurrent_requests == 0 || self.max_sse_streams == 0 {
            bail!("http.max_concurrent_requests and http.max_sse_streams must be at least 1");
        }
        if self.max_body_bytes < 1024 || self.max_document_bytes < 1024 {
            bail!("http.max_body_bytes and http.max_document_bytes must be at least 1024");
        }
        if self.csv_row_cap < 1 {
            bail!("http.csv_row_cap must be at least 1");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            bail!("http.tls_cert_file and http.tls_key_file go together");
        }
        Ok(())
    }

    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            csv_row_cap: self.csv_row_cap,
            max_body_bytes: self.max_body_bytes,
            max_document_bytes: self.max_document_bytes,
            core_stall_ms: self.core_stall_ms,
        }
    }
}
