//! The core: the single writer of the gateway's state. Every inbound message, operator action
//! and timer tick passes through it in order; it judges, keeps incidents, persists them and
//! announces their events. Deterministic given its inputs and its clock.

use crate::clock::SharedClock;
use crate::config::IngestConfig;
use crate::incident::{self, cause_key, cause_of, ActionError, IncidentRecord};
use crate::live::{Live, PointLive};
use crate::metrics::Metrics;
use crate::seq::{SeqVerdict, SeqWindow};
use crate::store::{Store, StoreError};
use alarm_rules::{Engine, SiteContext, Transition};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use telemetry::catalogue::ValueKind;
use telemetry::{
    decode_batch, decode_catalogue, decode_status, AgentId, AgentState, DecodeLimits,
    IncidentEvent, SiteId, SiteInfo, Timestamp, Topic, TopicScheme, Value,
};
use tokio::sync::{broadcast, Notify};

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

/// Run a store operation until it succeeds: a store outage is ridden out, not turned into lost
/// incidents (the caller has not acknowledged its message yet, `/readyz` says 503 meanwhile).
macro_rules! durably {
    ($self:ident, $op:expr) => {{
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match $op.await {
                Ok(v) => {
                    $self.store_ok.store(true, std::sync::atomic::Ordering::Relaxed);
                    break v;
                }
                Err(e) => {
                    $self.store_ok.store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "store write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }};
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
    seqs: HashMap<(SiteId, AgentId, String), SeqWindow>,
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
        registry: Vec<crate::config::SiteRegistryEntry>,
        weather: weather::WeatherConfig,
        metrics: Metrics,
    ) -> Result<Core, CoreError> {
        let limits = DecodeLimits {
            max_future: chrono::Duration::milliseconds(ingest.max_future_ms as i64),
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
        for (site, agent, epoch, body) in self.store.seq_windows().await? {
            let (Ok(site), Ok(agent), Ok(w)) = (
                SiteId::new(site),
                AgentId::new(agent),
                serde_json::from_str::<SeqWindow>(&body),
            ) else {
                continue;
            };
            self.seqs.insert((site, agent, epoch), w);
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
            if let Ok(o) = serde_json::from_str::<crate::live::OutOfService>(&body) {
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
            let _ = self.apply_weather(&kind, body.as_bytes(), now);
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
        let text = String::from_utf8_lossy(body).into_owned();
        durably!(self, self.store.add_weather_doc(kind, now, &text, keep_ms));
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
            let event = shaping.and_then(|w| incident::restate_warnings(&mut rec, w, now));
            if let Some(ev) = event {
                out.push(self.persist(&key, &rec, ev).await?);
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
                    .await?;
            }
            Ok(Topic::Birth { site, agent }) => {
                match decode_catalogue(payload, Some(&agent), &self.limits) {
                    Err(e) => {
                        self.refuse_message(topic, e.code(), &e.to_string(), payload)
                            .await?
                    }
                    Ok(decoded) => {
                        for (i, reason) in &decoded.refused {
                            self.metrics
                                .readings_refused
                                .with_label_values(&["bad_point_spec"])
                                .inc();
                            self.dead_letter(
                                topic,
                                "bad_point_spec",
                                &format!("point {i}: {reason}"),
                                "",
                            )
                            .await?;
                        }
                        for p in &decoded.catalogue.points {
                            if !p.unit.is_known() || !p.quantity.is_known() {
                                tracing::info!(%site, point = %p.point, unit = %p.unit, quantity = %p.quantity, "unit or quantity not known; kept as given");
                            }
                        }
                        let body = serde_json::to_string(&decoded.catalogue).unwrap_or_default();
                        durably!(
                            self,
                            self.store
                                .save_catalogue(site.as_str(), agent.as_str(), &body)
                        );
                        self.bind_catalogue(&site, &decoded.catalogue);
                    }
                }
            }
            Ok(Topic::Status { site, agent }) => {
                match decode_status(payload, Some(&agent), &self.limits) {
                    Err(e) => {
                        self.refuse_message(topic, e.code(), &e.to_string(), payload)
                            .await?
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
                            .await?
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
                return self
                    .refuse_message(topic, e.code(), &e.to_string(), payload)
                    .await
            }
        };
        let key = (site.clone(), agent.clone(), batch.epoch.clone());
        let window = self
            .seqs
            .entry(key)
            .or_insert_with(|| SeqWindow::new(self.ingest.seq_window));
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
        for r in &batch.refused {
            self.metrics
                .readings_refused
                .with_label_values(&[r.error.code()])
                .inc();
            let reason = format!(
                "reading {} ({}): {}",
                r.index,
                r.point.as_deref().unwrap_or("?"),
                r.error
            );
            tracing::warn!(%site, %agent, seq = batch.seq, %reason, "reading refused");
            self.dead_letter(topic, r.error.code(), &reason, &r.raw)
                .await?;
        }
        let eval_started = Instant::now();
        let mut mismatched = Vec::new();
        {
            let mut live = self.live.write().expect("live lock");
            let s = live.site_mut(site);
            for reading in &batch.readings {
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
                        mismatched.push((reading.point.to_string(), spec.quantity.to_string()));
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
        for (point, quantity) in mismatched {
            self.metrics
                .readings_refused
                .with_label_values(&["type_mismatch"])
                .inc();
            let reason = format!("point {point}: value does not fit quantity {quantity}");
            self.dead_letter(topic, "type_mismatch", &reason, "")
                .await?;
        }
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
            None => durably!(
                self,
                self.store.save_seq_window(
                    site.as_str(),
                    agent.as_str(),
                    &batch.epoch,
                    &window_body
                )
            ),
        }
        Ok(())
    }

    /// Start a group of messages whose seq windows are saved together by
    /// [`Core::commit_group`]; none of the group's messages may be acknowledged before it.
    pub fn begin_group(&mut self) {
        self.deferred_windows.get_or_insert_with(Default::default);
    }

    /// Save the seq windows of the group in one transaction (retried until the store takes
    /// them, like every store write) and end the group.
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
        durably!(self, self.store.save_seq_windows(&rows));
    }

    async fn refuse_message(
        &mut self,
        topic: &str,
        code: &str,
        reason: &str,
        payload: &[u8],
    ) -> Result<(), CoreError> {
        self.metrics
            .messages_refused
            .with_label_values(&[code])
            .inc();
        tracing::warn!(topic, code, reason, "message refused");
        let raw = String::from_utf8_lossy(&payload[..payload.len().min(1024)]).into_owned();
        self.dead_letter(topic, code, reason, &raw).await
    }

    async fn dead_letter(
        &mut self,
        topic: &str,
        code: &str,
        reason: &str,
        raw: &str,
    ) -> Result<(), CoreError> {
        self.metrics.dead_letters.inc();
        let now = self.now();
        let capacity = self.ingest.dead_letter_capacity;
        durably!(
            self,
            self.store
                .add_dead_letter(now, topic, code, reason, raw, capacity)
        );
        Ok(())
    }

    /// Timers on the gateway clock: the engine's (missing data, durations) and shelving expiry.
    pub async fn tick(&mut self) -> Result<Vec<IncidentEvent>, CoreError> {
        self.scratch.clear();
        let now = self.now();
        self.engine.tick(now, &mut self.scratch);
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
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, r)| r.incident.shelved_until.is_some_and(|u| u <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(mut rec) = self.open.remove(&key) {
                if let Some(ev) = incident::unshelve(&mut rec, None, now) {
                    events.push(self.persist(&key, &rec, ev).await?);
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
            let Some((rec, ev)) = incident::apply_transition(open.clone(), t, previous) else {
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
            let mut stored = self.persist(&key, &rec, ev).await?;
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
                        if let Ok(ev) = incident::shelve(
                            &mut rec,
                            &o.by,
                            &reason,
                            o.until,
                            t.at.min(o.until - chrono::Duration::milliseconds(1)),
                        ) {
                            stored = self.persist(&key, &rec, ev).await?;
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
        rec: &IncidentRecord,
        ev: IncidentEvent,
    ) -> Result<IncidentEvent, CoreError> {
        let started = Instant::now();
        let pos = durably!(self, self.store.write_change(key, rec, &ev));
        self.metrics
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .incident_events
            .with_label_values(&[ev.event.as_str()])
            .inc();
        tracing::info!(incident = %rec.incident.id, event = ev.event.as_str(), site = %rec.incident.site,
            rule = %rec.incident.rule, severity = %rec.incident.severity, "{}", rec.incident.message);
        let _ = self.events.send((pos, ev.clone()));
        self.event_written.notify_one();
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
                incident::acknowledge(&mut rec, &operator, note.as_deref(), now)?
            }
            Action::Close { operator, note } => {
                Some(incident::close(&mut rec, &operator, note.as_deref(), now)?)
            }
            Action::Comment { operator, text } => {
                Some(incident::comment(&mut rec, &operator, &text, now)?)
            }
            Action::Assign { operator, assignee } => {
                Some(incident::assign(&mut rec, &operator, &assignee, now)?)
            }
            Action::Shelve {
                operator,
                reason,
                until,
            } => Some(incident::shelve(&mut rec, &operator, &reason, until, now)?),
            Action::Unshelve { operator } => incident::unshelve(&mut rec, Some(&operator), now),
            Action::Notified { tier } => incident::notified(&mut rec, &tier, now), // forwarding (issue 9)
        };
        let Some(ev) = ev else {
            return Ok((rec.incident, None));
        };
        let ev = self.persist(&key, &rec, ev).await?;
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
    ) -> Result<Option<crate::live::OutOfService>, CoreError> {
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
                Some(crate::live::OutOfService {
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
            self.store
                .set_out_of_service(site.as_str(), point.as_str(), body.as_deref())
        );
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
        let clock = ManualClock::new(telemetry::parse_time("2026-11-28T10:00:00Z").unwrap());
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
}
