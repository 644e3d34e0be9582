//! Forwarding incident events upstream (the supervision platform, other brokers) and notifying
//! subscribers (webhook, DingTalk and WeCom robots, MQTT, SSE), with escalation of incidents
//! nobody acknowledges and flood control. See `docs/forwarding.md`.
//!
//! Everything goes out through the durable event log (`incident_events`, the outbox): each
//! *target* (an endpoint or a subscriber) keeps its own progress per site in the store, so
//! delivery is in order per site, sites run in parallel, and a restart resumes where it stopped.

pub mod channel;

pub mod escalation;
pub mod filter;
pub mod flood;

pub mod lane;
pub mod message;
pub mod outcome;
pub mod pending;
pub mod sign;
pub mod sinks;

use crate::clock::SharedClock;
use crate::core::live::Live;
use crate::metrics::Metrics;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use telemetry::{IncidentEvent, SiteId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Connections to outbound HTTP targets open within this time.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub use filter::Filter;
pub use flood::FloodConfig;

/// Errors of the forwarding layer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("forwarding store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("forwarding: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("forwarding config: {0}")]
    Config(String),
    #[error("no {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("forwarding: {0}")]
    Channel(String),
}

/// `[forwarding]` in the gateway config; `HRS_PLATFORM_URL` / `HRS_PLATFORM_SECRET` add (or
/// override) the http endpoint named `platform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardingConfig {
    /// Upstream endpoints: every incident event, in order per site.
    pub endpoints: Vec<EndpointConfig>,
    /// Subscribers defined in the file (more can be added over the API).
    pub subscribers: Vec<SubscriberConfig>,
    /// Escalation policies (none unless configured).
    pub escalation: Vec<EscalationPolicy>,
    /// Flood control for subscribers (off unless configured).
    pub flood: Option<FloodConfig>,
    /// A heartbeat to the platform (off unless configured).
    pub heartbeat: Option<HeartbeatConfig>,
    /// Sends in flight at once per target (sites beyond this wait their turn).
    pub max_in_flight: usize,
    /// The first retry delay; it doubles up to the target's `max_backoff_ms`.
    pub retry_initial_ms: u64,
    /// How often the escalation timer looks at unacknowledged incidents.
    pub escalation_check_ms: u64,
    /// The hosts a subscriber's URL may name (webhook, robot or MQTT broker): a host exactly,
    /// or `*.example.gov.cn` for the hosts under a domain. Empty: any host. A subscriber
    /// outside the list is refused, from the file at start and over the API with 400.
    pub subscriber_hosts: Vec<String>,
}

impl Default for ForwardingConfig {
    fn default() -> Self {
        ForwardingConfig {
            endpoints: Vec::new(),
            subscribers: Vec::new(),
            escalation: Vec::new(),
            flood: None,
            heartbeat: None,
            max_in_flight: 16,
            retry_initial_ms: 200,
            escalation_check_ms: 500,
            subscriber_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// `POST` the event JSON.
    Http,
    /// Publish QoS 1 to `{topic_prefix}/incidents/{site}` on another broker.
    Mqtt,
}

/// `[[forwarding.endpoints]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Unique; names its progress in the store (renaming starts it again from the beginning).
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: EndpointKind,
    /// `http(s)://...` or `mqtt://host:port`.
    pub url: String,
    /// Signs each request (`X-HRS-Timestamp`, `X-HRS-Signature`); http only.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Extra request headers (http), e.g. an authorization token.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Topic prefix on the other broker (mqtt).
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// MQTT client id on the other broker (default `hrs-forward-{name}`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The other broker's username and password (mqtt).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// PEM CAs of the target's certificate (`https://` or `mqtts://`), the only ones trusted
    /// for it (default: the bundled public roots for https, the system's roots for mqtts).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate, for a target that requires one (with `client_key_file`).
    #[serde(default)]
    pub client_cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<std::path::PathBuf>,
}

fn default_kind() -> EndpointKind {
    EndpointKind::Http
}
pub(crate) fn default_timeout_ms() -> u64 {
    5_000
}
pub(crate) fn default_max_backoff_ms() -> u64 {
    30_000
}
fn default_topic_prefix() -> String {
    "hrs/v1".into()
}

impl EndpointConfig {
    fn tls_files(&self) -> broker_link::TlsFiles {
        broker_link::TlsFiles {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
        }
    }

