//! `[mqtt]`: the gateway's broker, its session and its TLS files.

use broker_link::{Broker, TlsFiles};
use rumqttc::MqttOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:port` (1883 by default), or `mqtts://host:port` (8883) for TLS.
    pub url: String,
    /// Fixed, so the broker keeps the persistent session across restarts.
    pub client_id: String,
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_s: u64,
    /// Messages in flight from the broker before it waits for our acknowledgements.
    pub inflight: u16,
    /// TLS even with an `mqtt://` URL (`mqtts://` turns it on by itself).
    pub tls: bool,
    /// PEM CAs that sign the broker's certificate; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for a broker that requires one.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "hrs-gateway".into(),
            topic_prefix: "hrs/v1".into(),
            username: None,
            password: None,
            keep_alive_s: 15,
            inflight: 100,
            tls: false,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

impl MqttConfig {
    /// The broker with its TLS settings loaded (files read and checked).
    pub fn broker(&self) -> anyhow::Result<Broker> {
        Ok(Broker::resolve(
            &self.url,
            self.tls,
            &TlsFiles {
                ca_file: self.ca_file.clone(),
                client_cert_file: self.client_cert_file.clone(),
                client_key_file: self.client_key_file.clone(),
            },
        )?)
    }

    /// MQTT options for a connection to the broker: address, TLS and credentials.
    pub fn options(&self, broker: &Broker, client_id: impl Into<String>) -> MqttOptions {
        let mut opts = broker.options(client_id);
        if let Some(u) = &self.username {
            opts.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        opts
    }
}
