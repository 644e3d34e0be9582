//! The gateway's configuration: one TOML file, every key documented, environment variables
//! (`HRS_*`, see the contract) override it.

use anyhow::{bail, Context};
use broker_link::{Broker, TlsFiles};
use rumqttc::MqttOptions;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
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
        }
    }
}

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
        Ok(())
    }

    pub fn limits(&self) -> crate::api::HttpLimits {
        crate::api::HttpLimits {
            csv_row_cap: self.csv_row_cap,
            max_body_bytes: self.max_body_bytes,
            max_document_bytes: self.max_document_bytes,
            core_stall_ms: self.core_stall_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// How far ahead of the gateway clock a reading may lie before it is refused (`future`).
    pub max_future_ms: u64,
    /// A reading older than this behind the clock is judged, marked late.
    pub late_after_ms: u64,
    /// How many dead letters are kept (oldest dropped first).
    pub dead_letter_capacity: usize,
    /// Seqs remembered per agent epoch for duplicate detection.
    pub seq_window: u64,
    /// The most bytes of a refused payload kept in its dead letter (the rest is cut, and the
    /// reason says so).
    pub dead_letter_raw_bytes: usize,
    /// Messages received from the broker but not yet taken by the core. QoS 1 messages are
    /// bounded by the broker's in-flight window; beyond this bound QoS 0 messages are dropped
    /// and counted (`hrs_bounds_hit_total{bound="ingest_buffer"}`), and at twice the bound the
    /// gateway stops reading from the broker until the core catches up.
    pub max_pending_messages: usize,
    /// Sites the gateway keeps; messages of further sites are refused (`too_many_sites`).
    pub max_sites: usize,
    /// Agents per site; messages of further agents are refused (`too_many_agents`).
    pub max_agents_per_site: usize,
    /// Points per site; readings and catalogue points beyond are refused (`too_many_points`).
    pub max_points_per_site: usize,
    /// Agent epochs whose seq windows are kept in memory per agent; the least recently used
    /// leaves memory (its window stays in the store and comes back when the epoch speaks).
    pub max_epochs_per_agent: usize,
    /// An epoch silent this long leaves memory (its window stays in the store).
    pub epoch_idle_days: u32,
    /// The longest free text of a catalogue point (name, location, quantity, unit, gas, tag
    /// key or value) and of a site name, in characters; a point beyond it is refused
    /// (`bad_point_spec`).
    pub max_catalogue_text_chars: usize,
    /// The most tags of one catalogue point; a point with more is refused.
    pub max_tags_per_point: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_future_ms: 300_000,
            late_after_ms: 60_000,
            dead_letter_capacity: 10_000,
            seq_window: 4096,
            dead_letter_raw_bytes: 64 * 1024,
            max_pending_messages: 1000,
            max_sites: 20_000,
            max_agents_per_site: 64,
            max_points_per_site: 50_000,
            max_epochs_per_agent: 8,
            epoch_idle_days: 7,
            max_catalogue_text_chars: 256,
            max_tags_per_point: 32,
        }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.seq_window < 1024 {
            bail!("ingest.seq_window must be at least 1024 (the contract's minimum)");
        }
        for (key, v, min) in [
            ("ingest.max_pending_messages", self.max_pending_messages, 1),
            ("ingest.max_sites", self.max_sites, 1),
            ("ingest.max_agents_per_site", self.max_agents_per_site, 1),
            ("ingest.max_points_per_site", self.max_points_per_site, 1),
            ("ingest.max_epochs_per_agent", self.max_epochs_per_agent, 1),
            (
                "ingest.max_catalogue_text_chars",
                self.max_catalogue_text_chars,
                16,
            ),
            ("ingest.max_tags_per_point", self.max_tags_per_point, 1),
            (
                "ingest.dead_letter_raw_bytes",
                self.dead_letter_raw_bytes,
                256,
            ),
            (
                "ingest.dead_letter_capacity",
                self.dead_letter_capacity,
                100,
            ),
        ] {
            if v < min {
                bail!("{key} must be at least {min}");
            }
        }
        if self.epoch_idle_days == 0 {
            bail!("ingest.epoch_idle_days must be at least 1");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRegistryEntry {
    pub id: telemetry::SiteId,
    #[serde(flatten)]
    pub info: telemetry::SiteInfo,
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
