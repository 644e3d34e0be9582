//! Prometheus metrics of the gateway, registered once. Names `hrs_<thing>_<unit>`; labels from
//! small fixed sets (reason codes, message kinds, severities), never a point id.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub messages_received: IntCounterVec,
    pub messages_refused: IntCounterVec,
    pub readings_taken: IntCounter,
    pub readings_refused: IntCounterVec,
    pub readings_uncatalogued: IntCounter,
    pub readings_out_of_order: IntCounter,
    pub batches_duplicate: IntCounter,
    pub seq_gaps: IntCounter,
    pub seq_gaps_filled: IntCounter,
    pub rule_evaluation_seconds: Histogram,
    pub incident_events: IntCounterVec,
    pub incidents_open: IntGaugeVec,
    pub agents_online: IntGauge,
    pub store_write_seconds: Histogram,
    pub mqtt_connected: IntGauge,
    pub mqtt_published: IntCounterVec,
    pub processing_seconds: Histogram,
    /// Seq windows saved per group commit (one transaction).
    pub group_commit_batches: Histogram,
    pub dead_letters: IntCounter,
    /// `hrs_store_refusals_total{what}`: rows the store refused for good (permanent errors),
    /// by what was written; each was dead-lettered or made storable, and the core went on.
    pub store_refusals: IntCounterVec,
    /// `hrs_store_errors_total{class}`: failed store operations, `transient` (retried) or
    /// `permanent`.
    pub store_errors: IntCounterVec,
    /// `hrs_bounds_hit_total{bound}`: a bound on what outsiders can make the gateway keep was
    /// reached (`ingest_buffer`, `sites`, `agents_per_site`, `points_per_site`,
    /// `epochs_per_agent`, `epoch_idle`, `http_concurrency`, `sse_streams`).
    pub bounds_hit: IntCounterVec,
    /// `hrs_ingest_dropped_total{reason}`: messages dropped before the core (QoS 0 only).
    pub ingest_dropped: IntCounterVec,
    pub weather_feed_polls: IntCounterVec,
    pub critical_on_out_of_service: IntCounter,
    pub incidents_shelved: IntGauge,
    pub chattering_causes: IntGauge,
    pub incidents_raised_last_hour: IntGauge,
    /// `hrs_reloads_total{what,outcome}`: reloads on SIGHUP or over the API, of the `rules`
    /// or of the HTTP API's `tls` certificate, `done` or `refused` (the old stay in force).
    pub reloads: IntCounterVec,
    pub up: Gauge,
    /// `hrs_gateway_ready`: 1 when `/readyz` would say 200 (set at each scrape of `/metrics`
    /// by the same checks), 0 with a reason in `/readyz`.
    pub gateway_ready: IntGauge,
    /// `hrs_gateway_active`: 1 on the gateway that consumes and forwards. A standby gateway
    /// (contract 1.1, Standby) says 0 and its 503 on `/readyz` is no alert; without `[ha]`
    /// every gateway is active.
    pub gateway_active: IntGauge,
    /// `hrs_sites{region}` and `hrs_sites_offline{region}`: sites known, and those of them
    /// with no agent online, counted by region prefix (the first 4 digits of the GB/T 2260
    /// code, a city; `unknown` without a region), never labelled per site.
    pub sites: IntGaugeVec,
    pub sites_offline: IntGaugeVec,
    /// `hrs_incidents_unacknowledged{severity}`: standing incidents nobody acknowledged yet.
    pub incidents_unacknowledged: IntGaugeVec,
    /// `hrs_incidents_unacknowledged_oldest_seconds{severity}`: how long the oldest of them
    /// has been raised (gateway clock), 0 when none.
    pub incidents_unacknowledged_oldest: GaugeVec,
    /// `hrs_retention_purged_total{what}`: records deleted past their retention (`incidents`,
    /// `events`, `dead_letters`, `site_intervals`).
    pub retention_purged: IntCounterVec,
}

/// The first digits of a region code that label the site gauges (a city: 4 of GB/T 2260's 6).
pub const REGION_LABEL_DIGITS: usize = 4;

