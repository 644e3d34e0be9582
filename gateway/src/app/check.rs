//! `gateway check [--connect]`: the effective configuration, one key a line with where its
//! value came from (the file, an environment variable or a secret's file, or the default),
//! secrets masked; with `--connect`, one line for each thing the gateway would reach (the
//! broker, the store, the time-series database, every forwarding endpoint and weather feed)
//! saying what answered, each within a timeout, without writing anything.

use crate::config::{Environment, GatewayConfig, ENV_KEYS};
use std::time::Duration;

/// How long each `--connect` probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

const MASK: &str = "********";

/// Whether a key holds a secret by its name.
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last == "password" || last == "secret" || last == "token" || last.ends_with("_token")
}

/// A URL with its password and secret-looking query values (robots' `access_token`, a
/// `key`, a `sign`) masked.
pub fn mask_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    }
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let lower = k.to_lowercase();
            let secret = ["token", "key", "secret", "sign"]
                .iter()
                .any(|s| lower.contains(s));
            (
                k.into_owned(),
                if secret {
                    MASK.to_string()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    if !pairs.is_empty() {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(|v| v.is_table()) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// The effective configuration, one `key = value  # source` line each.
pub fn describe(
    config: &GatewayConfig,
    file: Option<&str>,
    env: &Environment,
) -> anyhow::Result<Vec<String>> {
    let effective = toml::Value::try_from(config)?;
    let mut keys = Vec::new();
    flatten("", &effective, &mut keys);
    let mut in_file = Vec::new();
    if let Some(text) = file {
        flatten("", &toml::from_str::<toml::Value>(text)?, &mut in_file);
    }
    let platform = config
        .forwarding
        .endpoints
        .iter()
        .position(|e| e.name == "platform");
    let env_of = |key: &str| -> Option<&str> {
        let platform_key = platform.map(|i| format!("forwarding.endpoints[{i}]"));
        for (var, k) in ENV_KEYS {
            let k = match (
                k.strip_prefix("forwarding.endpoints.platform"),
                &platform_key,
            ) {
                (Some(rest), Some(p)) => format!("{p}{rest}"),
                (Some(_), None) => continue,
                (None, _) => k.to_string(),
            };
            if k == key {
                return env.source(var);
            }
        }
        if platform_key.is_some_and(|p| key == format!("{p}.url")) {
            return env.source("HRS_PLATFORM_URL");
        }
        None
    };
    let mut lines = Vec::new();
    for (key, value) in keys {
        let shown = match &value {
            toml::Value::String(s) if is_secret_key(&key) && !s.is_empty() => {
                format!("\"{MASK}\"")
            }
            toml::Value::String(s) if s.contains("://") => {
                toml::Value::String(mask_url(s)).to_string()
            }
            v => v.to_string(),
        };
        let source = match env_of(&key) {
            Some(s) => s.to_string(),
            None if in_file.iter().any(|(k, _)| *k == key) => "file".to_string(),
            None => "default".to_string(),
        };
        lines.push(format!("{key} = {shown}  # {source}"));
    }
    Ok(lines)
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `broker`, `store`, `timeseries`, `endpoint NAME`, `feed`.
    pub what: String,
    /// Where (secrets masked).
    pub target: String,
    pub ok: bool,
    pub detail: String,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            if self.ok { "ok  " } else { "FAIL" },
            self.what,
            self.target,
            self.detail
        )
    }
}

fn probe(what: impl Into<String>, target: &str, r: Result<String, String>) -> Probe {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Probe {
        what: what.into(),
        target: mask_url(target),
        ok,
        detail,
    }
}

/// Connect to an MQTT broker and wait for its CONNACK ([`broker_link::probe::connack`]).
pub async fn probe_broker(
    broker: &broker_link::Broker,
    client_id: &str,
    credentials: Option<(String, String)>,
) -> Result<String, String> {
    broker_link::probe::connack(broker, client_id, credentials, PROBE_TIMEOUT).await
}

/// Reach the store without creating or migrating anything: PostgreSQL answers `SELECT 1`;
/// a SQLite file is opened read-only (or its directory is there to create it in).
pub async fn probe_store(url: &str) -> Result<String, String> {
    sqlx::any::install_default_drivers();
    let url = if let Some(path) = crate::store::backup::sqlite_path(url) {
        if !path.exists() {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            return if dir.is_dir() || !dir.exists() {
                Ok(format!(
                    "no store yet: created at start ({})",
                    path.display()
                ))
            } else {
                Err(format!("{} is not a directory", dir.display()))
            };
        }
        format!("sqlite://{}?mode=ro", path.display())
    } else if url.starts_with("sqlite:") {
        return Ok("in memory".to_string());
    } else {
        url.to_string()
    };
    use sqlx::Connection;
    // One connection, not a pool: its own error (refused, bad password) is what is said.
    let mut conn = tokio::time::timeout(PROBE_TIMEOUT, sqlx::AnyConnection::connect(&url))
        .await
        .map_err(|_| format!("no answer within {PROBE_TIMEOUT:?}"))?
        .map_err(|e| format!("no answer: {}", error_chain(&e)))?;
    let version: Result<Option<i64>, _> = tokio::time::timeout(
        PROBE_TIMEOUT,
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&mut conn),
    )
    .await
    .map_err(|_| format!("no answer within {PROBE_TIMEOUT:?}"))?;
    let _ = conn.close().await;
    Ok(match version {
        Ok(Some(v)) => format!("answered; schema {v}"),
        _ => "answered; empty (the schema is created at start)".to_string(),
    })
}

