//! Delivery through the event log. Each target (an endpoint or a subscriber) runs a dispatcher
//! that watches the log for sites, and one *lane* per site that sends that site's events in
//! order, retrying the head event (same idempotency key) with capped backoff until it is
//! delivered or refused (parked), and only then moves on. Lanes of different sites run in
//! parallel, at most `max_in_flight` sends at once per target. Progress (per target, per site)
//! is written to the store after each event, so a restart resumes where it stopped; an event
//! sent but not yet recorded is sent again after a crash, under the same key.

use super::channel::Channel;
use super::filter::{self, Filter};
use super::flood::{FloodGate, Verdict};
use super::message::Message;
use super::outcome::Outcome;
use super::sinks::http::header_map;
use super::sinks::mqtt::MqttSink;
use super::sinks::robots::{Mentions, Robot};
use super::{ChannelConfig, EndpointConfig, EndpointKind, ForwardError, Shared, SubscriberConfig};
use crate::store::event_log::{EventLog, Scope};
use crate::store::outbox::Db;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use telemetry::{EventKind, IncidentEvent, SiteInfo};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Which events of the log a target takes.
pub enum Selector {
    /// Every event (upstream endpoints).
    All,
    /// By the subscriber's filter; `notified` events by tier membership.
    Subscriber { id: String, filter: Filter },
}

pub struct Target {
    /// `endpoint:{name}` or `subscriber:{id}`: names its progress in the store.
    pub key: String,
    /// Metric label and parked `kind`: `http`, `mqtt`, `webhook`, `dingtalk`, `wecom`.
    pub kind: &'static str,
    pub selector: Selector,
    pub flood: Option<super::FloodConfig>,
    pub channel: Channel,
    pub max_backoff: Duration,
    /// Endpoints start at the beginning of the log; subscribers at its end when first seen.
    pub from_start: bool,
    pub in_flight: Arc<Semaphore>,
    pub stop: CancellationToken,
}

impl Target {
    pub fn endpoint(e: &EndpointConfig, shared: &Shared) -> Result<Target, ForwardError> {
        let stop = shared.shutdown.child_token();
        let timeout = Duration::from_millis(e.timeout_ms);
        let (kind, channel) = match e.kind {
            EndpointKind::Http => (
                "http",
                Channel::Http {
                    client: e.http_client(shared)?,
                    url: reqwest::Url::parse(&e.url).map_err(|err| {
                        ForwardError::Config(format!("endpoint {}: {err}", e.name))
                    })?,
                    secret: e.secret.clone(),
                    headers: header_map(&e.headers)?,
                    timeout,
                },
            ),
            EndpointKind::Mqtt => {
                let client_id = e
                    .client_id
                    .clone()
                    .unwrap_or_else(|| format!("hrs-forward-{}", e.name));
                let credentials = e
                    .username
                    .clone()
                    .map(|u| (u, e.password.clone().unwrap_or_default()));
                let sink = MqttSink::start(
                    &e.mqtt_broker()?,
                    &client_id,
                    credentials,
                    timeout,
                    stop.clone(),
                )?;
                (
                    "mqtt",
                    Channel::Mqtt {
                        sink,
                        topic: format!("{}/incidents/{{site}}", e.topic_prefix),
                    },
                )
            }
        };
        Ok(Target {
            key: format!("endpoint:{}", e.name),
            kind,
            selector: Selector::All,
            flood: None,
            channel,
            max_backoff: Duration::from_millis(e.max_backoff_ms),
            from_start: true,
            in_flight: Arc::new(Semaphore::new(shared.config.max_in_flight)),
            stop,
        })
    }

