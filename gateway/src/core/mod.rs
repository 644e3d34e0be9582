//! The core: the single writer of the gateway's state. Every inbound message, operator action
//! and timer tick passes through it in order; it judges, keeps incidents, persists them and
//! announces their events. Deterministic given its inputs and its clock.

pub mod config;
pub mod handle;
pub mod lifecycle;
pub mod live;
pub mod run;
pub mod seq;

use crate::clock::SharedClock;
use crate::core::live::{Live, PointLive};
use crate::core::seq::{SeqVerdict, SeqWindow};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use alarm_rules::{Engine, SiteContext, Transition};
use config::IngestConfig;
use lifecycle::{cause_key, cause_of, ActionError, IncidentRecord};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use telemetry::catalogue::ValueKind;
use telemetry::{
    decode_batch, decode_catalogue, decode_status, AgentId, AgentState, DecodeLimits,
    IncidentEvent, SiteId, SiteInfo, Timestamp, Topic, TopicScheme, Value,
};
use tokio::sync::{broadcast, Notify};

/// Text fields of an incident made storable (no NUL) and bounded (messages, notes and names
/// at most 4,096 characters): what carried a device's bad bytes into an incident must not
/// keep the incident out of the store.
fn sanitize_incident(i: &mut telemetry::Incident) {
    fn clean(s: &mut String) {
        let mut t = crate::store::storable(s).into_owned();
        if t.chars().count() > 4096 {
            t = t.chars().take(4096).collect();
        }
        *s = t;
    }
    clean(&mut i.message);
    for s in [
        &mut i.note,
        &mut i.acked_by,
        &mut i.closed_by,
        &mut i.assigned_to,
        &mut i.zone,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
    for w in &mut i.warnings {
        clean(w);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no incident {0}")]
    NotFound(String),
    #[error(transparent)]
    Action(#[from] ActionError),
    /// A weather document refused (HTTP 400 with this reason).
    #[error("{0}")]
    Refused(String),
}

/// An operator's action on an incident.
#[derive(Debug, Clone)]
pub enum Action {
    Ack {
        operator: String,
        note: Option<String>,
    },
    Close {
        operator: String,
        note: Option<String>,
    },
    Comment {
        operator: String,
        text: String,
    },
    Assign {
        operator: String,
        assignee: String,
    },
    Shelve {
        operator: String,
        reason: String,
        until: Timestamp,
    },
    Unshelve {
        operator: String,
    },
    /// An escalation tier was notified (forwarding, issue 9): a `notified` event with `tier`.
    Notified {
        tier: String,
    },
}

/// Run a store operation until the store gives its answer. A transient error (the store is
/// away, busy or restarting) is retried with backoff: the caller has not acknowledged its
/// message yet and `/readyz` says 503 meanwhile, so an outage is ridden out, never turned into
/// lost incidents. A permanent error (the store refuses this row for good) is returned at
/// once, counted under `$what`, for the caller to dead-letter or make storable: it must never
/// stop the core.
macro_rules! durably {
    ($self:ident, $what:expr, $op:expr) => {{
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match $op.await {
                Ok(v) => {
                    $self.store_ok.store(true, std::sync::atomic::Ordering::Relaxed);
                    break Ok(v);
                }
                Err(e) if e.is_transient() => {
                    $self.store_ok.store(false, std::sync::atomic::Ordering::Relaxed);
                    $self.metrics.store_errors.with_label_values(&["transient"]).inc();
                    tracing::error!(error = %e, what = $what, retry_in_ms = delay.as_millis() as u64, "store write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => {
                    // The store answered: it is up, it refuses this row.
                    $self.store_ok.store(true, std::sync::atomic::Ordering::Relaxed);
                    $self.metrics.store_errors.with_label_values(&["permanent"]).inc();
                    $self.metrics.store_refusals.with_label_values(&[$what]).inc();
                    tracing::error!(error = %e, what = $what, "the store refused a row for good");
                    break Err(e);
                }
            }
        }
    }};
}

/// The core's heartbeat, for `/readyz` and the service manager's watchdog: the core loop
/// marks each turn (a tick at least every 500 ms, a message group, an action), so a core
/// that is stuck, or ended, shows as stalled. Measured on the monotonic clock of the process.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    last_ms: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            origin: Instant::now(),
            last_ms: Default::default(),
            ended: Default::default(),
        }
    }
}

