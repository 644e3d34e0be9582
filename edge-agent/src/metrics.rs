//! Prometheus metrics of the agent (`hrs_agent_*`), served at `/metrics` on `metrics_addr`.
//!
//! Labels come from small fixed sets: `kind` and `reason` are fixed words, `device` is a
//! configured device name. No point id is ever a label.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::net::SocketAddr;

/// Every metric of one agent, in its own registry.
#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Registry,
    /// Requests made to devices, by outcome (`ok`, `error`).
    pub polls_total: IntCounterVec,
    /// Failed requests by kind: `timeout`, `exception`, `transport`, `connect`, `decode`.
    pub poll_errors_total: IntCounterVec,
    /// Time of one Modbus read request.
    pub poll_duration_seconds: HistogramVec,
    /// 1 while the device's connection is up.
    pub device_link_up: IntGaugeVec,
    /// Readings handed to the batcher.
    pub readings_total: IntCounter,
    /// Readings dropped before batching, by reason (`queue_full`, `bad_payload`).
    pub readings_dropped_total: IntCounterVec,
    /// Batches stored in the buffer and not yet acknowledged by the broker.
    pub buffer_batches: IntGauge,
    /// Payload bytes of those batches.
    pub buffer_bytes: IntGauge,
    /// Batches acknowledged (PUBACK) by the broker.
    pub batches_published_total: IntCounter,
    /// Batches dropped from the buffer, by reason (`buffer_full`).
    pub batches_dropped_total: IntCounterVec,
    /// 1 while connected to the broker.
    pub mqtt_connected: IntGauge,
    /// Broker connection attempts that failed or sessions that ended in error.
    pub mqtt_disconnects_total: IntCounter,
    /// Time from storing a batch to its PUBACK.
    pub publish_latency_seconds: Histogram,
    /// JT/T 808: frames refused, by reason (`too_long`, `escape`, `too_short`, `check_code`,
    /// `length`, `header`, `encrypted`, `subpackage`, `body`).
    pub jt808_frames_refused_total: IntCounterVec,
    /// JT/T 808: messages decoded, by kind (`registration`, `authentication`, `heartbeat`,
    /// `location`, `location_batch`, `driver_identity`, `terminal_response`, `logout`, `other`).
    pub jt808_messages_total: IntCounterVec,
    /// JT/T 808: messages that counted nothing, by reason (`unauthenticated`, `not_stored`).
    pub jt808_messages_refused_total: IntCounterVec,
    /// JT/T 808: authentications by outcome (`ok`, `wrong_code`, `unknown_terminal`).
    pub jt808_auth_total: IntCounterVec,
    /// JT/T 808: registrations by outcome (`ok`, `refused`, `store_error`).
    pub jt808_registrations_total: IntCounterVec,
    /// JT/T 808: location reports taken (each item of a 0x0704 counts).
    pub jt808_reports_total: IntCounter,
    /// JT/T 808: connections open now.
    pub jt808_connections: IntGauge,
    /// JT/T 808: connections refused, by reason (`limit`).
    pub jt808_connections_refused_total: IntCounterVec,
    /// JT/T 808: connections closed, by reason (`peer`, `idle`, `auth_failures`, `error`,
    /// `stopping`).
    pub jt808_connections_closed_total: IntCounterVec,
    /// JT/T 808: vehicles known (listed, registered or reporting) and those without a birth.
    pub jt808_vehicles: IntGauge,
    pub jt808_vehicles_uncatalogued: IntGauge,
    /// JT/T 808 births (one agent id each): batches and bytes buffered, MQTT link.
    pub jt808_buffer_batches: IntGaugeVec,
    pub jt808_buffer_bytes: IntGaugeVec,
    pub jt808_mqtt_connected: IntGaugeVec,
}