    /// A subscriber's target; `None` for SSE subscribers (they read the log themselves).
    pub fn subscriber(
        s: &SubscriberConfig,
        shared: &Shared,
    ) -> Result<Option<Target>, ForwardError> {
        let stop = shared.shutdown.child_token();
        // The subscriber's own client when it names TLS files, else the shared one.
        let client = || -> Result<reqwest::Client, ForwardError> {
            Ok(s.own_client()?.unwrap_or_else(|| shared.http.clone()))
        };
        let channel = match &s.channel {
            ChannelConfig::Webhook {
                url,
                secret,
                timeout_ms,
                headers,
                ..
            } => Channel::Http {
                client: client()?,
                url: reqwest::Url::parse(url)
                    .map_err(|e| ForwardError::Config(format!("subscriber {}: {e}", s.id)))?,
                secret: secret.clone(),
                headers: header_map(headers)?,
                timeout: Duration::from_millis(*timeout_ms),
            },
            ChannelConfig::Dingtalk {
                url,
                secret,
                timeout_ms,
                at_mobiles,
                at_all,
                keyword,
                ..
            } => Channel::Dingtalk {
                robot: Robot {
                    client: client()?,
                    url: url.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                    mentions: Mentions {
                        mobiles: at_mobiles.clone(),
                        all: *at_all,
                        keyword: keyword.clone(),
                    },
                },
                secret: secret.clone(),
            },
            ChannelConfig::Wecom {
                url,
                timeout_ms,
                mentioned_mobiles,
                mention_all,
                ..
            } => Channel::Wecom {
                robot: Robot {
                    client: client()?,
                    url: url.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                    mentions: Mentions {
                        mobiles: mentioned_mobiles.clone(),
                        all: *mention_all,
                        keyword: None,
                    },
                },
            },
            ChannelConfig::Mqtt {
                url,
                topic,
                client_id,
            } => {
                let client_id = client_id
                    .clone()
                    .unwrap_or_else(|| format!("hrs-notify-{}", s.id));
                // mqtts:// is verified against the system's roots.
                let broker = broker_link::Broker::resolve(url, false, &Default::default())
                    .map_err(|e| ForwardError::Config(format!("subscriber {:?}: {e}", s.id)))?;
                let sink = MqttSink::start(
                    &broker,
                    &client_id,
                    None,
                    Duration::from_millis(super::default_timeout_ms()),
                    stop.clone(),
                )?;
                let topic = topic
                    .replace("{subscriber}", &s.id)
                    .replace("{prefix}", &shared.topic_prefix);
                Channel::Mqtt { sink, topic }
            }
            ChannelConfig::Sse {} => return Ok(None),
        };
        Ok(Some(Target {
            key: format!("subscriber:{}", s.id),
            kind: s.channel.kind(),
            selector: Selector::Subscriber {
                id: s.id.clone(),
                filter: s.filter.clone(),
            },
            flood: shared.config.flood.clone(),
            channel,
            max_backoff: Duration::from_millis(super::default_max_backoff_ms()),
            from_start: false,
            in_flight: Arc::new(Semaphore::new(shared.config.max_in_flight)),
            stop,
        }))
    }

    /// Whether this target takes the event.
    pub fn wants(&self, shared: &Shared, ev: &IncidentEvent, site: Option<&SiteInfo>) -> bool {
        match &self.selector {
            Selector::All => true,
            Selector::Subscriber { id, filter } => filter::wants(filter, ev, site, |tier| {
                shared
                    .tiers
                    .get(tier)
                    .is_some_and(|m| m.iter().any(|s| s == id))
            }),
        }
    }
}

/// The running targets, by key.
pub struct Targets {
    shared: Shared,
    map: RwLock<HashMap<String, Arc<Target>>>,
}