/// GET a URL with the target's client: any HTTP answer is an answer (its status said).
pub async fn probe_http(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
) -> Result<String, String> {
    let mut req = client.get(url).timeout(PROBE_TIMEOUT);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(r) => Ok(format!("answered HTTP {}", r.status())),
        Err(e) if e.is_timeout() => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        Err(e) => Err(format!("no answer: {}", error_chain(&e))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        // Many errors say their source in their own text already.
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn client_for(tls: &broker_link::TlsFiles) -> Result<reqwest::Client, String> {
    crate::outbound::client(tls, PROBE_TIMEOUT).map_err(|e| e.to_string())
}

/// Every probe of the configuration, in order: broker, store, time series, forwarding
/// endpoints (and their MQTT brokers), weather feeds.
pub async fn connect(config: &GatewayConfig) -> Vec<Probe> {
    let mut out = Vec::new();
    let m = &config.mqtt;
    let creds = m
        .username
        .clone()
        .map(|u| (u, m.password.clone().unwrap_or_default()));
    let r = match m.broker() {
        Ok(b) => probe_broker(&b, &m.client_id, creds).await,
        Err(e) => Err(e.to_string()),
    };
    out.push(probe("broker", &m.url, r));
    let store = config.store_url();
    out.push(probe("store", &store, probe_store(&store).await));
    if let Some(url) = &config.timeseries.url {
        let health = format!("{}/health", url.trim_end_matches('/'));
        let r = match client_for(&config.timeseries.tls.files()) {
            Ok(c) => probe_http(&c, &health, &[]).await,
            Err(e) => Err(e),
        };
        out.push(probe("timeseries", &health, r));
    }
    for e in &config.forwarding.endpoints {
        let what = format!("endpoint {}", e.name);
        let tls = broker_link::TlsFiles {
            ca_file: e.ca_file.clone(),
            client_cert_file: e.client_cert_file.clone(),
            client_key_file: e.client_key_file.clone(),
        };
        let r = match e.kind {
            crate::outbox::EndpointKind::Http => match client_for(&tls) {
                Ok(c) => probe_http(&c, &e.url, &[]).await,
                Err(err) => Err(err),
            },
            crate::outbox::EndpointKind::Mqtt => match e.mqtt_broker() {
                Ok(b) => {
                    let creds = e
                        .username
                        .clone()
                        .map(|u| (u, e.password.clone().unwrap_or_default()));
                    let id = e
                        .client_id
                        .clone()
                        .unwrap_or_else(|| format!("hrs-forward-{}", e.name));
                    probe_broker(&b, &id, creds).await
                }
                Err(err) => Err(err.to_string()),
            },
        };
        out.push(probe(what, &e.url, r));
    }
    for f in &config.weather_feeds {
        let r = match client_for(&f.tls.files()) {
            Ok(c) => probe_http(&c, &f.url, &[]).await,
            Err(e) => Err(e),
        };
        out.push(probe("feed", &f.url, r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_each_value_says_where_it_came_from() {
        let file = "[mqtt]\nurl = \"mqtt://10.0.0.1:1883\"\nusername = \"gateway\"\npassword = \"file-secret\"\n\n[[forwarding.endpoints]]\nname = \"robot\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=abc123&x=1\"\n";
        let mut config = GatewayConfig::from_toml_str(file).unwrap();
        let env = Environment::read(|k| match k {
            "HRS_STORE_URL" => Some("postgres://hrs:pg-secret@db:5432/hrs".into()),
            "HRS_PLATFORM_URL" => Some("https://platform.example/api".into()),
            "HRS_PLATFORM_SECRET" => Some("hmac-secret".into()),
            _ => None,
        })
        .unwrap();
        config.apply_env(|k| env.get(k)).unwrap();
        let text = describe(&config, Some(file), &env).unwrap().join("\n");
        for secret in ["file-secret", "pg-secret", "hmac-secret", "abc123"] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        for line in [
            "mqtt.url = \"mqtt://10.0.0.1:1883\"  # file",
            "mqtt.password = \"********\"  # file",
            "store_url = \"postgres://hrs:********@db:5432/hrs\"  # environment HRS_STORE_URL",
            "http.addr = \"127.0.0.1:8080\"  # default",
            "forwarding.endpoints[1].url = \"https://platform.example/api\"  # environment HRS_PLATFORM_URL",
            "forwarding.endpoints[1].secret = \"********\"  # environment HRS_PLATFORM_SECRET",
            "forwarding.endpoints[0].url = \"https://oapi.dingtalk.com/robot/send?access_token=********&x=1\"  # file",
        ] {
            assert!(text.contains(line), "{line}\n---\n{text}");
        }
    }
}