    /// An MQTT endpoint's broker, its TLS files read and checked.
    pub fn mqtt_broker(&self) -> Result<broker_link::Broker, ForwardError> {
        broker_link::Broker::resolve(&self.url, false, &self.tls_files())
            .map_err(|e| ForwardError::Config(format!("forwarding endpoint {:?}: {e}", self.name)))
    }

    /// An HTTP endpoint's own client when it names TLS files (read and checked now).
    fn own_client(&self) -> Result<Option<reqwest::Client>, ForwardError> {
        let files = self.tls_files();
        if !files.any() {
            return Ok(None);
        }
        let what = format!("forwarding endpoint {:?}", self.name);
        if !self.url.starts_with("https://") {
            return Err(ForwardError::Config(format!(
                "{what}: TLS files are set but {:?} is plain http",
                self.url
            )));
        }
        crate::outbound::client(&files, CONNECT_TIMEOUT)
            .map(Some)
            .map_err(|e| ForwardError::Config(format!("{what}: {e}")))
    }

    /// An HTTP endpoint's client: its own (TLS files), else the shared one.
    pub(crate) fn http_client(&self, shared: &Shared) -> Result<reqwest::Client, ForwardError> {
        Ok(self.own_client()?.unwrap_or_else(|| shared.http.clone()))
    }

    pub fn http(name: &str, url: &str) -> Self {
        EndpointConfig {
            name: name.into(),
            kind: EndpointKind::Http,
            url: url.into(),
            secret: None,
            timeout_ms: default_timeout_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            headers: BTreeMap::new(),
            topic_prefix: default_topic_prefix(),
            client_id: None,
            username: None,
            password: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

/// `[[forwarding.subscribers]]`, and the body of `POST /api/v1/subscribers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberConfig {
    /// `[a-z0-9][a-z0-9_-]{0,63}`; generated when a POST leaves it out.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Which incidents and events; all of them when empty.
    #[serde(default)]
    pub filter: Filter,
    pub channel: ChannelConfig,
}

/// How a subscriber is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// `POST` the event JSON (signed like the platform's when a secret is set).
    Webhook {
        url: String,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// The webhook's CA and the gateway's client certificate (subscribers of the
        /// configuration file only: one added over the API cannot name files on the host).
        #[serde(default, skip_serializing_if = "crate::outbound::TargetTls::is_empty")]
        tls: crate::outbound::TargetTls,
    },
    /// A DingTalk group robot: a markdown message; with a secret, `timestamp` and `sign` query
    /// parameters.
    Dingtalk {
        url: String,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// Duty mobiles `@`-ed on a critical incident.
        #[serde(default)]
        at_mobiles: Vec<String>,
        /// `@` everyone in the group on a critical incident.
        #[serde(default)]
        at_all: bool,
        /// The robot's keyword (keyword security mode): put at the head of every message.
        #[serde(default)]
        keyword: Option<String>,
        /// A privately hosted robot's CA (and client certificate); file subscribers only.
        #[serde(default, skip_serializing_if = "crate::outbound::TargetTls::is_empty")]
        tls: crate::outbound::TargetTls,
    },
    /// A WeCom (WeChat Work) group robot: a markdown message to its webhook URL; a critical
    /// incident as text that mentions the duty mobiles.
    Wecom {
        url: String,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// Mobiles mentioned on a critical incident (`mentioned_mobile_list`).
        #[serde(default)]
        mentioned_mobiles: Vec<String>,
        /// Mention everyone (`@all`) on a critical incident.
        #[serde(default)]
        mention_all: bool,
        /// A privately hosted robot's CA (and client certificate); file subscribers only.
        #[serde(default, skip_serializing_if = "crate::outbound::TargetTls::is_empty")]
        tls: crate::outbound::TargetTls,
    },
    /// Publish QoS 1 on a broker (`topic` may hold `{site}` and `{subscriber}`).
    Mqtt {
        url: String,
        topic: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Only `GET /api/v1/subscribers/{id}/events` (Server-Sent Events).
    Sse {},
}

impl ChannelConfig {
    /// The metric label of the channel.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Dingtalk { .. } => "dingtalk",
            ChannelConfig::Wecom { .. } => "wecom",
            ChannelConfig::Mqtt { .. } => "mqtt",
            ChannelConfig::Sse {} => "sse",
        }
    }

