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

/// The contract's environment variables and where each applies (`gateway check` says which
/// value came from which).
pub const ENV_KEYS: [(&str, &str); 19] = [
    ("HRS_MQTT_URL", "mqtt.url"),
    ("HRS_TOPIC_PREFIX", "mqtt.topic_prefix"),
    ("HRS_MQTT_CLIENT_ID", "mqtt.client_id"),
    ("HRS_MQTT_USERNAME", "mqtt.username"),
    ("HRS_MQTT_PASSWORD", "mqtt.password"),
    ("HRS_MQTT_CA_FILE", "mqtt.ca_file"),
    ("HRS_MQTT_CLIENT_CERT_FILE", "mqtt.client_cert_file"),
    ("HRS_MQTT_CLIENT_KEY_FILE", "mqtt.client_key_file"),
    ("HRS_HTTP_ADDR", "http.addr"),
    ("HRS_DATA_DIR", "data_dir"),
    ("HRS_STORE_URL", "store_url"),
    ("HRS_RULES_DIR", "rules_dir"),
    ("HRS_INFLUX_URL", "timeseries.url"),
    ("HRS_INFLUX_ORG", "timeseries.org"),
    ("HRS_INFLUX_BUCKET", "timeseries.bucket"),
    ("HRS_INFLUX_TOKEN", "timeseries.token"),
    ("HRS_AUTH_MODE", "auth.mode"),
    ("HRS_AUTH_METRICS_TOKEN", "auth.metrics_token"),
    // HRS_PLATFORM_URL, HRS_PLATFORM_SECRET: the endpoint named `platform`.
    (
        "HRS_PLATFORM_SECRET",
        "forwarding.endpoints.platform.secret",
    ),
];

/// Variables that hold a secret: each may instead name a file that holds it, `<VAR>_FILE`
/// (systemd's `LoadCredential=` directory, a mounted secret), read once at start, one
/// trailing newline dropped. Setting both a variable and its `_FILE` is refused.
pub const SECRET_VARS: [&str; 5] = [
    "HRS_MQTT_PASSWORD",
    "HRS_STORE_URL",
    "HRS_INFLUX_TOKEN",
    "HRS_AUTH_METRICS_TOKEN",
    "HRS_PLATFORM_SECRET",
];

/// The environment as the configuration reads it: the process's variables, with each secret
/// of [`SECRET_VARS`] taken from its `_FILE` where that is set.
pub struct Environment {
    vars: std::collections::BTreeMap<String, (String, String)>,
}

impl Environment {
    /// Read the variables the gateway knows (`get`: the process environment, or a test's).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Environment> {
        let mut vars = std::collections::BTreeMap::new();
        let names = ENV_KEYS.iter().map(|(k, _)| *k).chain(["HRS_PLATFORM_URL"]);
        for k in names {
            if let Some(v) = get(k) {
                vars.insert(k.to_string(), (v, format!("environment {k}")));
            }
        }
        for k in SECRET_VARS {
            let file_var = format!("{k}_FILE");
            let Some(path) = get(&file_var) else { continue };
            if vars.contains_key(k) {
                bail!("{k} and {file_var} are both set: set one");
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{file_var}: reading {path}"))?;
            let text = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            vars.insert(
                k.to_string(),
                (text.to_string(), format!("file {path} ({file_var})")),
            );
        }
        Ok(Environment { vars })
    }

    pub fn get(&self, k: &str) -> Option<String> {
        self.vars.get(k).map(|(v, _)| v.clone())
    }

    /// Where a variable's value came from (`environment HRS_X`, `file PATH (HRS_X_FILE)`).
    pub fn source(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(|(_, s)| s.as_str())
    }
}

impl GatewayConfig {
    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        let c: GatewayConfig = toml::from_str(text).context("gateway config")?;
        Ok(c)
    }

    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self::load_with_sources(path)?.0)
    }

    /// [`GatewayConfig::load`], with the file's text and the environment it read (what
    /// `gateway check` needs to say where each value came from).
    pub fn load_with_sources(
        path: Option<&Path>,
    ) -> anyhow::Result<(Self, Option<String>, Environment)> {
        let (mut c, text) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                let c = Self::from_toml_str(&text)
                    .with_context(|| format!("config file {}", p.display()))?;
                (c, Some(text))
            }
            None => (GatewayConfig::default(), None),
        };
        let env = Environment::read(|k| std::env::var(k).ok())?;
        c.apply_env(|k| env.get(k))?;
        c.validate()?;
        Ok((c, text, env))
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

    /// A secret from its `_FILE` (a trailing newline dropped) works as the variable would;
    /// both set is refused; variables that name files already (`HRS_MQTT_CA_FILE`) keep
    /// their meaning.
    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("mqtt-password");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let vars = |extra: Option<(&'static str, String)>| {
            let pw = pw.display().to_string();
            move |k: &str| match k {
                "HRS_MQTT_USERNAME" => Some("gateway".to_string()),
                "HRS_MQTT_PASSWORD_FILE" => Some(pw.clone()),
                "HRS_MQTT_CA_FILE" => Some("/etc/hrs/ca.pem".to_string()),
                k if extra.as_ref().is_some_and(|(e, _)| *e == k) => {
                    extra.as_ref().map(|(_, v)| v.clone())
                }
                _ => None,
            }
        };
        let env = Environment::read(vars(None)).unwrap();
        let mut c = GatewayConfig::default();
        c.apply_env(|k| env.get(k)).unwrap();
        assert_eq!(c.mqtt.password.as_deref(), Some("s3cret"));
        assert_eq!(c.mqtt.ca_file, Some(PathBuf::from("/etc/hrs/ca.pem")));
        assert!(env
            .source("HRS_MQTT_PASSWORD")
            .unwrap()
            .contains("HRS_MQTT_PASSWORD_FILE"));
        let both = Environment::read(vars(Some(("HRS_MQTT_PASSWORD", "x".into()))));
        assert!(both.is_err());
        let missing = Environment::read(|k| {
            (k == "HRS_INFLUX_TOKEN_FILE").then(|| "/nonexistent/token".to_string())
        });
        let e = format!("{:#}", missing.err().unwrap());
        assert!(e.contains("HRS_INFLUX_TOKEN_FILE"), "{e}");
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
