//! The gateway's configuration: one TOML file, every key documented, environment variables
//! (`HRS_*`, see the contract) override it.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

pub use crate::api::config::HttpConfig;
pub use crate::core::config::{IngestConfig, SiteRegistryEntry};
pub use crate::ingest::mqtt_config::MqttConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    /// Where the embedded store, outbox and spools live.
    pub data_dir: PathBuf,
    /// `sqlite://FILE` or `postgres://...`; default: `sqlite://<data_dir>/gateway.db`.
    pub store_url: Option<String>,
    /// A directory of rule files (`*.toml`) that add to or replace the built-in pack.
    pub rules_dir: Option<PathBuf>,
    pub ingest: IngestConfig,
    /// Sites known in advance; a registry entry wins over what a birth says.
    pub sites: Vec<SiteRegistryEntry>,
    /// Weather and earthquake warnings (CAP, CENC).
    pub weather: weather::WeatherConfig,
    /// Feeds polled for CAP or CENC documents.
    pub weather_feeds: Vec<crate::ingest::feeds::FeedConfig>,
    /// Time series to InfluxDB v2 (off unless a URL is set).
    pub timeseries: crate::timeseries::TimeSeriesConfig,
    /// Upstream delivery and subscribers.
    pub forwarding: crate::outbox::ForwardingConfig,
    /// Who may use the API (contract 1.1, Access).
    pub auth: crate::access::AuthConfig,
    /// The language and time zone of what people read (console, messages, exports, robots).
    pub presentation: presentation::Presentation,
    /// Times to acknowledge and to close incidents (督办).
    pub supervision: crate::core::supervision::SupervisionConfig,
    /// How long closed incidents, dead letters and interval figures are kept.
    pub retention: crate::store::retention::RetentionConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            mqtt: MqttConfig::default(),
            http: HttpConfig::default(),
            data_dir: PathBuf::from("data"),
            store_url: None,
            rules_dir: None,
            ingest: IngestConfig::default(),
            sites: Vec::new(),
            weather: weather::WeatherConfig::default(),
            weather_feeds: Vec::new(),
            timeseries: Default::default(),
            forwarding: Default::default(),
            auth: Default::default(),
            presentation: Default::default(),
            supervision: Default::default(),
            retention: Default::default(),
        }
    }
}

impl GatewayConfig {
    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        let c: GatewayConfig = toml::from_str(text).context("gateway config")?;
        Ok(c)
    }

    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut c = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                Self::from_toml_str(&text)
                    .with_context(|| format!("config file {}", p.display()))?
            }
            None => GatewayConfig::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        c.validate()?;
        Ok(c)
    }

    /// The contract's environment variables override the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("HRS_MQTT_URL") {
            self.mqtt.url = v;
        }
        if let Some(v) = get("HRS_TOPIC_PREFIX") {
            self.mqtt.topic_prefix = v;
        }
        if let Some(v) = get("HRS_MQTT_CLIENT_ID") {
            self.mqtt.client_id = v;
        }
        if let Some(v) = get("HRS_MQTT_USERNAME") {
            self.mqtt.username = Some(v);
        }
        if let Some(v) = get("HRS_MQTT_PASSWORD") {
            self.mqtt.password = Some(v);
        }
        if let Some(v) = get("HRS_MQTT_CA_FILE") {
            self.mqtt.ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HRS_MQTT_CLIENT_CERT_FILE") {
            self.mqtt.client_cert_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HRS_MQTT_CLIENT_KEY_FILE") {
            self.mqtt.client_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HRS_HTTP_ADDR") {
            self.http.addr = v
                .parse()
                .with_context(|| format!("HRS_HTTP_ADDR {v:?} is not host:port"))?;
        }
        if let Some(v) = get("HRS_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("HRS_STORE_URL") {
            self.store_url = Some(v);
        }
        if let Some(v) = get("HRS_RULES_DIR") {
            self.rules_dir = Some(PathBuf::from(v));
        }
        // timeseries (issue 10): HRS_INFLUX_URL, HRS_INFLUX_ORG, HRS_INFLUX_BUCKET, HRS_INFLUX_TOKEN.
        self.timeseries.apply_env(&get);
        // forwarding (issue 9): HRS_PLATFORM_URL, HRS_PLATFORM_SECRET.
        self.forwarding.apply_env(&get)?;
        self.auth.apply_env(&get)?;
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.mqtt.broker()?;
        if self.mqtt.password.is_some() && self.mqtt.username.is_none() {
            bail!("mqtt.password is set without mqtt.username");
        }
        if self.mqtt.client_id.is_empty() {
            bail!("mqtt.client_id must not be empty");
        }
        if self.mqtt.topic_prefix.is_empty() || self.mqtt.topic_prefix.contains(['+', '#']) {
            bail!(
                "mqtt.topic_prefix {:?} must be non-empty and without wildcards",
                self.mqtt.topic_prefix
            );
        }
        if self.mqtt.inflight == 0 {
            bail!("mqtt.inflight must be at least 1");
        }
        if let Some(url) = &self.store_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                bail!("store_url {url:?} must be sqlite://... or postgres://...");
            }
        }
        for feed in &self.weather_feeds {
            feed.validate().map_err(anyhow::Error::msg)?;
        }
        self.weather
            .validate()
            .map_err(|e| anyhow::anyhow!("weather: {e}"))?;
        self.ingest.validate()?;
        self.http.validate()?;
        self.timeseries.validate()?; // timeseries (issue 10)
        self.forwarding.validate()?; // forwarding (issue 9)
        self.auth.validate()?;
        self.presentation.validate().map_err(anyhow::Error::msg)?;
        self.supervision.validate()?;
        self.retention.validate()?;
        if self.auth.mode == crate::access::AuthMode::Open
            && !self.auth.open_on_network
            && !self.http.addr.ip().is_loopback()
        {
            bail!(
                "auth.mode is open (no credentials asked) and http.addr {} is not a loopback address: \
                 set auth.mode = \"tokens\", or auth.open_on_network = true if this is really meant",
                self.http.addr
            );
        }
        Ok(())
    }

    /// The store URL in force.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("gateway.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let mut c =
            GatewayConfig::from_toml_str("[mqtt]\nurl = \"mqtt://10.0.0.1:1883\"\n").unwrap();
        c.apply_env(|k| match k {
            "HRS_MQTT_URL" => Some("mqtt://127.0.0.1:2883".into()),
            "HRS_HTTP_ADDR" => Some("127.0.0.1:9999".into()),
            _ => None,
        })
        .unwrap();
        let b = c.mqtt.broker().unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.is_tls()),
            ("127.0.0.1", 2883, false)
        );
        assert_eq!(c.http.addr.port(), 9999);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_refused() {
        let e = GatewayConfig::from_toml_str("[mqtt]\nurl_typo = \"x\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
    }

    #[test]
    fn example_config_loads() {
        let text = include_str!("../examples/gateway.toml");
        let c = GatewayConfig::from_toml_str(text).unwrap();
        c.validate().unwrap();
    }
}