    /// The same with secrets replaced (for listing).
    pub fn redacted(&self) -> ChannelConfig {
        let mut c = self.clone();
        match &mut c {
            ChannelConfig::Webhook {
                secret, headers, ..
            } => {
                if secret.is_some() {
                    *secret = Some("***".into());
                }
                for v in headers.values_mut() {
                    *v = "***".into();
                }
            }
            ChannelConfig::Dingtalk { secret, url, .. } => {
                if secret.is_some() {
                    *secret = Some("***".into());
                }
                *url = redact_query(url);
            }
            ChannelConfig::Wecom { url, .. } => *url = redact_query(url),
            ChannelConfig::Mqtt { .. } | ChannelConfig::Sse {} => {}
        }
        c
    }
}

/// Robot URLs carry their access token in the query.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_string(),
    }
}

/// `[[forwarding.escalation]]`: incidents matching `filter` that nobody acknowledges are
/// notified tier by tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub name: String,
    #[serde(default)]
    pub filter: Filter,
    pub tiers: Vec<EscalationTier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationTier {
    /// Unique across all policies: it is the `tier` of the `notified` event.
    pub name: String,
    /// After this long unacknowledged (from `raised_at`), on the gateway clock.
    pub after_ms: u64,
    /// Subscriber ids that receive the `notified` event.
    pub subscribers: Vec<String>,
}

/// `[forwarding.heartbeat]`: a small JSON posted every `interval_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub url: String,
    pub interval_ms: u64,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Names this gateway in the heartbeat (default: the MQTT client id).
    #[serde(default)]
    pub gateway: Option<String>,
    /// The platform's CA and the gateway's client certificate, when the platform asks.
    #[serde(default)]
    pub tls: crate::outbound::TargetTls,
}

fn check_url(what: &str, url: &str, schemes: &[&str]) -> Result<(), ForwardError> {
    let ok = schemes.iter().any(|s| url.starts_with(&format!("{s}://")));
    if !ok {
        return Err(ForwardError::Config(format!(
            "{what}: url {url:?} must start with {}",
            schemes.join("://, ") + "://"
        )));
    }
    if schemes.contains(&"http") {
        reqwest::Url::parse(url)
            .map_err(|e| ForwardError::Config(format!("{what}: url {url:?}: {e}")))?;
    } else {
        broker_link::parse_mqtt_url(url)
            .map_err(|e| ForwardError::Config(format!("{what}: {e}")))?;
    }
    Ok(())
}

fn check_timeout(what: &str, ms: u64) -> Result<(), ForwardError> {
    if !(1..=600_000).contains(&ms) {
        return Err(ForwardError::Config(format!(
            "{what}: timeout_ms must be between 1 and 600000"
        )));
    }
    Ok(())
}

impl SubscriberConfig {
    /// The TLS files a webhook or robot subscriber names (none for other channels).
    pub fn tls(&self) -> Option<&crate::outbound::TargetTls> {
        match &self.channel {
            ChannelConfig::Webhook { tls, .. }
            | ChannelConfig::Dingtalk { tls, .. }
            | ChannelConfig::Wecom { tls, .. } => Some(tls).filter(|t| !t.is_empty()),
            ChannelConfig::Mqtt { .. } | ChannelConfig::Sse {} => None,
        }
    }

    /// A webhook's or robot's own client when it names TLS files (read and checked now).
    pub(crate) fn own_client(&self) -> Result<Option<reqwest::Client>, ForwardError> {
        match self.tls() {
            Some(tls) => crate::outbound::client(&tls.files(), CONNECT_TIMEOUT)
                .map(Some)
                .map_err(|e| ForwardError::Config(format!("subscriber {:?}: {e}", self.id))),
            _ => Ok(None),
        }
    }

