//! How the gateway calls out over HTTP: the platform and further endpoints, subscribers'
//! webhooks, robots, the time-series store and the weather feeds all take their client from
//! here. Per configured target: `ca_file` (the CAs of a private PKI; only they are trusted
//! for the target) and `client_cert_file` / `client_key_file` for targets that ask for a
//! client certificate; without them, the public roots bundled with the gateway. For all:
//! redirects are never followed (a 3xx is the answer), and a response body is read with a
//! bound.
//!
//! ```toml
//! [[forwarding.endpoints]]
//! name = "province"
//! url = "https://platform.example.gov.cn/api/incidents"
//! ca_file = "/etc/hrs/platform-ca.pem"
//! client_cert_file = "/etc/hrs/gateway.pem"
//! client_key_file = "/etc/hrs/gateway.key"
//! ```

pub use broker_link::TlsFiles;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The `tls` table of a target (the time-series store, a weather feed, the heartbeat):
/// `tls = { ca_file = "...", client_cert_file = "...", client_key_file = "..." }`.
/// Forwarding endpoints take the same three keys at their top level, as `[mqtt]` does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetTls {
    /// PEM CAs of the target's certificate, the only ones trusted for it (default: the
    /// public roots bundled with the gateway).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for a target that requires one (with `client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl TargetTls {
    pub fn is_empty(&self) -> bool {
        !self.files().any()
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
        }
    }
}

/// Why an outbound client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Tls(#[from] broker_link::TlsError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A client for one target: its TLS files read and checked now (so `check` and the start
/// name a bad file), no redirects followed, connections opened within `connect_timeout`.
/// Each request sets its own overall timeout.
pub fn client(tls: &TlsFiles, connect_timeout: Duration) -> Result<reqwest::Client, OutboundError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    if tls.any() {
        builder = builder.use_preconfigured_tls(broker_link::client_config(tls)?);
    }
    Ok(builder.build()?)
}

/// Why a response body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("reading the response body: {0}")]
    Read(#[from] reqwest::Error),
}

/// Read a response's body, at most `max` bytes: a larger one is an error (a `Content-Length`
/// above the bound is refused before anything is read).
pub async fn read_body(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge { max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `max` bytes of a body, as text, for an error message (the rest is not read).
pub async fn body_snippet(mut resp: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while body.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `answer`.
    async fn serve(answer: &'static str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_redirect_is_the_answer_not_followed() {
        let url = serve("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n").await;
        let c = client(&TlsFiles::default(), Duration::from_secs(2)).unwrap();
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302);
    }

    #[tokio::test]
    async fn bodies_are_read_with_a_bound() {
        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789").await;
        let c = client(&TlsFiles::default(), Duration::from_secs(2)).unwrap();
        let ok = read_body(c.get(&url).send().await.unwrap(), 10)
            .await
            .unwrap();
        assert_eq!(ok, b"0123456789");
        let big = read_body(c.get(&url).send().await.unwrap(), 9).await;
        assert!(
            matches!(big, Err(BodyError::TooLarge { max: 9 })),
            "{big:?}"
        );
        // No length: read chunk by chunk, cut at the bound.
        let url = serve("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789").await;
        let big = read_body(c.get(&url).send().await.unwrap(), 5).await;
        assert!(
            matches!(big, Err(BodyError::TooLarge { max: 5 })),
            "{big:?}"
        );
        let snippet = body_snippet(c.get(&url).send().await.unwrap(), 4).await;
        assert_eq!(snippet, "0123");
    }

    #[test]
    fn tls_files_are_checked_when_the_client_is_made() {
        let tls = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = client(&tls, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("ca_file"), "{e}");
    }
}