impl Targets {
    pub fn new(shared: Shared) -> Targets {
        Targets {
            shared,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Register a target; the returned future runs it (spawn it).
    pub fn add(&self, t: Target) -> impl std::future::Future<Output = ()> + Send + 'static {
        let t = Arc::new(t);
        if let Some(old) = self
            .map
            .write()
            .expect("targets lock")
            .insert(t.key.clone(), t.clone())
        {
            old.stop.cancel();
        }
        let span = tracing::info_span!("forward", target = %t.key, kind = t.kind);
        run_target(t, self.shared.clone()).instrument(span)
    }

    /// Stop and forget a target.
    pub fn remove(&self, key: &str) -> Option<Arc<Target>> {
        let t = self.map.write().expect("targets lock").remove(key)?;
        t.stop.cancel();
        Some(t)
    }

    pub fn get(&self, key: &str) -> Option<Arc<Target>> {
        self.map.read().expect("targets lock").get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.read().expect("targets lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Retry a store operation until it succeeds or the target stops.
async fn durably<T, F, Fut>(stop: &CancellationToken, what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut backoff = retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::warn!(error = %e, what, "forwarding store operation failed; retrying");
                tokio::select! { _ = stop.cancelled() => return None, _ = tokio::time::sleep(backoff.next_delay()) => {} }
            }
        }
    }
}

async fn run_target(t: Arc<Target>, shared: Shared) {
    let db = EventLog::new(&shared.store);
    let stop = t.stop.clone();
    // Subscribe before reading the log: nothing falls between the two.
    let mut rx = shared.events.subscribe();
    let Some(max) = durably(&stop, "log end", || db.end()).await else {
        return;
    };
    let default_start = if t.from_start { 0 } else { max };
    let Some(start) = durably(&stop, "target start", || {
        db.target_start(&t.key, default_start)
    })
    .await
    else {
        return;
    };
    let Some(progress) = durably(&stop, "progress", || db.progress(&t.key)).await else {
        return;
    };
    let Some(mut sites) = durably(&stop, "sites", || db.sites_between(start, max)).await else {
        return;
    };
    sites.extend(progress.keys().cloned());
    let sites: HashSet<String> = sites.into_iter().collect();
    let mut lanes: HashMap<String, Arc<Notify>> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    for site in sites {
        let from = progress.get(&site).copied().unwrap_or(start);
        let wake = Arc::new(Notify::new());
        running.spawn(run_lane(
            t.clone(),
            shared.clone(),
            site.clone(),
            from,
            wake.clone(),
        ));
        lanes.insert(site, wake);
    }
    tracing::info!(target = %t.key, start, sites = lanes.len(), "delivery started");
    let mut scan = max;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = rx.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let page = match db.sites_after(scan, 1000).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(target = %t.key, error = %e, "reading the event log");
                continue;
            }
        };
        for (pos, site) in page {
            scan = pos;
            match lanes.get(&site) {
                Some(w) => w.notify_one(),
                None => {
                    let wake = Arc::new(Notify::new());
                    running.spawn(run_lane(
                        t.clone(),
                        shared.clone(),
                        site.clone(),
                        start,
                        wake.clone(),
                    ));
                    lanes.insert(site, wake);
                }
            }
        }
    }
    // Lanes stop on the same token.
    while running.join_next().await.is_some() {}
    tracing::info!(target = %t.key, "delivery stopped");
}

fn site_info(shared: &Shared, site: &str) -> Option<SiteInfo> {
    shared
        .live
        .read()
        .expect("live lock")
        .sites
        .get(site)
        .map(|s| s.info.clone())
}