    /// The subscriber's URL names a host of `allowed` (any host when it is empty).
    pub fn check_host(&self, allowed: &[String]) -> Result<(), ForwardError> {
        let url = match &self.channel {
            ChannelConfig::Webhook { url, .. }
            | ChannelConfig::Dingtalk { url, .. }
            | ChannelConfig::Wecom { url, .. }
            | ChannelConfig::Mqtt { url, .. } => url,
            ChannelConfig::Sse {} => return Ok(()),
        };
        if allowed.is_empty() {
            return Ok(());
        }
        let host = match reqwest::Url::parse(url) {
            Ok(u) => u.host_str().unwrap_or_default().to_ascii_lowercase(),
            Err(_) => String::new(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let listed = allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == a,
            }
        });
        if listed {
            Ok(())
        } else {
            Err(ForwardError::Config(format!(
                "subscriber {:?}: host {host:?} is not in forwarding.subscriber_hosts",
                self.id
            )))
        }
    }

    pub fn validate(&self) -> Result<(), ForwardError> {
        let what = format!("subscriber {:?}", self.id);
        SiteId::new(self.id.clone()).map_err(|_| {
            ForwardError::Config(format!("{what}: id must match [a-z0-9][a-z0-9_-]{{0,63}}"))
        })?;
        self.filter
            .validate()
            .map_err(|e| ForwardError::Config(format!("{what}: {e}")))?;
        match &self.channel {
            ChannelConfig::Webhook {
                url, timeout_ms, ..
            }
            | ChannelConfig::Dingtalk {
                url, timeout_ms, ..
            }
            | ChannelConfig::Wecom {
                url, timeout_ms, ..
            } => {
                check_url(&what, url, &["http", "https"])?;
                check_timeout(&what, *timeout_ms)?;
                self.own_client()?;
            }
            ChannelConfig::Mqtt { url, topic, .. } => {
                check_url(&what, url, &["mqtt", "tcp", "mqtts", "ssl"])?;
                if topic.is_empty() || topic.contains(['+', '#']) {
                    return Err(ForwardError::Config(format!(
                        "{what}: topic {topic:?} must be non-empty and without wildcards"
                    )));
                }
            }
            ChannelConfig::Sse {} => {}
        }
        Ok(())
    }
}

