//! The running gateway: the core task, the MQTT connection (ingest with acknowledgements after
//! processing, and the incident-event publisher), the timer and the HTTP server.

use crate::api::{self, AppState};
use crate::app::rules::load_rules;
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::core::handle::CoreHandle;
use crate::core::Core;
use crate::ingest::mqtt::run_mqtt_ingest;
use crate::metrics::Metrics;
use crate::outbox::sinks::mqtt_incidents::run_event_publisher;
use crate::store::Store;
use anyhow::Context;
use rumqttc::AsyncClient;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use telemetry::TopicScheme;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use crate::supervise::{may_end, must_run, Tasks};

/// A handle to the running gateway.
pub struct Gateway {
    pub http_addr: std::net::SocketAddr,
    /// The core's queue (operator actions, rule reload).
    pub core: crate::core::handle::CoreHandle,
    pub shutdown: CancellationToken,
    pub tasks: Tasks,
    /// The API's certificate when it speaks HTTPS (read again on reload).
    pub api_certificate: Option<Arc<crate::api::tls::ApiCertificate>>,
    pub metrics: Metrics,
    /// The data directory's lock, held while the gateway runs (none in tests without one).
    pub data_dir_lock: Option<crate::app::data_lock::DataDirLock>,
}

impl Gateway {
    /// SIGHUP: read the rules and the API's certificate again, each on its own: when one
    /// fails, the other still takes effect; a failure is logged and counted
    /// (`hrs_reloads_total{what,outcome="refused"}`) and the old one stays in force.
    /// `Err` only when the gateway is stopping.
    pub async fn reload(&self) -> Result<(), crate::core::handle::AskError> {
        if let Some(cert) = &self.api_certificate {
            let outcome = match cert.reload() {
                Ok(()) => {
                    tracing::info!("API certificate reloaded");
                    "done"
                }
                Err(e) => {
                    tracing::error!(error = %e, "API certificate reload refused; the old one stays in force");
                    "refused"
                }
            };
            self.metrics
                .reloads
                .with_label_values(&["tls", outcome])
                .inc();
        }
        // The core logs and counts the outcome: reloaded, or refused with the reason.
        self.core.reload().await.map(|_| ())
    }

    /// Wait until a task that must run ends or fails (never returns while all is well): the
    /// clear reason to stop the process.
    pub async fn failed_task(&mut self) -> String {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(None)) => continue,
                Some(Ok(Some(name))) => return format!("the {name} task ended"),
                Some(Err(e)) => return format!("a gateway task failed: {e}"),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// Start the gateway; returns once the HTTP server listens.
pub async fn start(config: GatewayConfig, clock: SharedClock) -> anyhow::Result<Gateway> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    // Before anything in the directory is opened: one gateway per data_dir.
    let data_dir_lock = crate::app::data_lock::DataDirLock::acquire(&config.data_dir)?;
    let store = Store::open(&config.store_url())
        .await
        .with_context(|| format!("opening store {}", redact(&config.store_url())))?;
    let rules = load_rules(&config)?;
    tracing::info!(rules = rules.len(), "rules loaded");
    let metrics = Metrics::new();
    let engine = alarm_rules::Engine::new(
        rules,
        alarm_rules::EngineConfig {
            late_after: chrono::Duration::milliseconds(config.ingest.late_after_ms as i64),
            // A key of its own per process for the engine's maps of ids from the network.
            hash_seed: rand::random(),
            ..Default::default()
        },
    );
    let scheme = TopicScheme::new(config.mqtt.topic_prefix.clone());
    let core = Core::start(
        engine,
        store.clone(),
        clock.clone(),
        scheme.clone(),
        crate::core::config::CoreSettings {
            ingest: config.ingest.clone(),
            registry: config.sites.clone(),
            weather: config.weather.clone(),
            language: config.presentation.language,
            supervision: config.supervision.clone(),
        },
        metrics.clone(),
    )
    .await
    .context("recovering state from the store")?;