/// Send one message until it is delivered or refused; `None` when the target stops.
async fn deliver(t: &Target, shared: &Shared, db: &Db, msg: &Message, pos: i64) -> Option<()> {
    let initial = Duration::from_millis(shared.config.retry_initial_ms);
    let mut backoff = retry::Backoff::new(initial.min(t.max_backoff), t.max_backoff);
    let mut attempts: u32 = 0;
    let _pending =
        shared
            .metrics
            .pending
            .begin(&t.key, msg.site(), shared.clock.now().timestamp_millis());
    loop {
        attempts += 1;
        let info = site_info(shared, msg.site());
        let outcome = {
            let _permit = tokio::select! {
                _ = t.stop.cancelled() => return None,
                p = t.in_flight.acquire() => p.ok()?,
            };
            let started = Instant::now();
            let o = tokio::select! {
                _ = t.stop.cancelled() => return None,
                o = t.channel.send(shared, msg, info.as_ref(), shared.clock.now()) => o,
            };
            shared
                .metrics
                .attempt_seconds
                .with_label_values(&[t.kind])
                .observe(started.elapsed().as_secs_f64());
            o
        };
        shared
            .metrics
            .deliveries
            .with_label_values(&[
                t.kind,
                super::pending::target_label(&t.key),
                outcome.label(),
            ])
            .inc();
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(target = %t.key, id = msg.id(), attempts, "delivered");
                return Some(());
            }
            Outcome::Refused { status, reason } => {
                tracing::warn!(target = %t.key, id = msg.id(), status, %reason, "refused for good; parked");
                let body = String::from_utf8(msg.json()).unwrap_or_default();
                let now = shared.clock.now();
                durably(&t.stop, "park", || {
                    db.park(
                        &t.key,
                        t.kind,
                        msg.site(),
                        pos,
                        msg.id(),
                        &body,
                        status,
                        &reason,
                        attempts,
                        now,
                    )
                })
                .await?;
                shared.metrics.parked.inc();
                return Some(());
            }
            Outcome::Retry { reason, after } => {
                // A Retry-After the receiver asked for wins over our own step.
                let step = backoff.next_delay();
                let wait = after.unwrap_or(step).min(t.max_backoff);
                if attempts == 1 || attempts.is_power_of_two() {
                    tracing::warn!(target = %t.key, id = msg.id(), attempts, %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; retrying");
                }
                tokio::select! {
                    _ = t.stop.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

async fn run_lane(t: Arc<Target>, shared: Shared, site: String, from: i64, wake: Arc<Notify>) {
    let db = Db::new(&shared.store);
    let log = EventLog::new(&shared.store);
    let stop = t.stop.clone();
    // Durable progress (`done`) and what has been read (`read`; ahead of `done` only while a
    // flood summary gathers: held events are done once the summary is out).
    let mut done = from;
    let mut read = from;
    let mut gate = t.flood.clone().map(FloodGate::new);
    if let (Some(g), Some(f)) = (gate.as_mut(), t.flood.as_ref()) {
        // Restore the window from the raises just before where we resume.
        if from > 0 {
            if let Ok(recent) = log
                .site_events_before(&site, from, (f.max_incidents as i64 + 1) * 4)
                .await
            {
                let info = site_info(&shared, &site);
                for ev in recent
                    .iter()
                    .rev()
                    .filter(|e| e.event == EventKind::Raised && t.wants(&shared, e, info.as_ref()))
                {
                    g.prime(ev.at);
                }
            }
        }
    }
    let site_id = match telemetry::SiteId::new(site.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%site, error = %e, "a site id in the log is not valid; its lane does not run");
            return;
        }
    };
    loop {
        if stop.is_cancelled() {
            return;
        }
        // A flood summary that is due goes out first.
        if let Some(g) = gate.as_mut() {
            if let Some(summary) = g.flush(&site_id, shared.clock.now(), false) {
                if deliver(&t, &shared, &db, &Message::Summary(summary), read)
                    .await
                    .is_none()
                {
                    return;
                }
                shared
                    .metrics
                    .deliveries
                    .with_label_values(&[t.kind, super::pending::target_label(&t.key), "summary"])
                    .inc();
                done = read;
                durably(&stop, "progress", || log.set_progress(&t.key, &site, done)).await;
            }
        }
        let holding = gate.as_ref().is_some_and(|g| g.holding());
        let mut reader = log.reader(Scope::Site(site.clone()), read, 100);
        let page = match reader.next_page().await {
            Ok(Some(p)) => p,
            Ok(None) => {
                let idle = if holding {
                    Duration::from_millis(100)
                } else {
                    Duration::from_secs(5)
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(target = %t.key, %site, error = %e, "reading the site's events");
                tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                continue;
            }
        };
        let info = site_info(&shared, &site);
        let mut skipped_to = None;
        for (pos, ev) in page {
            read = pos;
            let holding = gate.as_ref().is_some_and(|g| g.holding());
            if !t.wants(&shared, &ev, info.as_ref()) {
                if !holding {
                    done = pos;
                    skipped_to = Some(pos);
                }
                continue;
            }
            if let Some(g) = gate.as_mut() {
                if g.observe(&ev, shared.clock.now()) == Verdict::Hold {
                    shared
                        .metrics
                        .deliveries
                        .with_label_values(&[t.kind, super::pending::target_label(&t.key), "held"])
                        .inc();
                    continue;
                }
            }
            if deliver(&t, &shared, &db, &Message::Event(Box::new(ev)), pos)
                .await
                .is_none()
            {
                return;
            }
            if !gate.as_ref().is_some_and(|g| g.holding()) {
                done = pos;
                skipped_to = None;
                durably(&stop, "progress", || log.set_progress(&t.key, &site, done)).await;
            }
        }
        // Unreadable rows at the page's end are passed over like events the target does not want.
        if reader.position() > read {
            read = reader.position();
            if !gate.as_ref().is_some_and(|g| g.holding()) {
                done = read;
                skipped_to = Some(read);
            }
        }
        if skipped_to.is_some() {
            durably(&stop, "progress", || log.set_progress(&t.key, &site, done)).await;
        }
    }
}
