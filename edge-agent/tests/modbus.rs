//! Our simulator and our poller over the real Modbus protocol (TCP and RTU over TCP):
//! exact values of every type and order, writes that hold, exceptions, timeouts, refusals.

use edge_agent::config::DeviceConfig;
use edge_agent::metrics::AgentMetrics;
use edge_agent::poll::DevicePoller;
use edge_agent::{Simulator, SimulatorConfig, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use telemetry::{Quality, Reading, Value};
use tokio_modbus::client::{Reader, Writer};

mod common;

/// Values of every type and order, static, at addresses the agent reads contiguously.
fn sim_toml(transport: &str) -> String {
    format!(
        r#"
[[devices]]
name = "d"
listen = "127.0.0.1:0"
transport = "{transport}"
tick_ms = 50
hold_ms = 400
values = [
  {{ function = "holding", address = 0,  type = "u16", signal = {{ kind = "static", value = 4660 }} }},
  {{ function = "holding", address = 1,  type = "i16", order = "BADC", signal = {{ kind = "static", value = -2 }} }},
  {{ function = "holding", address = 2,  type = "u32", order = "CDAB", signal = {{ kind = "static", value = 287454020 }} }},
  {{ function = "holding", address = 4,  type = "i32", order = "DCBA", signal = {{ kind = "static", value = -123456789 }} }},
  {{ function = "holding", address = 6,  type = "u64", order = "BADC", signal = {{ kind = "static", value = 4822678189205111 }} }},
  {{ function = "holding", address = 10, type = "i64", order = "ABCD", signal = {{ kind = "static", value = -9007199254740991 }} }},
  {{ function = "holding", address = 14, type = "f32", order = "CDAB", signal = {{ kind = "static", value = -2.5 }} }},
  {{ function = "holding", address = 16, type = "f64", order = "DCBA", signal = {{ kind = "static", value = 123.456 }} }},
  {{ function = "holding", address = 20, type = "u16", scale = 0.01, signal = {{ kind = "static", value = 0.42 }} }},
  {{ function = "holding", address = 21, type = "bool", bit = 3, signal = {{ kind = "static", value = 1 }} }},
  {{ function = "holding", address = 21, type = "bool", bit = 4, signal = {{ kind = "static", value = 0 }} }},
  {{ function = "input",   address = 0,  type = "f32", order = "ABCD", signal = {{ kind = "static", value = 20.5 }} }},
  {{ function = "coil",    address = 0,  signal = {{ kind = "static", value = 1 }} }},
  {{ function = "coil",    address = 1,  signal = {{ kind = "static", value = 0 }} }},
  {{ function = "discrete_input", address = 5, signal = {{ kind = "static", value = 1 }} }},
]
"#
    )
}

fn device_toml(port: u16, transport: &str) -> String {
    format!(
        r#"
name = "d"
host = "127.0.0.1"
port = {port}
transport = "{transport}"
timeout_ms = 500
retries = 1
poll_interval_ms = 100
points = [
  {{ point = "U16",  function = "holding", address = 0,  type = "u16", quantity = "level", unit = "m" }},
  {{ point = "I16",  function = "holding", address = 1,  type = "i16", order = "BADC", quantity = "level", unit = "m" }},
  {{ point = "U32",  function = "holding", address = 2,  type = "u32", order = "CDAB", quantity = "level", unit = "m" }},
  {{ point = "I32",  function = "holding", address = 4,  type = "i32", order = "DCBA", quantity = "level", unit = "m" }},
  {{ point = "U64",  function = "holding", address = 6,  type = "u64", order = "BADC", quantity = "level", unit = "m" }},
  {{ point = "I64",  function = "holding", address = 10, type = "i64", order = "ABCD", quantity = "level", unit = "m" }},
  {{ point = "F32",  function = "holding", address = 14, type = "f32", order = "CDAB", quantity = "level", unit = "m" }},
  {{ point = "F64",  function = "holding", address = 16, type = "f64", order = "DCBA", quantity = "level", unit = "m" }},
  {{ point = "CH4",  function = "holding", address = 20, type = "u16", scale = 0.01, quantity = "ch4", unit = "%" }},
  {{ point = "B3",   function = "holding", address = 21, type = "bool", bit = 3, quantity = "interlock_bypass", unit = "bool" }},
  {{ point = "B4",   function = "holding", address = 21, type = "bool", bit = 4, quantity = "interlock_bypass", unit = "bool" }},
  {{ point = "IN",   function = "input",   address = 0,  type = "f32", quantity = "o2", unit = "%" }},
  {{ point = "C0",   function = "coil",    address = 0,  quantity = "power_cut", unit = "bool" }},
  {{ point = "C1",   function = "coil",    address = 1,  quantity = "power_cut", unit = "bool" }},
  {{ point = "DI5",  function = "discrete_input", address = 5, quantity = "operation_active", unit = "bool" }},
]
"#
    )
}

fn poller(port: u16, transport: &str) -> (DevicePoller, AgentMetrics) {
    let d: DeviceConfig = toml::from_str(&device_toml(port, transport)).unwrap();
    let metrics = AgentMetrics::new();
    (
        DevicePoller::new(d, metrics.clone(), Arc::new(SystemClock)),
        metrics,
    )
}

fn value(readings: &[Reading], point: &str) -> Value {
    let r = readings
        .iter()
        .find(|r| r.point.as_str() == point)
        .unwrap_or_else(|| panic!("no reading of {point}"));
    assert_eq!(r.quality, Quality::Good, "{point}: {:?}", r.reason);
    r.value
}

async fn every_type_and_order(transport: &str) {
    let sim = Simulator::start(SimulatorConfig::from_toml_str(&sim_toml(transport)).unwrap())
        .await
        .unwrap();
    let port = sim.addr("d").unwrap().port();
    let (mut p, metrics) = poller(port, transport);
    // 3 holding runs? No: holding 0..22 is one contiguous run, input, coils, discrete input.
    assert_eq!(p.plan().len(), 4, "{:?}", p.plan());
    let r = p.poll_once().await;
    assert_eq!(r.len(), 15);
    assert_eq!(value(&r, "U16"), Value::Number(4660.0));
    assert_eq!(value(&r, "I16"), Value::Number(-2.0));
    assert_eq!(value(&r, "U32"), Value::Number(287454020.0));
    assert_eq!(value(&r, "I32"), Value::Number(-123456789.0));
    assert_eq!(value(&r, "U64"), Value::Number(4822678189205111.0));
    assert_eq!(value(&r, "I64"), Value::Number(-9007199254740991.0));
    assert_eq!(value(&r, "F32"), Value::Number(-2.5));
    assert_eq!(value(&r, "F64"), Value::Number(123.456));
    assert_eq!(value(&r, "CH4"), Value::Number(0.42));
    assert_eq!(value(&r, "B3"), Value::Bool(true));
    assert_eq!(value(&r, "B4"), Value::Bool(false));
    assert_eq!(value(&r, "IN"), Value::Number(20.5));
    assert_eq!(value(&r, "C0"), Value::Bool(true));
    assert_eq!(value(&r, "C1"), Value::Bool(false));
    assert_eq!(value(&r, "DI5"), Value::Bool(true));
    assert_eq!(metrics.polls_total.with_label_values(&["ok"]).get(), 4);
    assert_eq!(metrics.device_link_up.with_label_values(&["d"]).get(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn tcp_every_type_and_order_exact() {
    every_type_and_order("tcp").await;
}

#[tokio::test]
async fn rtu_over_tcp_every_type_and_order_exact() {
    every_type_and_order("rtu_over_tcp").await;
}

#[tokio::test]
async fn written_values_hold_then_the_generator_resumes() {
    let sim = Simulator::start(SimulatorConfig::from_toml_str(&sim_toml("tcp")).unwrap())
        .await
        .unwrap();
    let addr = sim.addr("d").unwrap();
    let (mut p, _) = poller(addr.port(), "tcp");
    let mut client = tokio_modbus::client::tcp::connect(addr).await.unwrap();
    // A methane spike of 1.62 % (raw 162) and a bypass bit, through FC 6 and FC 16 and FC 5.
    client
        .write_single_register(20, 162)
        .await
        .unwrap()
        .unwrap();
    client
        .write_multiple_registers(14, &[0x0000, 0x3FC0])
        .await
        .unwrap()
        .unwrap(); // 1.5 CDAB
    client.write_single_coil(1, true).await.unwrap().unwrap();
    let r = p.poll_once().await;
    assert_eq!(value(&r, "CH4"), Value::Number(1.62));
    assert_eq!(value(&r, "F32"), Value::Number(1.5));
    assert_eq!(value(&r, "C1"), Value::Bool(true));
    // Writing an address no value defines is refused; input registers are not writable.
    assert!(client.write_single_register(99, 1).await.unwrap().is_err());
    // After hold_ms (400) the static generator takes over again at its next tick.
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = p.poll_once().await;
        if value(&r, "CH4") == Value::Number(0.42) && value(&r, "C1") == Value::Bool(false) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the written value never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reads of more than 125 registers are refused by the simulator.
    assert!(client
        .read_holding_registers(0, 126)
        .await
        .unwrap()
        .is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn exception_gives_bad_readings_with_the_reason() {
    let sim = Simulator::start(SimulatorConfig::from_toml_str(&sim_toml("tcp")).unwrap())
        .await
        .unwrap();
    let port = sim.addr("d").unwrap().port();
    let mut d: DeviceConfig = toml::from_str(&device_toml(port, "tcp")).unwrap();
    d.points.truncate(1);
    let mut missing = d.points[0].clone();
    missing.point = telemetry::PointId::new("MISSING").unwrap();
    missing.address = 500;
    d.points.push(missing);
    let metrics = AgentMetrics::new();
    let mut p = DevicePoller::new(d, metrics.clone(), Arc::new(SystemClock));
    let r = p.poll_once().await;
    assert_eq!(
        value(&r, "U16"),
        Value::Number(4660.0),
        "a failing request does not take the others down"
    );
    let bad = r.iter().find(|r| r.point.as_str() == "MISSING").unwrap();
    assert_eq!(bad.quality, Quality::Bad);
    assert_eq!(bad.value, Value::Null);
    assert_eq!(
        bad.reason.as_deref(),
        Some("modbus exception IllegalDataAddress")
    );
    assert_eq!(
        metrics
            .poll_errors_total
            .with_label_values(&["exception"])
            .get(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn silent_device_times_out_and_refused_connection_is_reported() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let (mut p, metrics) = poller(port, "tcp");
    let started = std::time::Instant::now();
    let r = p.poll_once().await;
    assert!(
        r.iter()
            .all(|r| r.quality == Quality::Bad && r.reason.as_deref() == Some("modbus timeout")),
        "{r:?}"
    );
    // 4 requests, each tried twice (retries = 1), 500 ms each.
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(
        metrics
            .poll_errors_total
            .with_label_values(&["timeout"])
            .get(),
        4
    );
    assert_eq!(metrics.device_link_up.with_label_values(&["d"]).get(), 0);
    hold.abort();

    let closed = common::free_port();
    let (mut p, metrics) = poller(closed, "tcp");
    let r = p.poll_once().await;
    assert!(
        r.iter().all(|r| r.quality == Quality::Bad
            && r.reason
                .as_deref()
                .is_some_and(|s| s.starts_with("modbus connect failed"))),
        "{r:?}"
    );
    assert!(
        metrics
            .poll_errors_total
            .with_label_values(&["connect"])
            .get()
            >= 1
    );
}
