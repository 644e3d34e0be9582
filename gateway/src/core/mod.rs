//! The core: the single writer of the gateway's state. Every inbound message, operator action
//! and timer tick passes through it in order; it judges, keeps incidents, persists them and
//! announces their events. Deterministic given its inputs and its clock.

use crate::clock::SharedClock;
use crate::core::live::Live;
use crate::core::seq::SeqWindow;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use alarm_rules::{Engine, SiteContext, Transition};
use config::IngestConfig;
use lifecycle::{cause_of, ActionError, IncidentRecord};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use telemetry::{AgentId, DecodeLimits, IncidentEvent, SiteId, SiteInfo, Timestamp, TopicScheme};
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

/// Run a store operation until the store gives its answer. A transient error (the store is
/// away, busy or restarting) is retried with backoff: the caller has not acknowledged its
/// message yet and `/readyz` says 503 meanwhile, so an outage is ridden out, never turned into
/// lost incidents. A permanent error (the store refuses this row for good) is returned at
/// once, counted under `$what`, for the caller to dead-letter or make storable: it must never
/// stop the core.
macro_rules! durably {
    ($self:ident, $what:expr, $op:expr) => {{
        let mut backoff = retry::Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        );
        loop {
            match $op.await {
                Ok(v) => {
                    $self.store_ok.store(true, std::sync::atomic::Ordering::Relaxed);
                    break Ok(v);
                }
                Err(e) if e.is_transient() => {
                    $self.store_ok.store(false, std::sync::atomic::Ordering::Relaxed);
                    $self.metrics.store_errors.with_label_values(&["transient"]).inc();
                    let delay = backoff.next_delay();
                    tracing::error!(error = %e, what = $what, retry_in_ms = delay.as_millis() as u64, "store write failed; retrying");
                    tokio::time::sleep(delay).await;
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

mod accumulated;
mod alarm_load;
pub mod config;
mod dispatch;
pub mod handle;
mod incidents;
pub mod intervals;
pub mod lifecycle;
pub mod live;
mod liveness;
mod maintenance;
mod ops_gauges;
mod readings;
mod refusals;
pub mod run;
pub mod seq;
pub mod supervision;
mod timers;
pub mod trend;
mod warnings;

pub use liveness::Liveness;
use readings::EpochWindow;

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
    /// The language incident messages are written in.
    language: presentation::Language,
    /// Times to acknowledge and to close (督办).
    supervision: supervision::SupervisionConfig,
    /// When standing incidents are next checked against those times.
    next_supervision: Option<Timestamp>,
    /// Per site and interval: watched, online, batches (the regulator's figures).
    intervals: intervals::IntervalRecorder,
}

impl Core {
    pub async fn start(
        engine: Engine,
        store: Store,
        clock: SharedClock,
        scheme: TopicScheme,
        settings: config::CoreSettings,
        metrics: Metrics,
    ) -> Result<Core, CoreError> {
        let config::CoreSettings {
            ingest,
            registry,
            weather,
            language,
            supervision,
        } = settings;
        let limits = DecodeLimits {
            max_future: chrono::Duration::milliseconds(ingest.max_future_ms as i64),
            max_text_chars: ingest.max_catalogue_text_chars,
            max_tags: ingest.max_tags_per_point,
            ..DecodeLimits::default()
        };
        let (events, _) = broadcast::channel(4096);
        let intervals = intervals::IntervalRecorder::new(ingest.figures_interval_ms);
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
            language,
            supervision,
            next_supervision: None,
            intervals,
        };
        core.recover().await?;
        Ok(core)
    }

    /// Restore what a previous run left: registry sites, accumulated rule state, catalogues,
    /// seq windows, standing incidents (so a standing condition is not raised twice and its clear is not lost).
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
            self.engine.set_site(&site, SiteContext::from(&info));
        }
        // Before the catalogues bind the rules: the bindings take their saved state up.
        self.restore_accumulated().await?;
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
            .map(|s| SiteContext::from(&s.info))
            .unwrap_or_default()
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

    /// The levels the site's points are judged against now (see [`Engine::site_levels`]).
    pub fn site_levels(&self, site: &telemetry::SiteId) -> crate::core::handle::SiteLevels {
        self.engine.site_levels(site)
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
            config::CoreSettings {
                language: presentation::Language::En,
                ..Default::default()
            },
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