/// Register `metric` (a valid definition with a name of its own) in `registry`.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let m = metric.expect("metric definition is valid");
    registry
        .register(Box::new(m.clone()))
        .expect("metric names are unique");
    m
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help));
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help));
        let counter_vec = |name: &str, help: &str, label: &str| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), &[label]),
            )
        };
        let gauge_vec = |name: &str, help: &str, label: &str| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), &[label]))
        };
        let lat_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        AgentMetrics {
            polls_total: counter_vec(
                "hrs_agent_polls_total",
                "Modbus read requests by outcome",
                "outcome",
            ),
            poll_errors_total: counter_vec(
                "hrs_agent_poll_errors_total",
                "Failed Modbus reads by kind",
                "kind",
            ),
            poll_duration_seconds: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "hrs_agent_poll_duration_seconds",
                        "Duration of one Modbus read request",
                    )
                    .buckets(lat_buckets.clone()),
                    &["outcome"],
                ),
            ),
            device_link_up: gauge_vec(
                "hrs_agent_device_link_up",
                "1 while the connection to the device is up",
                "device",
            ),
            readings_total: counter("hrs_agent_readings_total", "Readings handed to the batcher"),
            readings_dropped_total: counter_vec(
                "hrs_agent_readings_dropped_total",
                "Readings dropped before batching",
                "reason",
            ),
            buffer_batches: gauge("hrs_agent_buffer_batches", "Batches in the durable buffer"),
            buffer_bytes: gauge(
                "hrs_agent_buffer_bytes",
                "Payload bytes in the durable buffer",
            ),
            batches_published_total: counter(
                "hrs_agent_batches_published_total",
                "Batches acknowledged by the broker",
            ),
            batches_dropped_total: counter_vec(
                "hrs_agent_batches_dropped_total",
                "Batches dropped from the buffer",
                "reason",
            ),
            mqtt_connected: gauge(
                "hrs_agent_mqtt_connected",
                "1 while connected to the broker",
            ),
            mqtt_disconnects_total: counter(
                "hrs_agent_mqtt_disconnects_total",
                "Broker connections that failed or ended in error",
            ),
            publish_latency_seconds: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "hrs_agent_publish_latency_seconds",
                        "From storing a batch to its PUBACK",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
                    ]),
                ),
            ),
            jt808_frames_refused_total: counter_vec(
                "hrs_jt808_frames_refused_total",
                "JT/T 808 frames refused",
                "reason",
            ),
            jt808_messages_total: counter_vec(
                "hrs_jt808_messages_total",
                "JT/T 808 messages decoded",
                "kind",
            ),
            jt808_messages_refused_total: counter_vec(
                "hrs_jt808_messages_refused_total",
                "JT/T 808 messages that counted nothing",
                "reason",
            ),
            jt808_auth_total: counter_vec(
                "hrs_jt808_auth_total",
                "JT/T 808 authentications",
                "outcome",
            ),
            jt808_registrations_total: counter_vec(
                "hrs_jt808_registrations_total",
                "JT/T 808 registrations",
                "outcome",
            ),
            jt808_reports_total: counter(
                "hrs_jt808_reports_total",
                "JT/T 808 location reports taken",
            ),
            jt808_connections: gauge("hrs_jt808_connections", "JT/T 808 connections open"),
            jt808_connections_refused_total: counter_vec(
                "hrs_jt808_connections_refused_total",
                "JT/T 808 connections refused",
                "reason",
            ),
            jt808_connections_closed_total: counter_vec(
                "hrs_jt808_connections_closed_total",
                "JT/T 808 connections closed",
                "reason",
            ),
            jt808_vehicles: gauge("hrs_jt808_vehicles", "JT/T 808 vehicles known"),
            jt808_vehicles_uncatalogued: gauge(
                "hrs_jt808_vehicles_uncatalogued",
                "JT/T 808 vehicles taken without a birth (their birth is full)",
            ),
            jt808_buffer_batches: gauge_vec(
                "hrs_jt808_buffer_batches",
                "Batches in the durable buffer of a JT/T 808 birth",
                "agent",
            ),
            jt808_buffer_bytes: gauge_vec(
                "hrs_jt808_buffer_bytes",
                "Payload bytes in the durable buffer of a JT/T 808 birth",
                "agent",
            ),
            jt808_mqtt_connected: gauge_vec(
                "hrs_jt808_mqtt_connected",
                "1 while the MQTT connection of a JT/T 808 birth is up",
                "agent",
            ),
            registry,
        }
    }

    /// The metrics a JT/T 808 birth's batcher and publisher update: the same counters, and
    /// gauges of its own (labelled with its agent id, a configured name).
    pub fn for_vehicle_agent(&self, agent: &str) -> AgentMetrics {
        let mut m = self.clone();
        m.buffer_batches = self.jt808_buffer_batches.with_label_values(&[agent]);
        m.buffer_bytes = self.jt808_buffer_bytes.with_label_values(&[agent]);
        m.mqtt_connected = self.jt808_mqtt_connected.with_label_values(&[agent]);
        m
    }

    /// The Prometheus text form of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encode error: {e}\n"))
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serve `/metrics` on `addr` until `shutdown` completes. Returns the bound address through
/// `bound` (useful with port 0).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: AgentMetrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::{routing::get, Router};
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