/// The `region` label of a site: its code's first [`REGION_LABEL_DIGITS`] digits, `unknown`
/// without one.
pub fn region_label(region: Option<&str>) -> String {
    match region {
        Some(r) if !r.is_empty() => r.chars().take(REGION_LABEL_DIGITS).collect(),
        _ => "unknown".to_string(),
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
    r.register(Box::new(c.clone())).expect("register");
    c
}
fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric");
    r.register(Box::new(c.clone())).expect("register");
    c
}
fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric");
    r.register(Box::new(g.clone())).expect("register");
    g
}
fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric");
    r.register(Box::new(g.clone())).expect("register");
    g
}
fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("metric");
    r.register(Box::new(h.clone())).expect("register");
    h
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let fast = vec![
            1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0,
        ];
        let incidents_open = IntGaugeVec::new(
            Opts::new(
                "hrs_incidents_open",
                "Incidents whose condition stands, by severity",
            ),
            &["severity"],
        )
        .expect("metric");
        r.register(Box::new(incidents_open.clone()))
            .expect("register");
        let agents_online =
            IntGauge::new("hrs_agents_online", "Agents whose last status is online")
                .expect("metric");
        r.register(Box::new(agents_online.clone()))
            .expect("register");
        let mqtt_connected =
            IntGauge::new("hrs_mqtt_connected", "1 while connected to the broker").expect("metric");
        r.register(Box::new(mqtt_connected.clone()))
            .expect("register");
        let up = Gauge::new("hrs_gateway_up", "1 while the gateway runs").expect("metric");
        r.register(Box::new(up.clone())).expect("register");
        up.set(1.0);
        let build_info = gauge_vec(
            &r,
            "hrs_build_info",
            "Always 1; the gateway's version in the label",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        // process_max_fds, process_start_time_seconds, ... of this process (Linux).
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("register");
        let gateway_active = gauge(
            &r,
            "hrs_gateway_active",
            "1 on the gateway that consumes and forwards (0: a standby)",
        );
        gateway_active.set(1);
        let incidents_unacknowledged_oldest = GaugeVec::new(
            Opts::new(
                "hrs_incidents_unacknowledged_oldest_seconds",
                "Age of the oldest standing incident not acknowledged, by severity (0: none)",
            ),
            &["severity"],
        )
        .expect("metric");
        r.register(Box::new(incidents_unacknowledged_oldest.clone()))
            .expect("register");
        Metrics {
            messages_received: counter_vec(
                &r,
                "hrs_messages_received_total",
                "MQTT messages received, by kind",
                &["kind"],
            ),
            messages_refused: counter_vec(
                &r,
                "hrs_messages_refused_total",
                "Messages refused whole, by reason",
                &["reason"],
            ),
            readings_taken: counter(&r, "hrs_readings_taken_total", "Readings taken"),
            readings_refused: counter_vec(
                &r,
                "hrs_readings_refused_total",
                "Readings refused, by reason",
                &["reason"],
            ),
            readings_uncatalogued: counter(
                &r,
                "hrs_readings_uncatalogued_total",
                "Readings of points no birth has named yet",
            ),
            readings_out_of_order: counter(
                &r,
                "hrs_readings_out_of_order_total",
                "Readings older than the point's latest value",
            ),
            batches_duplicate: counter(
                &r,
                "hrs_batches_duplicate_total",
                "Batches dropped as duplicates by seq",
            ),
            seq_gaps: counter(
                &r,
                "hrs_seq_gaps_total",
                "Batches missing when a seq jumped",
            ),
            seq_gaps_filled: counter(
                &r,
                "hrs_seq_gaps_filled_total",
                "Missing batches that arrived later",
            ),
            rule_evaluation_seconds: histogram(
                &r,
                "hrs_rule_evaluation_seconds",
                "Rule evaluation time per batch",
                fast.clone(),
            ),
            incident_events: counter_vec(
                &r,
                "hrs_incident_events_total",
                "Incident events, by event",
                &["event"],
            ),
            incidents_open,
            agents_online,
            store_write_seconds: histogram(
                &r,
                "hrs_store_write_seconds",
                "Store write latency",
                fast.clone(),
            ),
            mqtt_connected,
            mqtt_published: counter_vec(
                &r,
                "hrs_mqtt_published_total",
                "Messages published by the gateway, by kind",
                &["kind"],
            ),
            processing_seconds: histogram(
                &r,
                "hrs_message_processing_seconds",
                "Time from receipt to acknowledgement of a message",
                fast,
            ),
            group_commit_batches: histogram(
                &r,
                "hrs_group_commit_windows",
                "Seq windows (agent epochs) saved per group commit of reading batches",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            dead_letters: counter(&r, "hrs_dead_letters_total", "Dead-letter records written"),
            store_refusals: counter_vec(
                &r,
                "hrs_store_refusals_total",
                "Rows the store refused for good (dead-lettered or made storable), by what was written",
                &["what"],
            ),
            store_errors: counter_vec(
                &r,
                "hrs_store_errors_total",
                "Failed store operations: transient (retried) or permanent",
                &["class"],
            ),
            bounds_hit: counter_vec(
                &r,
                "hrs_bounds_hit_total",
                "Times a bound on what outsiders can make the gateway keep was reached",
                &["bound"],
            ),
            reloads: counter_vec(
                &r,
                "hrs_reloads_total",
                "Reloads of the rules and of the API's TLS certificate, done or refused",
                &["what", "outcome"],
            ),
            ingest_dropped: counter_vec(
                &r,
                "hrs_ingest_dropped_total",
                "Messages dropped before the core (QoS 0 only), by reason",
                &["reason"],
            ),
            weather_feed_polls: counter_vec(
                &r,
                "hrs_weather_feed_polls_total",
                "Weather feed polls, by outcome (taken, not_modified, refused, error)",
                &["outcome"],
            ),
            critical_on_out_of_service: counter(
                &r,
                "hrs_critical_on_out_of_service_total",
                "Critical incidents raised on points out of service (never shelved)",
            ),
            incidents_shelved: gauge(
                &r,
                "hrs_incidents_shelved",
                "Standing incidents that are shelved",
            ),
            chattering_causes: gauge(
                &r,
                "hrs_chattering_causes",
                "Causes raised 3 times or more in the last hour (IEC 62682)",
            ),
            incidents_raised_last_hour: gauge(
                &r,
                "hrs_incidents_raised_last_hour",
                "Incidents raised in the last hour, all sites",
            ),
            up,
            gateway_ready: gauge(
                &r,
                "hrs_gateway_ready",
                "1 when /readyz says ready (set at each scrape)",
            ),
            gateway_active,
            sites: gauge_vec(
                &r,
                "hrs_sites",
                "Sites known, by region prefix (4 digits of GB/T 2260)",
                &["region"],
            ),
            sites_offline: gauge_vec(
                &r,
                "hrs_sites_offline",
                "Sites with no agent online, by region prefix (4 digits of GB/T 2260)",
                &["region"],
            ),
            incidents_unacknowledged: gauge_vec(
                &r,
                "hrs_incidents_unacknowledged",
                "Standing incidents not acknowledged, by severity",
                &["severity"],
            ),
            incidents_unacknowledged_oldest,
            retention_purged: counter_vec(
                &r,
                "hrs_retention_purged_total",
                "Records deleted past their retention, by what",
                &["what"],
            ),
            registry: r,
        }
        .with_zeros()
    }

    /// Counters an alert takes `increase()` of start at 0 with every label value they can
    /// have, so the first failure is an increase (a series born at 1 is none).
    fn with_zeros(self) -> Metrics {
        for class in ["transient", "permanent"] {
            self.store_errors.with_label_values(&[class]);
        }
        for what in [
            "incident",
            "seq_window",
            "catalogue",
            "weather_doc",
            "out_of_service",
            "dead_letter",
        ] {
            self.store_refusals.with_label_values(&[what]);
        }
        self
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encode metrics");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