impl Liveness {
    /// The core turned.
    pub fn mark(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
    /// The core loop ended.
    pub fn end(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// `Some(ms since the last turn)` when that is more than `limit_ms`, or the core ended.
    pub fn stalled_for_ms(&self, limit_ms: u64) -> Option<u64> {
        let since = (self.origin.elapsed().as_millis() as u64)
            .saturating_sub(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        (since > limit_ms || self.ended.load(std::sync::atomic::Ordering::Relaxed)).then_some(since)
    }
}

/// The seq window of an agent epoch and when it last spoke (gateway clock).
struct EpochWindow {
    window: SeqWindow,
    seen: Timestamp,
}

/// One refused item of a message (a reading, a catalogue point), kept in the message's one
/// dead letter.
#[derive(Debug, Clone, serde::Serialize)]
struct RefusedItem {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    point: Option<String>,
    code: &'static str,
    reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    raw: String,
}

pub struct Core {
    engine: Engine,
    store: Store,
    clock: SharedClock,
    scheme: TopicScheme,
    limits: DecodeLimits,
    ingest: IngestConfig,
    /// Standing incidents by cause key.
    open: HashMap<String, IncidentRecord>,
    /// Cause key of each standing incident id.
    open_ids: HashMap<String, String>,
    /// The newest incident of each cause (for `previous`).
    last_incident: HashMap<String, String>,
    /// Seq windows in memory, by agent epoch (bounded: see [`Core::load_epoch`]).
    seqs: HashMap<(SiteId, AgentId, String), EpochWindow>,
    /// In a group ([`Core::begin_group`]): the seq windows to save at its commit, by key.
    deferred_windows: Option<std::collections::BTreeMap<(SiteId, AgentId, String), String>>,
    registry: HashMap<SiteId, SiteInfo>,
    pub live: Arc<RwLock<Live>>,
    events: broadcast::Sender<(i64, IncidentEvent)>,
    pub event_written: Arc<Notify>,
    metrics: Metrics,
    scratch: Vec<Transition>,
    /// Active weather and earthquake warnings.
    book: weather::WarningBook,
    /// Raises of the last hour (gateway clock, cause key), for the alarm-load metrics.
    recent_raises: std::collections::VecDeque<(Timestamp, String)>,
    /// False while store writes fail.
    pub store_ok: Arc<std::sync::atomic::AtomicBool>,
    /// timeseries (issue 10): where each taken reading is recorded, when configured.
    pub timeseries: Option<crate::timeseries::TimeSeriesHandle>,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        engine: Engine,
        store: Store,
        clock: SharedClock,
        scheme: TopicScheme,
        ingest: IngestConfig,
        registry: Vec<config::SiteRegistryEntry>,
        weather: weather::WeatherConfig,
        metrics: Metrics,
    ) -> Result<Core, CoreError> {
        let limits = DecodeLimits {
            max_future: chrono::Duration::milliseconds(ingest.max_future_ms as i64),
            max_text_chars: ingest.max_catalogue_text_chars,
            max_tags: ingest.max_tags_per_point,
            ..DecodeLimits::default()
        };
        let (events, _) = broadcast::channel(4096);
        let mut core = Core {
            engine,
            store,
            clock,
            scheme,
            limits,
            ingest,
            open: HashMap::new(),
            open_ids: HashMap::new(),
            last_incident: HashMap::new(),
            seqs: HashMap::new(),
            deferred_windows: None,
            registry: registry.into_iter().map(|e| (e.id, e.info)).collect(),
            live: Arc::new(RwLock::new(Live::default())),
            events,
            event_written: Arc::new(Notify::new()),
            metrics,
            scratch: Vec::new(),
            book: weather::WarningBook::new(weather),
            recent_raises: Default::default(),
            store_ok: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            timeseries: None, // timeseries (issue 10)
        };
        core.recover().await?;
        Ok(core)
    }

    /// Restore what a previous run left: registry sites, catalogues, seq windows, standing
    /// incidents (so a standing condition is not raised twice and its clear is not lost).
    async fn recover(&mut self) -> Result<(), CoreError> {
        let registry: Vec<(SiteId, SiteInfo)> = self
            .registry
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (site, info) in registry {
            let mut live = self.live.write().expect("live lock");
            let s = live.site_mut(&site);
            s.info = info.clone();
            s.from_registry = true;
            drop(live);
            self.engine.set_site(
                &site,
                SiteContext {
                    category: info.category.clone(),
                    region: info.region.clone(),
                },
            );
        }
        for (site, _agent, body) in self.store.catalogues().await? {
            let (Ok(site), Ok(cat)) = (
                SiteId::new(site),
                serde_json::from_str::<telemetry::Catalogue>(&body),
            ) else {
                continue;
            };
            self.bind_catalogue(&site, &cat);
        }
        self.scratch.clear();
        // Only epochs that spoke lately come back into memory, at most `max_epochs_per_agent`
        // of each agent (the newest); the others are read from the store when they speak.
        let now = self.now();
        let idle = chrono::Duration::days(i64::from(self.ingest.epoch_idle_days));
        let since = (now - idle).timestamp_millis();
        let mut per_agent: HashMap<(SiteId, AgentId), usize> = HashMap::new();
        for (site, agent, epoch, body, seen_ms) in self.store.recent_seq_windows(since).await? {
            let (Ok(site), Ok(agent), Ok(window)) = (
                SiteId::new(site),
                AgentId::new(agent),
                serde_json::from_str::<SeqWindow>(&body),
            ) else {
                continue;
            };
            let n = per_agent.entry((site.clone(), agent.clone())).or_default();
            if *n >= self.ingest.max_epochs_per_agent {
                continue;
            }
            *n += 1;
            let seen = chrono::DateTime::from_timestamp_millis(seen_ms).unwrap_or(now);
            self.seqs
                .insert((site, agent, epoch), EpochWindow { window, seen });
        }
        for (cause, id) in self.store.last_per_cause().await? {
            self.last_incident.insert(cause, id);
        }
        for (key, rec) in self.store.standing().await? {
            if let Some(cause) = cause_of(&rec.incident) {
                self.engine.restore_open(&cause, rec.incident.severity);
            }
            self.open_ids.insert(rec.incident.id.clone(), key.clone());
            self.open.insert(key, rec);
        }
        for (_, _, body) in self.store.out_of_service().await? {
            if let Ok(o) = serde_json::from_str::<crate::core::live::OutOfService>(&body) {
                self.live
                    .write()
                    .expect("live lock")
                    .out_of_service
                    .insert((o.site.clone(), o.point.clone()), o);
            }
        }
        // Rebuild the warning book from the documents as they came, judged at today's clock.
        let now = self.now();
        for (kind, body) in self.store.weather_docs().await? {
            let _ = self.apply_weather(&kind, &body, now);
        }
        let _ = self.book.advance(now);
        let sites: Vec<SiteId> = self
            .live
            .read()
            .expect("live lock")
            .sites
            .keys()
            .cloned()
            .collect();
        self.scratch.clear();
        for site in sites {
            self.rejudge_site_warnings(&site, now);
        }
        self.publish_warnings();
        self.update_open_gauge();
        Ok(())
    }

    /// Parse a weather document and apply it to the book (no I/O).
    fn apply_weather(
        &mut self,
        kind: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<weather::Applied, CoreError> {
        let applied = match kind {
            "cap" => {
                let alert = weather::parse_cap(body, &self.book.config().cap)
                    .map_err(|e| CoreError::Refused(e.to_string()))?;
                self.book.apply(&alert, now)
            }
            _ => {
                let report = weather::parse_cenc(body, self.book.config())
                    .map_err(|e| CoreError::Refused(e.to_string()))?;
                self.book.apply_cenc(&report, now)
            }
        };
        if let Err(weather::BookError::SenderFull { .. }) = &applied {
            self.metrics
                .bounds_hit
                .with_label_values(&["warnings_per_sender"])
                .inc();
        }
        applied.map_err(|e| CoreError::Refused(e.to_string()))
    }

    /// A CAP or CENC document (from MQTT or HTTP). Affected sites are re-judged at once.
    pub async fn handle_weather(
        &mut self,
        kind: &str,
        body: &[u8],
    ) -> Result<(weather::Outcome, Vec<IncidentEvent>), CoreError> {
        self.scratch.clear();
        let now = self.now();
        let applied = self.apply_weather(kind, body, now)?;
        let keep_ms = i64::from(self.book.config().book.remember_for_h) * 3_600_000;
        if let Err(e) = durably!(
            self,
            "weather_doc",
            self.store.add_weather_doc(kind, now, body, keep_ms)
        ) {
            // In force now, but it would not come back after a restart: say so where operators look.
            let reason = format!(
                "the store refused the {kind} document (it is in force until a restart): {e}"
            );
            self.dead_letter(&format!("weather/{kind}"), "store_refused", &reason, body)
                .await;
        }
        tracing::info!(
            kind,
            outcome = applied.outcome.as_str(),
            started = applied.change.started.len(),
            ended = applied.change.ended.len(),
            "weather document taken"
        );
        let touched = self.on_warning_change(&applied.change, now);
        let mut events = self.apply_transitions().await?;
        events.extend(self.restate_warnings(&touched, now).await?);
        Ok((applied.outcome, events))
    }

    /// Re-judge the sites a change of warnings touches; returns them.
    fn on_warning_change(&mut self, change: &weather::Change, now: Timestamp) -> Vec<SiteId> {
        if change.is_empty() {
            return Vec::new();
        }
        let touched: Vec<SiteId> = {
            let live = self.live.read().expect("live lock");
            live.sites
                .iter()
                .filter(|(_, s)| {
                    let loc = s.location();
                    change
                        .started
                        .iter()
                        .chain(&change.ended)
                        .any(|w| w.affects(&loc))
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for site in &touched {
            self.rejudge_site_warnings(site, now);
        }
        self.publish_warnings();
        touched
    }

    /// After the transitions of a change of warnings: standing incidents of the touched sites
    /// whose shaping warnings changed without a change of severity get their `warnings` brought
    /// up to date (see [`incident::restate_warnings`]).
    async fn restate_warnings(
        &mut self,
        sites: &[SiteId],
        now: Timestamp,
    ) -> Result<Vec<IncidentEvent>, CoreError> {
        let mut keys: Vec<String> = self
            .open
            .iter()
            .filter(|(_, r)| sites.contains(&r.incident.site))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let Some(mut rec) = self.open.remove(&key) else {
                continue;
            };
            let shaping = self
                .engine
                .shaping_warnings(&rec.incident.rule, &rec.incident.site);
            let event = shaping.and_then(|w| lifecycle::restate_warnings(&mut rec, w, now));
            if let Some(ev) = event {
                out.push(self.persist(&key, &mut rec, ev).await?);
            }
            self.open.insert(key, rec);
        }
        Ok(out)
    }

    fn rejudge_site_warnings(&mut self, site: &SiteId, now: Timestamp) {
        let loc = match self.live.read().expect("live lock").sites.get(site) {
            Some(s) => s.location(),
            None => return,
        };
        let active: Vec<alarm_rules::ActiveWarning> = self
            .book
            .warnings_for(&loc)
            .into_iter()
            .map(|w| w.to_active_warning())
            .collect();
        self.engine
            .set_warnings(site, active, now, &mut self.scratch);
    }

    /// Refresh the list `GET /api/v1/weather/warnings` serves.
    fn publish_warnings(&self) {
        let mut live = self.live.write().expect("live lock");
        let list: Vec<serde_json::Value> = self
            .book
            .active()
            .into_iter()
            .map(|w| {
                let mut v = serde_json::to_value(w).unwrap_or_default();
                let sites: Vec<&str> = live
                    .sites
                    .iter()
                    .filter(|(_, s)| w.affects(&s.location()))
                    .map(|(id, _)| id.as_str())
                    .collect();
                v["sites"] = serde_json::json!(sites);
                v
            })
            .collect();
        live.warnings = list;
    }

    /// timeseries (issue 10): record every taken reading through `handle`.
    pub fn set_timeseries(&mut self, handle: crate::timeseries::TimeSeriesHandle) {
        self.timeseries = Some(handle);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(i64, IncidentEvent)> {
        self.events.subscribe()
    }
    pub fn events_sender(&self) -> broadcast::Sender<(i64, IncidentEvent)> {
        self.events.clone()
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn site_context(&self, site: &SiteId) -> SiteContext {
        let live = self.live.read().expect("live lock");
        live.sites
            .get(site)
            .map(|s| SiteContext {
                category: s.info.category.clone(),
                region: s.info.region.clone(),
            })
            .unwrap_or_default()
    }

    fn bind_catalogue(&mut self, site: &SiteId, cat: &telemetry::Catalogue) {
        self.live
            .write()
            .expect("live lock")
            .apply_catalogue(site, cat);
        let ctx = self.site_context(site);
        self.engine.set_site(site, ctx);
        let now = self.now();
        self.engine.set_catalogue(site, cat, now, &mut self.scratch);
        self.rejudge_site_warnings(site, now);
    }

    /// Handle one MQTT message. Returns the incident events it caused. The caller acknowledges
    /// the message to the broker after this returns `Ok`.
    pub async fn handle_message(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> Result<Vec<IncidentEvent>, CoreError> {
        let started = Instant::now();
        self.scratch.clear();
        let now = self.now();
        let parsed = self.scheme.parse(topic);
        let kind = match &parsed {
            Ok(Topic::Birth { .. }) => "birth",
            Ok(Topic::Readings { .. }) => "readings",
            Ok(Topic::Status { .. }) => "status",
            Ok(Topic::WeatherCap) => "weather_cap",
            Ok(Topic::WeatherCenc) => "weather_cenc",
            Ok(Topic::Incidents { .. }) | Err(_) => "other",
        };
        self.metrics
            .messages_received
            .with_label_values(&[kind])
            .inc();
        match parsed {
            Err(e) => {
                self.refuse_message(topic, "bad_topic", &e.to_string(), payload)
                    .await;
            }
            Ok(
                Topic::Birth {
                    ref site,
                    ref agent,
                }
                | Topic::Status {
                    ref site,
                    ref agent,
                }
                | Topic::Readings {
                    ref site,
                    ref agent,
                },
            ) if self.admit(site, agent).is_some() => {
                let (code, reason) = self.admit(site, agent).unwrap_or_default();
                let bound = match code {
                    "too_many_sites" => "sites",
                    _ => "agents_per_site",
                };
                self.metrics.bounds_hit.with_label_values(&[bound]).inc();
                self.refuse_message(topic, code, &reason, payload).await;
            }
            Ok(Topic::Birth { site, agent }) => {
                match decode_catalogue(payload, Some(&agent), &self.limits) {
                    Err(e) => {
                        self.refuse_message(topic, e.code(), &e.to_string(), payload)
                            .await
                    }
                    Ok(decoded) => {
                        let mut refused: Vec<RefusedItem> = decoded
                            .refused
                            .iter()
                            .map(|(i, reason)| RefusedItem {
                                index: *i,
                                point: None,
                                code: "bad_point_spec",
                                reason: reason.clone(),
                                raw: String::new(),
                            })
                            .collect();
                        let mut catalogue = decoded.catalogue;
                        self.bound_catalogue(&site, &mut catalogue, &mut refused);
                        self.refuse_items(topic, &refused).await;
                        for p in &catalogue.points {
                            if !p.unit.is_known() || !p.quantity.is_known() {
                                tracing::info!(%site, point = %p.point, unit = %p.unit, quantity = %p.quantity, "unit or quantity not known; kept as given");
                            }
                        }
                        let body = serde_json::to_string(&catalogue).unwrap_or_default();
                        match durably!(
                            self,
                            "catalogue",
                            self.store
                                .save_catalogue(site.as_str(), agent.as_str(), &body)
                        ) {
                            Ok(()) => self.bind_catalogue(&site, &catalogue),
                            Err(e) => {
                                self.refuse_message(
                                    topic,
                                    "store_refused",
                                    &format!("the store refused the catalogue: {e}"),
                                    payload,
                                )
                                .await
                            }
                        }
                    }
                }
            }
            Ok(Topic::Status { site, agent }) => {
                match decode_status(payload, Some(&agent), &self.limits) {
                    Err(e) => {
                        self.refuse_message(topic, e.code(), &e.to_string(), payload)
                            .await
                    }
                    Ok(status) => {
                        {
                            let mut live = self.live.write().expect("live lock");
                            let a = live
                                .site_mut(&site)
                                .agents
                                .entry(agent.clone())
                                .or_default();
                            a.online = status.state == AgentState::Online;
                            a.last_seen = Some(now);
                            let online = live
                                .sites
                                .values()
                                .flat_map(|s| s.agents.values())
                                .filter(|a| a.online)
                                .count();
                            self.metrics.agents_online.set(online as i64);
                        }
                        self.engine.on_agent_status(
                            &site,
                            &agent,
                            status.state,
                            status.ts,
                            &mut self.scratch,
                        );
                    }
                }
            }
            Ok(Topic::Readings { site, agent }) => {
                self.handle_batch(topic, &site, &agent, payload, now)
                    .await?
            }
            Ok(Topic::WeatherCap) | Ok(Topic::WeatherCenc) => {
                let kind = if matches!(parsed, Ok(Topic::WeatherCap)) {
                    "cap"
                } else {
                    "cenc"
                };
                match self.handle_weather(kind, payload).await {
                    Ok((_, events)) => {
                        self.metrics
                            .processing_seconds
                            .observe(started.elapsed().as_secs_f64());
                        return Ok(events);
                    }
                    Err(CoreError::Refused(reason)) => {
                        self.refuse_message(topic, "bad_weather_document", &reason, payload)
                            .await
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Topic::Incidents { .. }) => {}
        }
        let events = self.apply_transitions().await?;
        self.metrics
            .processing_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(events)
    }

    async fn handle_batch(
        &mut self,
        topic: &str,
        site: &SiteId,
        agent: &AgentId,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<(), CoreError> {
        let batch = match decode_batch(payload, Some(agent), now, &self.limits) {
            Ok(b) => b,
            Err(e) => {
                self.refuse_message(topic, e.code(), &e.to_string(), payload)
                    .await;
                return Ok(());
            }
        };
        let key = (site.clone(), agent.clone(), batch.epoch.clone());
        self.load_epoch(&key, now).await;
        let window = &mut self
            .seqs
            .get_mut(&key)
            .expect("loaded by load_epoch")
            .window;
        let verdict = window.observe(batch.seq);
        let max_seq = window.max_seq();
        let window_body = serde_json::to_string(window).unwrap_or_default();
        match verdict {
            SeqVerdict::Duplicate | SeqVerdict::TooOld => {
                self.metrics.batches_duplicate.inc();
                let mut live = self.live.write().expect("live lock");
                live.site_mut(site)
                    .agents
                    .entry(agent.clone())
                    .or_default()
                    .duplicates += 1;
                return Ok(());
            }
            SeqVerdict::New { gap, filled_gap } => {
                self.metrics.seq_gaps.inc_by(gap);
                if filled_gap {
                    self.metrics.seq_gaps_filled.inc();
                }
                let mut live = self.live.write().expect("live lock");
                let a = live.site_mut(site).agents.entry(agent.clone()).or_default();
                a.gaps += gap;
                if a.epoch != batch.epoch {
                    a.arrivals.clear();
                }
                a.arrivals.record(now, batch.seq);
                a.completeness = a.arrivals.completeness(now);
                a.max_seq = max_seq;
                a.epoch = batch.epoch.clone();
                a.last_seen = Some(now);
                if let Some(newest) = batch.readings.iter().map(|r| r.ts).max() {
                    a.skew_ms = Some((now - newest).num_milliseconds());
                }
            }
        }
        // Every reading refused in this batch, for its one dead letter.
        let mut refused: Vec<RefusedItem> = batch
            .refused
            .iter()
            .map(|r| RefusedItem {
                index: r.index,
                point: r.point.clone(),
                code: r.error.code(),
                reason: r.error.to_string(),
                raw: r.raw.clone(),
            })
            .collect();
        let eval_started = Instant::now();
        let max_points = self.ingest.max_points_per_site;
        {
            let mut live = self.live.write().expect("live lock");
            let s = live.site_mut(site);
            for (index, reading) in batch.readings.iter().enumerate() {
                if !s.points.contains_key(&reading.point) && s.points.len() >= max_points {
                    self.metrics
                        .bounds_hit
                        .with_label_values(&["points_per_site"])
                        .inc();
                    refused.push(RefusedItem {
                        index,
                        point: Some(reading.point.to_string()),
                        code: "too_many_points",
                        reason: format!(
                            "site {site} has {max_points} points already (ingest.max_points_per_site)"
                        ),
                        raw: String::new(),
                    });
                    continue;
                }
                let entry = s
                    .points
                    .entry(reading.point.clone())
                    .or_insert_with(|| PointLive {
                        agent: agent.clone(),
                        spec: None,
                        value: None,
                        ts: None,
                        quality: None,
                        reason: None,
                    });
                if let Some(spec) = &entry.spec {
                    let ok = match (spec.quantity.value_kind(), &reading.value) {
                        (_, Value::Null) => true,
                        (ValueKind::Number, Value::Number(_)) => true,
                        (ValueKind::Bool, Value::Bool(_)) => true,
                        (ValueKind::Position, Value::Position(_)) => true,
                        _ => spec.quantity.as_str() == "flow" || !spec.quantity.is_known(),
                    };
                    if !ok {
                        refused.push(RefusedItem {
                            index,
                            point: Some(reading.point.to_string()),
                            code: "type_mismatch",
                            reason: format!(
                                "point {}: value does not fit quantity {}",
                                reading.point, spec.quantity
                            ),
                            raw: String::new(),
                        });
                        continue;
                    }
                } else {
                    self.metrics.readings_uncatalogued.inc();
                }
                if entry.ts.is_some_and(|t| reading.ts < t) {
                    self.metrics.readings_out_of_order.inc();
                } else {
                    entry.value = Some(reading.value);
                    entry.ts = Some(reading.ts);
                    entry.quality = Some(reading.quality);
                    entry.reason = reading.reason.clone();
                }
                entry.agent = agent.clone();
                self.metrics.readings_taken.inc();
                if let Some(ts) = &self.timeseries {
                    ts.record(
                        site,
                        agent,
                        reading,
                        entry.spec.as_ref(),
                        s.info.category.as_ref(),
                    ); // timeseries (issue 10)
                }
                self.engine
                    .on_reading(site, agent, reading, now, &mut self.scratch);
            }
        }
        self.metrics
            .rule_evaluation_seconds
            .observe(eval_started.elapsed().as_secs_f64());
        if !refused.is_empty() {
            tracing::warn!(%site, %agent, seq = batch.seq, refused = refused.len(), first = %refused[0].reason, "readings refused");
        }
        self.refuse_items(topic, &refused).await;
        // The batch's points reach the time-series journal before its seq is recorded and
        // the message acknowledged: a crash from here on loses none of them.
        if let Some(ts) = &self.timeseries {
            ts.sync();
        }
        match &mut self.deferred_windows {
            // In a group: saved at its commit, before any of its messages is acknowledged.
            Some(windows) => {
                windows.insert(
                    (site.clone(), agent.clone(), batch.epoch.clone()),
                    window_body,
                );
            }
            None => {
                let row = (
                    site.to_string(),
                    agent.to_string(),
                    batch.epoch.clone(),
                    window_body,
                );
                self.save_windows(vec![row], now).await;
            }
        }
        Ok(())
    }

    /// Make sure the seq window of an agent epoch is in memory: from the open group, the store
    /// (an epoch that left memory comes back with the seqs it had seen), or new. Keeps at
    /// most `max_epochs_per_agent` epochs of an agent in memory (the least recently used
    /// leaves; its window is in the store).
    async fn load_epoch(&mut self, key: &(SiteId, AgentId, String), now: Timestamp) {
        if let Some(e) = self.seqs.get_mut(key) {
            e.seen = now;
            return;
        }
        let pending = self
            .deferred_windows
            .as_ref()
            .and_then(|w| w.get(key).cloned());
        let stored = match pending {
            Some(body) => Some(body),
            None => durably!(
                self,
                "seq_window",
                self.store
                    .seq_window(key.0.as_str(), key.1.as_str(), &key.2)
            )
            .unwrap_or_default(),
        };
        let window = stored
            .and_then(|b| serde_json::from_str::<SeqWindow>(&b).ok())
            .unwrap_or_else(|| SeqWindow::new(self.ingest.seq_window));
        let mut of_agent: Vec<(Timestamp, String)> = self
            .seqs
            .iter()
            .filter(|((s, a, _), _)| *s == key.0 && *a == key.1)
            .map(|((_, _, e), v)| (v.seen, e.clone()))
            .collect();
        if of_agent.len() >= self.ingest.max_epochs_per_agent {
            of_agent.sort();
            let excess = of_agent.len() + 1 - self.ingest.max_epochs_per_agent;
            for (_, epoch) in of_agent.into_iter().take(excess) {
                self.metrics
                    .bounds_hit
                    .with_label_values(&["epochs_per_agent"])
                    .inc();
                self.seqs.remove(&(key.0.clone(), key.1.clone(), epoch));
            }
        }
        self.seqs
            .insert(key.clone(), EpochWindow { window, seen: now });
    }

    /// Epochs silent for `epoch_idle_days` leave memory (their windows stay in the store).
    fn evict_idle_epochs(&mut self, now: Timestamp) {
        let idle = chrono::Duration::days(i64::from(self.ingest.epoch_idle_days));
        let before = self.seqs.len();
        self.seqs.retain(|_, e| now - e.seen < idle);
        let evicted = before - self.seqs.len();
        if evicted > 0 {
            self.metrics
                .bounds_hit
                .with_label_values(&["epoch_idle"])
                .inc_by(evicted as u64);
        }
    }

    /// Save seq windows `(site, agent, epoch, body)`: in one transaction, and where the store
    /// refuses that for good, one by one, so that only the row it refuses is dead-lettered.
    async fn save_windows(&mut self, rows: Vec<(String, String, String, String)>, now: Timestamp) {
        let ms = now.timestamp_millis();
        if durably!(self, "seq_window", self.store.save_seq_windows(&rows, ms)).is_ok() {
            return;
        }
        for row in rows {
            let one = [row];
            if let Err(e) = durably!(self, "seq_window", self.store.save_seq_windows(&one, ms)) {
                let [(site, agent, epoch, body)] = one;
                let reason = format!(
                    "the store refused the seq window of agent {agent} epoch {epoch:?}: {e}; \
                     duplicates of this epoch are caught in memory until a restart"
                );
                let topic = format!("{}/sites/{site}/{agent}/readings", self.scheme.prefix());
                self.dead_letter(&topic, "store_refused", &reason, body.as_bytes())
                    .await;
            }
        }
    }

    /// Start a group of messages whose seq windows are saved together by
    /// [`Core::commit_group`]; none of the group's messages may be acknowledged before it.
    pub fn begin_group(&mut self) {
        self.deferred_windows.get_or_insert_with(Default::default);
    }

    /// Save the seq windows of the group in one transaction (retried while the store is away,
    /// like every store write) and end the group.
    pub async fn commit_group(&mut self) {
        let Some(windows) = self.deferred_windows.take() else {
            return;
        };
        if windows.is_empty() {
            return;
        }
        let rows: Vec<(String, String, String, String)> = windows
            .into_iter()
            .map(|((site, agent, epoch), body)| (site.to_string(), agent.to_string(), epoch, body))
            .collect();
        self.metrics.group_commit_batches.observe(rows.len() as f64);
        let now = self.now();
        self.save_windows(rows, now).await;
    }

    /// A message the core could not process (a defect): dead-lettered with the error.
    pub async fn refuse_unprocessed(&mut self, topic: &str, payload: &[u8], error: &str) {
        self.refuse_message(topic, "not_processed", error, payload)
            .await
    }

    /// Refuse a whole message: counted by its code, dead-lettered with its reason and its bytes
    /// (at most `ingest.dead_letter_raw_bytes` of them).
    async fn refuse_message(&mut self, topic: &str, code: &str, reason: &str, payload: &[u8]) {
        self.metrics
            .messages_refused
            .with_label_values(&[code])
            .inc();
        tracing::warn!(topic, code, reason, "message refused");
        let cap = self.ingest.dead_letter_raw_bytes;
        if payload.len() > cap {
            let reason = format!(
                "{reason} (payload of {} bytes; the first {cap} kept)",
                payload.len()
            );
            self.dead_letter(topic, code, &reason, &payload[..cap])
                .await
        } else {
            self.dead_letter(topic, code, reason, payload).await
        }
    }

    /// The readings (or catalogue points) of one message that were refused: each counted by
    /// its code, all in one dead letter that keeps every item's reason, so a batch of 20,000
    /// bad readings is one write, not 20,000.
    async fn refuse_items(&mut self, topic: &str, items: &[RefusedItem]) {
        let Some(first) = items.first() else {
            return;
        };
        for it in items {
            self.metrics
                .readings_refused
                .with_label_values(&[it.code])
                .inc();
        }
        let code = if items.iter().all(|i| i.code == first.code) {
            first.code
        } else {
            "readings_refused"
        };
        let reason = if items.len() == 1 {
            match &first.point {
                Some(p) => format!("item {} ({p}): {}", first.index, first.reason),
                None => format!("item {}: {}", first.index, first.reason),
            }
        } else {
            format!(
                "{} items refused; the first, item {}: {}",
                items.len(),
                first.index,
                first.reason
            )
        };
        let raw = serde_json::to_vec(&items).unwrap_or_default();
        self.dead_letter(topic, code, &reason, &raw).await
    }

    /// Write a dead letter. A transient store error is ridden out; a permanent one (which
    /// [`crate::store::storable`] text and raw bytes should never meet) is counted and logged,
    /// and the core goes on.
    async fn dead_letter(&mut self, topic: &str, code: &str, reason: &str, raw: &[u8]) {
        self.metrics.dead_letters.inc();
        let now = self.now();
        let capacity = self.ingest.dead_letter_capacity;
        let _ = durably!(
            self,
            "dead_letter",
            self.store
                .add_dead_letter(now, topic, code, reason, raw, capacity)
        );
    }

    /// Bounds of a birth: points beyond `max_points_per_site` for the site are refused.
    fn bound_catalogue(
        &mut self,
        site: &SiteId,
        catalogue: &mut telemetry::Catalogue,
        refused: &mut Vec<RefusedItem>,
    ) {
        let max = self.ingest.max_points_per_site;
        let live = self.live.read().expect("live lock");
        let known = live.sites.get(site);
        let mut count = known.map_or(0, |s| s.points.len());
        let mut kept = Vec::with_capacity(catalogue.points.len());
        for (index, p) in std::mem::take(&mut catalogue.points)
            .into_iter()
            .enumerate()
        {
            let is_new = !known.is_some_and(|s| s.points.contains_key(&p.point));
            if is_new && count >= max {
                self.metrics
                    .bounds_hit
                    .with_label_values(&["points_per_site"])
                    .inc();
                refused.push(RefusedItem {
                    index,
                    point: Some(p.point.to_string()),
                    code: "too_many_points",
                    reason: format!(
                        "site {site} has {max} points already (ingest.max_points_per_site)"
                    ),
                    raw: String::new(),
                });
                continue;
            }
            if is_new {
                count += 1;
            }
            kept.push(p);
        }
        catalogue.points = kept;
    }

    /// Bounds of sites and agents: `None` when the message may go on, else the refusal.
    fn admit(&self, site: &SiteId, agent: &AgentId) -> Option<(&'static str, String)> {
        let live = self.live.read().expect("live lock");
        match live.sites.get(site) {
            None if live.sites.len() >= self.ingest.max_sites => Some((
                "too_many_sites",
                format!(
                    "the gateway keeps {} sites already (ingest.max_sites)",
                    self.ingest.max_sites
                ),
            )),
            Some(s)
                if !s.agents.contains_key(agent)
                    && s.agents.len() >= self.ingest.max_agents_per_site =>
            {
                Some((
                    "too_many_agents",
                    format!(
                        "site {site} has {} agents already (ingest.max_agents_per_site)",
                        self.ingest.max_agents_per_site
                    ),
                ))
            }
            _ => None,
        }
    }

    /// Timers on the gateway clock: the engine's (missing data, durations) and shelving expiry.
    pub async fn tick(&mut self) -> Result<Vec<IncidentEvent>, CoreError> {
        self.scratch.clear();
        let now = self.now();
        self.engine.tick(now, &mut self.scratch);
        self.evict_idle_epochs(now);
        let change = self.book.advance(now);
        let touched = self.on_warning_change(&change, now);
        let mut events = self.apply_transitions().await?;
        events.extend(self.restate_warnings(&touched, now).await?);
        self.update_load_gauges();
        let ended: Vec<(SiteId, telemetry::PointId)> = self
            .live
            .read()
            .expect("live lock")
            .out_of_service
            .values()
            .filter(|o| o.until <= now)
            .map(|o| (o.site.clone(), o.point.clone()))
            .collect();
        for (site, point) in ended {
            self.set_out_of_service(site, point, String::new(), String::new(), None)
                .await?;
        }
        // In cause order: nothing the gateway sends depends on the order of a hash map.
        let mut expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, r)| r.incident.shelved_until.is_some_and(|u| u <= now))
            .map(|(k, _)| k.clone())
            .collect();
        expired.sort();
        for key in expired {
            if let Some(mut rec) = self.open.remove(&key) {
                if let Some(ev) = lifecycle::unshelve(&mut rec, None, now) {
                    events.push(self.persist(&key, &mut rec, ev).await?);
                }
                self.open.insert(key, rec);
            }
        }
        Ok(events)
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        let shelving = self
            .open
            .values()
            .filter_map(|r| r.incident.shelved_until)
            .min();
        [
            self.engine.next_deadline(),
            shelving,
            self.book.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn apply_transitions(&mut self) -> Result<Vec<IncidentEvent>, CoreError> {
        let transitions = std::mem::take(&mut self.scratch);
        let mut out = Vec::new();
        for t in &transitions {
            let key = cause_key(&t.cause);
            let open = self.open.remove(&key);
            let previous = if open.is_none() {
                self.last_incident.get(&key).cloned()
            } else {
                None
            };
            let Some((rec, ev)) = lifecycle::apply_transition(open.clone(), t, previous) else {
                if let Some(rec) = open {
                    self.open.insert(key, rec);
                }
                continue;
            };
            let mut rec = rec;
            let raised_new = ev.event == telemetry::EventKind::Raised;
            if raised_new {
                self.recent_raises
                    .push_back((self.clock.now(), key.clone()));
            }
            let mut stored = self.persist(&key, &mut rec, ev).await?;
            if raised_new {
                // A point out of service for maintenance: its incident is shelved until the
                // maintenance ends, and says so. A critical incident is never hidden.
                let oos = rec.incident.point.as_ref().and_then(|p| {
                    self.live
                        .read()
                        .expect("live lock")
                        .out_of_service
                        .get(&(rec.incident.site.clone(), p.clone()))
                        .cloned()
                });
                if let Some(o) = oos {
                    if rec.incident.severity < telemetry::Severity::Critical {
                        let reason = format!("point out of service: {}", o.reason);
                        if let Ok(ev) = lifecycle::shelve(
                            &mut rec,
                            &o.by,
                            &reason,
                            o.until,
                            t.at.min(o.until - chrono::Duration::milliseconds(1)),
                        ) {
                            stored = self.persist(&key, &mut rec, ev).await?;
                        }
                    } else {
                        self.metrics.critical_on_out_of_service.inc();
                        tracing::warn!(incident = %rec.incident.id, point = ?rec.incident.point, "critical incident on a point out of service: not shelved");
                    }
                }
            }
            if rec.incident.state.is_standing() {
                self.open_ids.insert(rec.incident.id.clone(), key.clone());
                self.last_incident
                    .insert(key.clone(), rec.incident.id.clone());
                self.open.insert(key, rec);
            } else {
                self.open_ids.remove(&rec.incident.id);
            }
            out.push(stored);
        }
        self.scratch = transitions;
        self.scratch.clear();
        self.update_open_gauge();
        Ok(out)
    }

    async fn persist(
        &mut self,
        key: &str,
        rec: &mut IncidentRecord,
        mut ev: IncidentEvent,
    ) -> Result<IncidentEvent, CoreError> {
        let started = Instant::now();
        let mut pos = durably!(self, "incident", self.store.write_change(key, rec, &ev));
        if let Err(e) = &pos {
            // An incident is never dropped: what the store refuses is made storable.
            if e.is_unique_violation() {
                // Its event id is taken (a store restored from elsewhere, a replay into a
                // used store): the event takes the next free seq of its incident.
                if let Ok(max) =
                    durably!(self, "incident", self.store.max_event_seq(&rec.incident.id))
                {
                    rec.last_event_seq = rec.last_event_seq.max(max);
                    rec.last_event_seq += 1;
                    ev.event_seq = rec.last_event_seq;
                    ev.event_id = format!("{}-{}", rec.incident.id, ev.event_seq);
                    tracing::warn!(incident = %rec.incident.id, event_id = %ev.event_id, "event id was taken in the store; the event takes the next seq");
                }
            }
            sanitize_incident(&mut rec.incident);
            sanitize_incident(&mut ev.incident);
            pos = durably!(self, "incident", self.store.write_change(key, rec, &ev));
        }
        let pos = match pos {
            Ok(pos) => Some(pos),
            Err(e) => {
                // Still refused: it stands in memory and goes to live subscribers, and the log
                // says so loudly; judging goes on.
                tracing::error!(incident = %rec.incident.id, error = %e, "incident event not stored; it is held in memory only");
                None
            }
        };
        self.metrics
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .incident_events
            .with_label_values(&[ev.event.as_str()])
            .inc();
        tracing::info!(incident = %rec.incident.id, event = ev.event.as_str(), site = %rec.incident.site,
            rule = %rec.incident.rule, severity = %rec.incident.severity, "{}", rec.incident.message);
        if let Some(pos) = pos {
            let _ = self.events.send((pos, ev.clone()));
            self.event_written.notify_one();
        }
        Ok(ev)
    }

    /// Alarm-load figures (IEC 62682) in the metrics: raises of the last hour, chattering
    /// causes (raised 3 times or more within it), shelved standing incidents.
    fn update_load_gauges(&mut self) {
        let hour_ago = self.now() - chrono::Duration::hours(1);
        while self
            .recent_raises
            .front()
            .is_some_and(|(t, _)| *t < hour_ago)
        {
            self.recent_raises.pop_front();
        }
        let mut per_cause: HashMap<&str, u32> = HashMap::new();
        for (_, k) in &self.recent_raises {
            *per_cause.entry(k.as_str()).or_default() += 1;
        }
        self.metrics
            .incidents_raised_last_hour
            .set(self.recent_raises.len() as i64);
        self.metrics
            .chattering_causes
            .set(per_cause.values().filter(|n| **n >= 3).count() as i64);
        let now = self.now();
        self.metrics.incidents_shelved.set(
            self.open
                .values()
                .filter(|r| r.incident.shelved_until.is_some_and(|u| u > now))
                .count() as i64,
        );
    }

    fn update_open_gauge(&self) {
        for sev in telemetry::Severity::ALL {
            let n = self
                .open
                .values()
                .filter(|r| r.incident.severity == sev)
                .count();
            self.metrics
                .incidents_open
                .with_label_values(&[sev.as_str()])
                .set(n as i64);
        }
    }

    /// An operator's action. `Ok(None)`: nothing changed (a repeated acknowledgement).
    pub async fn act(
        &mut self,
        id: &str,
        action: Action,
    ) -> Result<(telemetry::Incident, Option<IncidentEvent>), CoreError> {
        let now = self.now();
        let (key, mut rec, standing) = match self.open_ids.get(id).cloned() {
            Some(key) => {
                let rec = self
                    .open
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                (key, rec, true)
            }
            None => {
                let rec = self
                    .store
                    .incident(id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                let key = self
                    .store
                    .cause_of(id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(id.to_string()))?;
                (key, rec, false)
            }
        };
        let ev = match action {
            Action::Ack { operator, note } => {
                lifecycle::acknowledge(&mut rec, &operator, note.as_deref(), now)?
            }
            Action::Close { operator, note } => {
                Some(lifecycle::close(&mut rec, &operator, note.as_deref(), now)?)
            }
            Action::Comment { operator, text } => {
                Some(lifecycle::comment(&mut rec, &operator, &text, now)?)
            }
            Action::Assign { operator, assignee } => {
                Some(lifecycle::assign(&mut rec, &operator, &assignee, now)?)
            }
            Action::Shelve {
                operator,
                reason,
                until,
            } => Some(lifecycle::shelve(&mut rec, &operator, &reason, until, now)?),
            Action::Unshelve { operator } => lifecycle::unshelve(&mut rec, Some(&operator), now),
            Action::Notified { tier } => lifecycle::notified(&mut rec, &tier, now), // forwarding (issue 9)
        };
        let Some(ev) = ev else {
            return Ok((rec.incident, None));
        };
        let ev = self.persist(&key, &mut rec, ev).await?;
        if standing {
            self.open.insert(key, rec.clone());
        }
        Ok((rec.incident, Some(ev)))
    }

    /// Take a point out of service until a time (or back into service: `until` None).
    pub async fn set_out_of_service(
        &mut self,
        site: SiteId,
        point: telemetry::PointId,
        by: String,
        reason: String,
        until: Option<Timestamp>,
    ) -> Result<Option<crate::core::live::OutOfService>, CoreError> {
        let now = self.now();
        let entry = match until {
            Some(until) => {
                if until <= now {
                    return Err(
                        ActionError::Invalid("`until` must lie in the future".into()).into(),
                    );
                }
                if reason.trim().is_empty() || by.trim().is_empty() {
                    return Err(
                        ActionError::Invalid("operator and reason are required".into()).into(),
                    );
                }
                Some(crate::core::live::OutOfService {
                    site: site.clone(),
                    point: point.clone(),
                    by,
                    reason,
                    since: now,
                    until,
                })
            }
            None => None,
        };
        let body = entry
            .as_ref()
            .map(|e| serde_json::to_string(e).unwrap_or_default());
        durably!(
            self,
            "out_of_service",
            self.store
                .set_out_of_service(site.as_str(), point.as_str(), body.as_deref())
        )?;
        let mut live = self.live.write().expect("live lock");
        match &entry {
            Some(e) => {
                tracing::info!(%site, %point, until = %telemetry::format_time(&e.until), reason = %e.reason, by = %e.by, "point out of service");
                live.out_of_service.insert((site, point), e.clone());
            }
            None => {
                tracing::info!(%site, %point, "point back in service");
                live.out_of_service.remove(&(site, point));
            }
        }
        Ok(entry)
    }

    /// Swap the rule set; open causes of changed rules are re-judged.
    pub async fn reload_rules(
        &mut self,
        rules: alarm_rules::RuleSet,
    ) -> Result<Vec<IncidentEvent>, CoreError> {
        self.scratch.clear();
        let now = self.now();
        self.engine.reload(rules, now, &mut self.scratch);
        self.apply_transitions().await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    async fn core_on(url: &str) -> Core {
        core_with_clock(
            url,
            ManualClock::new(telemetry::parse_time("2026-11-28T10:00:00Z").unwrap()),
        )
        .await
    }

    async fn core_with_clock(url: &str, clock: ManualClock) -> Core {
        let rules = alarm_rules::RuleSet::builtin();
        Core::start(
            Engine::new(rules, alarm_rules::EngineConfig::default()),
            Store::open(url).await.unwrap(),
            Arc::new(clock),
            TopicScheme::new("hrs/v1"),
            IngestConfig::default(),
            Vec::new(),
            weather::WeatherConfig::default(),
            Metrics::new(),
        )
        .await
        .unwrap()
    }

    fn batch(agent: &str, seq: u64) -> (String, Vec<u8>) {
        (
            format!("hrs/v1/sites/mine-01/{agent}/readings"),
            serde_json::json!({"agent": agent, "epoch": "e1", "seq": seq, "readings": [
                {"point": format!("CH4-{agent}"), "ts": "2026-11-28T09:59:59Z", "value": 0.3}]})
            .to_string()
            .into_bytes(),
        )
    }

    /// A group's seq windows reach the store together at its commit (one row per agent
    /// epoch, the latest), not before; a duplicate inside the group is caught in memory, and
    /// a redelivery after a restart by the stored windows.
    #[tokio::test]
    async fn a_group_saves_its_seq_windows_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gw.db").display());
        let mut core = core_on(&url).await;
        core.begin_group();
        for (agent, seq) in [("edge-a", 1), ("edge-a", 2), ("edge-b", 1), ("edge-a", 2)] {
            let (topic, payload) = batch(agent, seq);
            core.handle_message(&topic, &payload).await.unwrap();
        }
        assert_eq!(
            core.metrics.batches_duplicate.get(),
            1,
            "caught inside the group"
        );
        assert!(
            core.store.seq_windows().await.unwrap().is_empty(),
            "nothing saved before the commit"
        );
        core.commit_group().await;
        let mut saved: Vec<(String, String)> = core
            .store
            .seq_windows()
            .await
            .unwrap()
            .into_iter()
            .map(|(_, agent, epoch, _)| (agent, epoch))
            .collect();
        saved.sort();
        assert_eq!(
            saved,
            [
                ("edge-a".into(), "e1".into()),
                ("edge-b".into(), "e1".into())
            ]
        );
        assert_eq!(core.metrics.group_commit_batches.get_sample_count(), 1);
        drop(core);

        // Restarted: the broker sends the last batch again; it is known.
        let mut core = core_on(&url).await;
        let (topic, payload) = batch("edge-a", 2);
        core.handle_message(&topic, &payload).await.unwrap();
        assert_eq!(core.metrics.batches_duplicate.get(), 1);
        let (topic, payload) = batch("edge-a", 3);
        core.handle_message(&topic, &payload).await.unwrap();
        assert_eq!(core.metrics.batches_duplicate.get(), 1, "seq 3 is new");
    }

    /// An epoch silent for `epoch_idle_days` leaves memory on the gateway clock; when it
    /// speaks again its window comes back from the store, so what it sent before is still a
    /// duplicate.
    #[tokio::test]
    async fn an_idle_epoch_leaves_memory_and_comes_back_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gw.db").display());
        let t0 = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
        let clock = ManualClock::new(t0);
        let mut core = core_with_clock(&url, clock.clone()).await;
        for seq in [1, 2] {
            let (topic, payload) = batch("edge-a", seq);
            core.handle_message(&topic, &payload).await.unwrap();
        }
        assert_eq!(core.seqs.len(), 1);
        clock.set(t0 + chrono::Duration::days(6));
        core.tick().await.unwrap();
        assert_eq!(core.seqs.len(), 1, "six days: still in memory");
        clock.set(t0 + chrono::Duration::days(8));
        core.tick().await.unwrap();
        assert!(core.seqs.is_empty(), "eight days: out of memory");
        assert_eq!(
            core.metrics
                .bounds_hit
                .with_label_values(&["epoch_idle"])
                .get(),
            1
        );
        let (topic, payload) = batch("edge-a", 2);
        core.handle_message(&topic, &payload).await.unwrap();
        assert_eq!(
            core.metrics.batches_duplicate.get(),
            1,
            "seq 2 is known from the store"
        );
    }
}
