#![doc = include_str!("../README.md")]
//! Where an MQTT broker is and how to reach it: the `mqtt://` / `mqtts://` URL, and TLS
//! (server verification against a CA file or the system's roots, and an optional client
//! certificate for brokers that require one).
//!
//! Shared by the agent and the gateway, so both read a broker the same way. TLS is rustls
//! with the `ring` provider; nothing here touches the network.
//!
//! ```toml
//! [mqtt]
//! url = "mqtts://broker.example.cn:8883"   # mqtts:// (or ssl://) turns TLS on; port 8883 by default
//! ca_file = "/etc/hrs/broker-ca.pem"       # CAs that sign the broker's certificate; default: the system's roots
//! client_cert_file = "/etc/hrs/agent.pem"  # only for brokers with `require_certificate true`
//! client_key_file = "/etc/hrs/agent.key"
//! ```

use std::sync::Arc;

pub mod probe;
mod tls;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::ServerName;
pub use tls::{client_config, server_certified_key, TlsError, TlsFiles};

/// Why a broker address or its TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("mqtt url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("mqtt {0}")]
    Tls(#[from] TlsError),
}

/// A broker address parsed out of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    /// The URL asked for TLS (`mqtts://` or `ssl://`).
    pub tls: bool,
}

/// Parse `mqtt://host[:port]` (also `tcp://`; port 1883 by default) or
/// `mqtts://host[:port]` (also `ssl://`; port 8883 by default). IPv6 hosts go in brackets.
pub fn parse_mqtt_url(url: &str) -> Result<BrokerAddr, BrokerError> {
    let bad = |reason: String| BrokerError::Url {
        url: url.to_string(),
        reason,
    };
    let (rest, tls) = if let Some(r) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (r, false)
    } else if let Some(r) = url
        .strip_prefix("mqtts://")
        .or_else(|| url.strip_prefix("ssl://"))
    {
        (r, true)
    } else {
        return Err(bad("must start with mqtt:// or mqtts://".into()));
    };
    let default_port = if tls { 8883 } else { 1883 };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('@') {
        return Err(bad(
            "must be mqtt[s]://host[:port] with no path and no user (use username and password)"
                .into(),
        ));
    }
    let (host, port) = if let Some(h) = rest.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(|| bad("unclosed [".into()))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad(format!("bad port {p:?}")))?,
            None if p.is_empty() => default_port,
            None => return Err(bad("bad text after ]".into())),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| bad(format!("bad port {p:?}")))?,
            ),
            None => (rest.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host".into()));
    }
    if port == 0 {
        return Err(bad("port 0".into()));
    }
    Ok(BrokerAddr { host, port, tls })
}

/// A broker ready to connect to: its address and, for TLS, a loaded client configuration.
#[derive(Clone)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Broker {
    /// Resolve a URL and TLS settings: TLS is on when the URL is `mqtts://` or `tls` is set.
    /// The files are read and checked here, so a bad CA or key is reported by `check`
    /// before anything runs. TLS files with TLS off are refused (they would be ignored).
    pub fn resolve(url: &str, tls: bool, files: &TlsFiles) -> Result<Broker, BrokerError> {
        let addr = parse_mqtt_url(url)?;
        let tls = tls || addr.tls;
        if !tls {
            if files.any() {
                return Err(BrokerError::Tls(TlsError::Settings(format!(
                    "TLS files are set but {url:?} is plain MQTT; use mqtts:// (or tls = true)"
                ))));
            }
            return Ok(Broker {
                host: addr.host,
                port: addr.port,
                tls: None,
            });
        }
        ServerName::try_from(addr.host.clone()).map_err(|e| BrokerError::Url {
            url: url.to_string(),
            reason: format!(
                "{:?} cannot be checked against a certificate: {e}",
                addr.host
            ),
        })?;
        let config = client_config(files)?;
        Ok(Broker {
            host: addr.host,
            port: addr.port,
            tls: Some(Arc::new(config)),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The transport: TCP, or TLS with the loaded configuration.
    pub fn transport(&self) -> Transport {
        match &self.tls {
            Some(cfg) => Transport::tls_with_config(TlsConfiguration::Rustls(cfg.clone())),
            None => Transport::tcp(),
        }
    }

    /// MQTT options for this broker with the transport (TCP or TLS) set.
    pub fn options(&self, client_id: impl Into<String>) -> MqttOptions {
        let mut opts = MqttOptions::new(client_id, self.host.clone(), self.port);
        opts.set_transport(self.transport());
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (url, host, port, tls) in [
            ("mqtt://127.0.0.1:1884", "127.0.0.1", 1884, false),
            ("mqtts://broker", "broker", 8883, true),
            ("mqtt://[::1]:1885", "::1", 1885, false),
        ] {
            let want = BrokerAddr {
                host: host.into(),
                port,
                tls,
            };
            assert_eq!(parse_mqtt_url(url).unwrap(), want, "{url}");
        }
        for (url, port) in [
            ("mqtt://broker", 1883),
            ("tcp://broker/", 1883),
            ("ssl://broker:9883", 9883),
            ("mqtts://[::1]", 8883),
        ] {
            assert_eq!(parse_mqtt_url(url).unwrap().port, port, "{url}");
        }
        for bad in [
            "http://broker",
            "mqtt://broker:x",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://broker/topic",
            "mqtt://user:pw@broker",
            "mqtt://broker:0",
            "mqtt://[::1",
        ] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn plain_broker_refuses_tls_files() {
        let files = TlsFiles {
            ca_file: Some("/x/ca.pem".into()),
            ..Default::default()
        };
        let e = Broker::resolve("mqtt://b:1883", false, &files).unwrap_err();
        assert!(e.to_string().contains("plain MQTT"), "{e}");
        let b = Broker::resolve("mqtt://b:1883", false, &TlsFiles::default()).unwrap();
        assert!(!b.is_tls());
    }

    #[test]
    fn tls_file_errors_name_the_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Broker::resolve(
            "mqtts://b",
            false,
            &TlsFiles {
                ca_file: Some(missing.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&e, BrokerError::Tls(TlsError::File { what: "ca_file", path, .. }) if *path == missing),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = Broker::resolve(
            "mqtts://b",
            false,
            &TlsFiles {
                ca_file: Some(junk),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn half_a_client_identity_is_refused() {
        let e = Broker::resolve(
            "mqtts://b",
            false,
            &TlsFiles {
                client_cert_file: Some("/x/c.pem".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
    }
}