    let shutdown = CancellationToken::new();
    let mut tasks = Tasks::new();
    // timeseries (issue 10): the writer task, and the core's handle to it (none without a URL).
    let mut core = core;
    if let Some((handle, writer)) = crate::timeseries::TimeSeriesWriter::from_config(
        &config.timeseries,
        &config.data_dir,
        &metrics.registry,
    )? {
        core.set_timeseries(handle);
        tasks.spawn(must_run("time-series writer", writer.run(shutdown.clone())));
    }
    let broker = config.mqtt.broker()?;
    let mut opts = config.mqtt.options(&broker, config.mqtt.client_id.clone());
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(config.mqtt.keep_alive_s.max(5)))
        .set_inflight(config.mqtt.inflight)
        .set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let mqtt_connected = Arc::new(AtomicBool::new(false));
    // The core's inbox is part of what is received and not yet judged: at most
    // `ingest.max_pending_messages` of it, and room for the broker's in-flight window.
    let inbox = (config.mqtt.inflight as usize + 64).min(config.ingest.max_pending_messages.max(1));
    let (core_handle, cmd_rx) = CoreHandle::channel(inbox);
    let core_alive = Arc::new(crate::core::Liveness::default());
    core_alive.mark();

    let live = core.live.clone();
    let events_tx = core.events_sender();
    let store_ok = core.store_ok.clone();
    let event_written = core.event_written.clone();

    tasks.spawn(must_run(
        "MQTT ingest",
        run_mqtt_ingest(
            eventloop,
            config.mqtt.clone(),
            config.ingest.max_pending_messages,
            client.clone(),
            core_handle.clone(),
            mqtt_connected.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("mqtt", role = "ingest", broker = %config.mqtt.url)),
    ));
    let rules_config = config.clone();
    tasks.spawn(must_run(
        "core",
        crate::core::run::run_core(
            core,
            cmd_rx,
            client.clone(),
            usize::from(config.mqtt.inflight),
            Box::new(move || load_rules(&rules_config)),
            core_alive.clone(),
            shutdown.clone(),
        ),
    ));
    // Incident events go out on a connection of their own: the ingest connection's request
    // queue then only carries acknowledgements (at most `inflight`), so the ingest event loop,
    // waiting on a busy core, can never hold up an acknowledgement the core waits to send.
    // A persistent session: what the broker did not acknowledge is sent again on a resumed
    // session, and the publisher's cursor moves only on PUBACKs.
    let mut pub_opts = config
        .mqtt
        .options(&broker, format!("{}-pub", config.mqtt.client_id));
    pub_opts
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(config.mqtt.keep_alive_s.max(5)))
        .set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    let (pub_client, pub_loop) =
        AsyncClient::new(pub_opts, crate::outbox::sinks::mqtt_incidents::WINDOW * 2);
    tasks.spawn(must_run(
        "incident-event publisher",
        run_event_publisher(
            store.clone(),
            crate::outbox::sinks::mqtt_incidents::PublisherConnection {
                client: pub_client,
                eventloop: pub_loop,
                mqtt: config.mqtt.clone(),
            },
            scheme.clone(),
            event_written,
            metrics.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("mqtt", role = "publisher")),
    ));

    // forwarding (issue 9): endpoints, subscribers, escalation, heartbeat; routes merged below.
    let forwarding = crate::outbox::start(
        &config.forwarding,
        crate::outbox::Wiring {
            store: store.clone(),
            live: live.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            events: events_tx.clone(),
            core: core_handle.clone(),
            topic_prefix: config.mqtt.topic_prefix.clone(),
            gateway_name: config.mqtt.client_id.clone(),
            presentation: config.presentation.clone(),
        },
        &mut tasks,
        shutdown.clone(),
    )
    .await
    .context("starting forwarding")?;

    for feed in config.weather_feeds.clone() {
        let span = tracing::info_span!("weather_feed", url = %feed.url);
        tasks.spawn(must_run(
            "weather feed",
            crate::ingest::feeds::run_feed(
                feed,
                core_handle.clone(),
                metrics.weather_feed_polls.clone(),
                shutdown.clone(),
            )
            .instrument(span),
        ));
    }
    tasks.spawn(must_run(
        "retention",
        crate::store::retention::run_retention(
            store.clone(),
            config.retention.clone(),
            clock.clone(),
            metrics.retention_purged.clone(),
            shutdown.clone(),
        ),
    ));
    let (access, access_watch) = crate::access::Access::start(
        config.auth.clone(),
        store.clone(),
        clock.clone(),
        shutdown.clone(),
    );
    tasks.spawn(must_run("access watcher", access_watch));
    if access.is_open() {
        tracing::warn!("auth.mode is open: every request acts as an admin named anonymous");
    }
    let state = AppState {
        access,
        presentation: config.presentation.clone(),
        core: core_handle.clone(),
        store,
        live,
        metrics,
        events: events_tx,
        mqtt_connected,
        store_ok,
        clock,
        scheme,
        limits: config.http.limits(),
        sse_streams: Arc::new(tokio::sync::Semaphore::new(config.http.max_sse_streams)),
        core_alive,
    };
    let api_certificate = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => Some(
            crate::api::tls::ApiCertificate::load(cert.clone(), key.clone())
                .context("the API's TLS certificate (http.tls_cert_file, http.tls_key_file)")?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http.addr))?;
    let http_addr = listener.local_addr()?;
    // Every route goes through the one access check.
    let app = api::router(state.clone())
        .merge(crate::api::forwarding::routes(forwarding))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::access::authorize,
        ));
    let app = api::bounded(app, &config.http, state.metrics.clone());
    tasks.spawn(must_run(
        "HTTP server",
        api::serve(
            listener,
            app,
            config.http.clone(),
            api_certificate.as_ref().map(|c| c.acceptor()),
            shutdown.clone(),
        ),
    ));
    let scheme_name = if api_certificate.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%http_addr, scheme = scheme_name, "gateway listening");
    Ok(Gateway {
        http_addr,
        core: core_handle,
        shutdown,
        tasks,
        api_certificate,
        metrics: state.metrics.clone(),
        data_dir_lock: Some(data_dir_lock),
    })
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_reports_a_stalled_or_ended_core() {
        let l = crate::core::Liveness::default();
        l.mark();
        assert_eq!(l.stalled_for_ms(10_000), None);
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.stalled_for_ms(10).is_some_and(|ms| ms >= 30));
        l.mark();
        assert_eq!(l.stalled_for_ms(10_000), None);
        l.end();
        assert!(
            l.stalled_for_ms(10_000).is_some(),
            "an ended core is never ready"
        );
    }

    /// A task that must run and ends is reported with its name; one that may end is not.
    #[tokio::test]
    async fn a_task_that_must_run_and_ends_is_reported() {
        let mut tasks = Tasks::new();
        tasks.spawn(may_end(async {}));
        tasks.spawn(must_run("core", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        let (core, _inbox) = CoreHandle::channel(1);
        let mut gw = Gateway {
            http_addr: "127.0.0.1:1".parse().unwrap(),
            core,
            shutdown: CancellationToken::new(),
            tasks,
            api_certificate: None,
            metrics: Metrics::new(),
            data_dir_lock: None,
        };
        assert_eq!(gw.failed_task().await, "the core task ended");
        let mut tasks = Tasks::new();
        tasks.spawn(must_run("HTTP server", async { panic!("boom") }));
        gw.tasks = tasks;
        let why = gw.failed_task().await;
        assert!(why.contains("panicked") && why.contains("boom"), "{why}");
    }
}