impl ForwardingConfig {
    /// `HRS_PLATFORM_URL` adds the http endpoint `platform` (or sets the URL of the one the file
    /// names); `HRS_PLATFORM_SECRET` sets its secret.
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ForwardError> {
        if let Some(url) = get("HRS_PLATFORM_URL").filter(|u| !u.trim().is_empty()) {
            match self.endpoints.iter_mut().find(|e| e.name == "platform") {
                Some(e) => e.url = url,
                None => self.endpoints.push(EndpointConfig::http("platform", &url)),
            }
        }
        if let Some(secret) = get("HRS_PLATFORM_SECRET").filter(|s| !s.is_empty()) {
            match self.endpoints.iter_mut().find(|e| e.name == "platform") {
                Some(e) => e.secret = Some(secret),
                None => return Err(ForwardError::Config("HRS_PLATFORM_SECRET is set but there is no platform endpoint (set HRS_PLATFORM_URL)".into())),
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ForwardError> {
        let mut names = std::collections::HashSet::new();
        for e in &self.endpoints {
            let what = format!("forwarding endpoint {:?}", e.name);
            SiteId::new(e.name.clone()).map_err(|_| {
                ForwardError::Config(format!(
                    "{what}: name must match [a-z0-9][a-z0-9_-]{{0,63}}"
                ))
            })?;
            if !names.insert(e.name.clone()) {
                return Err(ForwardError::Config(format!("{what} is named twice")));
            }
            match e.kind {
                EndpointKind::Http => {
                    check_url(&what, &e.url, &["http", "https"])?;
                    if e.username.is_some() || e.password.is_some() {
                        return Err(ForwardError::Config(format!(
                            "{what}: username and password are for mqtt endpoints \
                             (an http endpoint takes headers)"
                        )));
                    }
                    e.own_client()?;
                }
                EndpointKind::Mqtt => {
                    check_url(&what, &e.url, &["mqtt", "tcp", "mqtts", "ssl"])?;
                    if e.password.is_some() && e.username.is_none() {
                        return Err(ForwardError::Config(format!(
                            "{what}: password is set without username"
                        )));
                    }
                    e.mqtt_broker()?;
                    if e.topic_prefix.is_empty() || e.topic_prefix.contains(['+', '#']) {
                        return Err(ForwardError::Config(format!(
                            "{what}: topic_prefix must be non-empty and without wildcards"
                        )));
                    }
                }
            }
            check_timeout(&what, e.timeout_ms)?;
            if e.max_backoff_ms == 0 || e.max_backoff_ms > 30_000 {
                return Err(ForwardError::Config(format!("{what}: max_backoff_ms must be between 1 and 30000 (the contract caps it at 30 s)")));
            }
            for (k, v) in &e.headers {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(v).is_err()
                {
                    return Err(ForwardError::Config(format!(
                        "{what}: header {k:?} is not a valid header"
                    )));
                }
            }
        }
        let mut ids = std::collections::HashSet::new();
        for s in &self.subscribers {
            s.validate()?;
            s.check_host(&self.subscriber_hosts)?;
            if !ids.insert(s.id.clone()) {
                return Err(ForwardError::Config(format!(
                    "subscriber {:?} is defined twice",
                    s.id
                )));
            }
        }
        let mut tiers = std::collections::HashSet::new();
        for p in &self.escalation {
            let what = format!("escalation policy {:?}", p.name);
            p.filter
                .validate()
                .map_err(|e| ForwardError::Config(format!("{what}: {e}")))?;
            if p.tiers.is_empty() {
                return Err(ForwardError::Config(format!("{what} has no tiers")));
            }
            for t in &p.tiers {
                if t.name.trim().is_empty() || !tiers.insert(t.name.clone()) {
                    return Err(ForwardError::Config(format!(
                        "{what}: tier names must be non-empty and unique across policies ({:?})",
                        t.name
                    )));
                }
                if t.subscribers.is_empty() {
                    return Err(ForwardError::Config(format!(
                        "{what}: tier {:?} names no subscribers",
                        t.name
                    )));
                }
                for s in &t.subscribers {
                    if !ids.contains(s) {
                        tracing::info!(tier = %t.name, subscriber = %s, "escalation names a subscriber not in the file; it must be added over the API");
                    }
                }
            }
        }
        if let Some(f) = &self.flood {
            f.validate().map_err(ForwardError::Config)?;
        }
        if let Some(h) = &self.heartbeat {
            check_url("forwarding.heartbeat", &h.url, &["http", "https"])?;
            check_timeout("forwarding.heartbeat", h.timeout_ms)?;
            crate::outbound::client(&h.tls.files(), CONNECT_TIMEOUT)
                .map_err(|e| ForwardError::Config(format!("forwarding.heartbeat: {e}")))?;
            if h.interval_ms < 100 {
                return Err(ForwardError::Config(
                    "forwarding.heartbeat: interval_ms must be at least 100".into(),
                ));
            }
        }
        if !(1..=1024).contains(&self.max_in_flight) {
            return Err(ForwardError::Config(
                "forwarding.max_in_flight must be between 1 and 1024".into(),
            ));
        }
        if !(1..=30_000).contains(&self.retry_initial_ms) {
            return Err(ForwardError::Config(
                "forwarding.retry_initial_ms must be between 1 and 30000".into(),
            ));
        }
        if !(10..=60_000).contains(&self.escalation_check_ms) {
            return Err(ForwardError::Config(
                "forwarding.escalation_check_ms must be between 10 and 60000".into(),
            ));
        }
        Ok(())
    }

    /// Subscriber ids of each tier.
    pub fn tier_members(&self) -> HashMap<String, Vec<String>> {
        self.escalation
            .iter()
            .flat_map(|p| p.tiers.iter())
            .map(|t| (t.name.clone(), t.subscribers.clone()))
            .collect()
    }
}

/// What every forwarding task shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub live: Arc<RwLock<Live>>,
    pub clock: SharedClock,
    pub metrics: ForwardMetrics,
    pub events: broadcast::Sender<(i64, IncidentEvent)>,
    pub core: crate::core::handle::CoreHandle,
    pub config: Arc<ForwardingConfig>,
    pub tiers: Arc<HashMap<String, Vec<String>>>,
    pub http: reqwest::Client,
    pub topic_prefix: String,
    /// The language and time zone of robot texts.
    pub presentation: Arc<presentation::Presentation>,
    /// Stops everything (targets take child tokens).
    pub shutdown: CancellationToken,
}

/// Prometheus metrics of forwarding (registered into the gateway's registry).
#[derive(Clone)]
pub struct ForwardMetrics {
    /// `hrs_deliveries_total{endpoint_kind,target,outcome}`: outcome `delivered`, `retried`,
    /// `parked`, `resent`, `held` (flood control), `summary`; `target` an endpoint's name or
    /// `subscribers` ([`pending::target_label`]).
    pub deliveries: prometheus::IntCounterVec,
    /// `hrs_deliveries_parked`: parked deliveries waiting for an operator.
    pub parked: prometheus::IntGauge,
    /// `hrs_delivery_seconds{endpoint_kind}`: time of one attempt.
    pub attempt_seconds: prometheus::HistogramVec,
    /// `hrs_heartbeats_total{outcome}`.
    pub heartbeats: prometheus::IntCounterVec,
    /// `hrs_delivery_pending_since_seconds{target}`: start of the oldest delivery still tried.
    pub pending: pending::PendingSince,
}

impl ForwardMetrics {
    pub fn register(m: &Metrics) -> ForwardMetrics {
        let deliveries = prometheus::IntCounterVec::new(
            prometheus::Opts::new("hrs_deliveries_total", "Delivery attempts of incident events and notifications, by target kind and outcome"),
            &["endpoint_kind", "target", "outcome"],
        )
        .expect("metric");
        let pending_since = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "hrs_delivery_pending_since_seconds",
                "Unix time the oldest delivery still being tried began, by target (0: none)",
            ),
            &["target"],
        )
        .expect("metric");
        let parked = prometheus::IntGauge::new(
            "hrs_deliveries_parked",
            "Deliveries refused permanently (4xx) and parked for an operator",
        )
        .expect("metric");
        let attempt_seconds = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "hrs_delivery_seconds",
                "Time of one delivery attempt, by target kind",
            )
            .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["endpoint_kind"],
        )
        .expect("metric");
        let heartbeats = prometheus::IntCounterVec::new(
            prometheus::Opts::new("hrs_heartbeats_total", "Heartbeats posted, by outcome"),
            &["outcome"],
        )
        .expect("metric");
        // Registered once per process; a second gateway in one process (tests) keeps its own
        // registry, so a failure here means a programming error.
        for c in [
            Box::new(deliveries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(parked.clone()),
            Box::new(attempt_seconds.clone()),
            Box::new(heartbeats.clone()),
            Box::new(pending_since.clone()),
        ] {
            if let Err(e) = m.registry.register(c) {
                tracing::warn!(error = %e, "forwarding metric not registered");
            }
        }
        ForwardMetrics {
            deliveries,
            parked,
            attempt_seconds,
            heartbeats,
            pending: pending::PendingSince::new(pending_since),
        }
    }
}

/// A handle to the running forwarding: used by the HTTP routes.
#[derive(Clone)]
pub struct Forwarding {
    pub shared: Shared,
    pub targets: Arc<lane::Targets>,
}

/// Everything `start` needs from the gateway.
pub struct Wiring {
    pub store: Store,
    pub live: Arc<RwLock<Live>>,
    pub clock: SharedClock,
    pub metrics: Metrics,
    pub events: broadcast::Sender<(i64, IncidentEvent)>,
    pub core: crate::core::handle::CoreHandle,
    /// The gateway's own MQTT topic prefix (for MQTT subscribers' `{prefix}`).
    pub topic_prefix: String,
    /// Names this gateway in heartbeats.
    pub gateway_name: String,
    /// The language and time zone of robot texts.
    pub presentation: presentation::Presentation,
}

/// Start the endpoints, subscribers, escalation and heartbeat tasks.
pub async fn start(
    config: &ForwardingConfig,
    w: Wiring,
    tasks: &mut crate::supervise::Tasks,
    shutdown: CancellationToken,
) -> Result<Forwarding, ForwardError> {
    config.validate()?;
    let http = crate::outbound::client(&broker_link::TlsFiles::default(), CONNECT_TIMEOUT)
        .map_err(|e| ForwardError::Channel(format!("http client: {e}")))?;
    let shared = Shared {
        store: w.store,
        live: w.live,
        clock: w.clock,
        metrics: ForwardMetrics::register(&w.metrics),
        events: w.events,
        core: w.core,
        config: Arc::new(config.clone()),
        tiers: Arc::new(config.tier_members()),
        http,
        topic_prefix: w.topic_prefix,
        presentation: Arc::new(w.presentation),
        shutdown: shutdown.clone(),
    };
    let db = crate::store::outbox::Db::new(&shared.store);
    // Subscribers of the file are (re)written to the store; those added over the API stay.
    let file_subscribers: Vec<(&str, &SubscriberConfig)> = config
        .subscribers
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    db.sync_config_subscribers(&file_subscribers, shared.clock.now())
        .await?;
    shared.metrics.parked.set(db.parked_count().await?);
    let targets = Arc::new(lane::Targets::new(shared.clone()));
    for e in &config.endpoints {
        let run = targets.add(lane::Target::endpoint(e, &shared)?);
        tasks.spawn(crate::supervise::must_run("forwarding endpoint", run));
    }
    for s in db.subscribers::<SubscriberConfig>().await? {
        match lane::Target::subscriber(&s.config, &shared) {
            Ok(Some(t)) => {
                // A subscriber's task ends when it is removed over the API.
                let run = targets.add(t);
                tasks.spawn(crate::supervise::may_end(run));
            }
            Ok(None) => {}
            // A stored subscriber that no longer passes (e.g. an old API record) is skipped, not fatal.
            Err(e) => {
                tracing::error!(subscriber = %s.config.id, error = %e, "subscriber not started")
            }
        }
    }
    if !config.escalation.is_empty() {
        tasks.spawn(crate::supervise::must_run(
            "escalation",
            escalation::run(shared.clone(), shutdown.clone()),
        ));
    }
    if let Some(h) = &config.heartbeat {
        tasks.spawn(crate::supervise::must_run(
            "heartbeat",
            sinks::heartbeat::run(h.clone(), w.gateway_name, shared.clone(), shutdown.clone()),
        ));
    }
    tracing::info!(
        endpoints = config.endpoints.len(),
        subscribers = targets.len(),
        policies = config.escalation.len(),
        "forwarding started"
    );
    Ok(Forwarding { shared, targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_from_env() {
        let mut c = ForwardingConfig::default();
        c.apply_env(&|k| match k {
            "HRS_PLATFORM_URL" => Some("http://127.0.0.1:9/in".into()),
            "HRS_PLATFORM_SECRET" => Some("s".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.endpoints[0].name, "platform");
        assert_eq!(c.endpoints[0].secret.as_deref(), Some("s"));
        assert_eq!(c.endpoints[0].max_backoff_ms, 30_000);
        c.validate().unwrap();
    }

    #[test]
    fn env_overrides_the_file_platform() {
        let mut c: ForwardingConfig = toml::from_str(
            "[[endpoints]]\nname = \"platform\"\nurl = \"http://x.invalid/\"\ntimeout_ms = 800\nmax_backoff_ms = 1000\n",
        )
        .unwrap();
        c.apply_env(&|k| (k == "HRS_PLATFORM_URL").then(|| "http://127.0.0.1:1/e".to_string()))
            .unwrap();
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.endpoints[0].url, "http://127.0.0.1:1/e");
        assert_eq!(c.endpoints[0].timeout_ms, 800);
    }

    #[test]
    fn secret_without_platform_refused() {
        let mut c = ForwardingConfig::default();
        assert!(c
            .apply_env(&|k| (k == "HRS_PLATFORM_SECRET").then(|| "s".to_string()))
            .is_err());
    }

    #[test]
    fn mqtt_endpoint_credentials_and_ca_file_are_checked() {
        let refused = |toml_text: &str| {
            toml::from_str::<ForwardingConfig>(toml_text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        let e =
            refused("[[endpoints]]\nname = \"p\"\nurl = \"http://x.invalid/\"\nusername = \"u\"\n");
        assert!(e.contains("for mqtt endpoints"), "{e}");
        let e = refused(
            "[[endpoints]]\nname = \"p\"\nkind = \"mqtt\"\nurl = \"mqtt://b\"\npassword = \"x\"\n",
        );
        assert!(e.contains("without username"), "{e}");
        let e = refused("[[endpoints]]\nname = \"p\"\nkind = \"mqtt\"\nurl = \"mqtts://b\"\nca_file = \"/nonexistent/ca.pem\"\n");
        assert!(
            e.contains("ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = refused("[[endpoints]]\nname = \"p\"\nkind = \"mqtt\"\nurl = \"mqtt://b\"\nca_file = \"/etc/ca.pem\"\n");
        assert!(e.contains("plain MQTT"), "{e}");
    }

    #[test]
    fn subscribers_outside_the_host_allow_list_are_refused() {
        let allowed = vec![
            "hooks.example.gov.cn".to_string(),
            "*.dingtalk.com".to_string(),
        ];
        let sub = |url: &str| -> SubscriberConfig {
            serde_json::from_value(
                serde_json::json!({"id": "s", "channel": {"kind": "webhook", "url": url}}),
            )
            .unwrap()
        };
        for ok in [
            "https://hooks.example.gov.cn/hrs",
            "https://HOOKS.example.gov.cn:8443/x",
            "https://oapi.dingtalk.com/robot/send",
        ] {
            assert!(sub(ok).check_host(&allowed).is_ok(), "{ok}");
        }
        for refused in [
            "https://evil.example.com/",
            "https://hooks.example.gov.cn.evil.com/",
            "https://dingtalk.com.evil/",
            "http://127.0.0.1:9/",
        ] {
            let e = sub(refused).check_host(&allowed).unwrap_err().to_string();
            assert!(e.contains("subscriber_hosts"), "{refused}: {e}");
        }
        assert!(sub("https://anything.example/").check_host(&[]).is_ok());
        // A webhook of the file may name TLS files; a missing one is named at start.
        let with_tls: SubscriberConfig = serde_json::from_value(serde_json::json!({"id": "s",
            "channel": {"kind": "webhook", "url": "https://hooks.example.gov.cn/",
                        "tls": {"ca_file": "/nonexistent/hooks-ca.pem"}}}))
        .unwrap();
        let e = with_tls.validate().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/hooks-ca.pem"), "{e}");
    }

    #[test]
    fn config_parses_and_validates() {
        let c: ForwardingConfig = toml::from_str(
            r#"
            [[endpoints]]
            name = "province"
            kind = "mqtt"
            url = "mqtt://10.0.0.1:1883"
            topic_prefix = "prov/v1"

            [[subscribers]]
            id = "duty"
            filter = { region = "4105", min_severity = "alarm" }
            channel = { kind = "dingtalk", url = "https://oapi.dingtalk.com/robot/send?access_token=x", secret = "SEC1" }

            [[subscribers]]
            id = "leader"
            channel = { kind = "wecom", url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" }

            [[escalation]]
            name = "default"
            filter = { min_severity = "alarm" }
            tiers = [{ name = "leader", after_ms = 300000, subscribers = ["leader"] }]

            [flood]
            max_incidents = 10
            window_ms = 60000

            [heartbeat]
            url = "http://127.0.0.1:9/hb"
            interval_ms = 10000
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.tier_members()["leader"], vec!["leader".to_string()]);
        let red = c.subscribers[0].channel.redacted();
        assert_eq!(
            red,
            ChannelConfig::Dingtalk {
                url: "https://oapi.dingtalk.com/robot/send?***".into(),
                secret: Some("***".into()),
                timeout_ms: 5000,
                at_mobiles: vec![],
                at_all: false,
                keyword: None,
                tls: Default::default(),
            }
        );
    }

    #[test]
    fn bad_configs_refused() {
        let bad = [
            "[[endpoints]]\nname = \"p\"\nurl = \"ftp://x\"\n",
            "[[endpoints]]\nname = \"p\"\nurl = \"http://x/\"\nmax_backoff_ms = 60000\n",
            "[[endpoints]]\nname = \"p\"\nurl = \"http://x/\"\n[[endpoints]]\nname = \"p\"\nurl = \"http://y/\"\n",
            "[[subscribers]]\nid = \"Bad Id\"\nchannel = { kind = \"sse\" }\n",
            "[[escalation]]\nname = \"e\"\ntiers = []\n",
            "[flood]\nmax_incidents = 0\nwindow_ms = 1000\n",
        ];
        for text in bad {
            let parsed: Result<ForwardingConfig, _> = toml::from_str(text);
            if let Ok(c) = parsed {
                assert!(c.validate().is_err(), "accepted: {text}");
            }
        }
        let unknown: Result<ForwardingConfig, _> =
            toml::from_str("[[endpoints]]\nname = \"p\"\nurl = \"http://x/\"\ntimeout = 5\n");
        assert!(unknown.is_err());
        let unknown: Result<ForwardingConfig, _> = toml::from_str(
            "[[subscribers]]\nid = \"a\"\nchannel = { kind = \"sse\", url = \"x\" }\n",
        );
        assert!(unknown.is_err(), "unknown key in a channel refused");
    }
}
