//! Simulator + agent + a real Mosquitto on a free port: birth (retained), status online then
//! offline, batches with rising seq under one epoch, and a spike written through Modbus
//! arriving in a batch. Also the MQTT device input and /metrics.

use edge_agent::{Agent, AgentConfig, Simulator, SimulatorConfig};
use std::time::Duration;
use telemetry::{decode_batch, parse_time, AgentId, DecodeLimits, Value};
use tokio_modbus::client::Writer;

mod common;
use common::{Mosquitto, Subscriber};

const SIM: &str = r#"
[[devices]]
name = "gas-plc"
tick_ms = 50
hold_ms = 60000
values = [
  { function = "holding", address = 0, type = "u16", scale = 0.01, signal = { kind = "static", value = 0.42 } },
  { function = "holding", address = 1, type = "f32", order = "CDAB", signal = { kind = "random_walk", min = 0, max = 20, step = 1, seed = 3 } },
  { function = "coil", address = 0, signal = { kind = "static", value = 0 } },
]
"#;

fn agent_toml(prefix: &str, url: &str, data_dir: &std::path::Path, plc_port: u16) -> String {
    format!(
        r#"
agent = "mine-01-edge"
site = "mine-01"
data_dir = "{data}"
publish_interval_ms = 200
metrics_addr = "127.0.0.1:0"
[site_info]
name = "Zhaogu No.1 mine"
category = "coal_mine"
region = "410522"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
timeout_ms = 3000
[[devices]]
name = "gas-plc"
host = "127.0.0.1"
port = {plc_port}
poll_interval_ms = 100
timeout_ms = 500
  [[devices.points]]
  point = "CH4-101"
  function = "holding"
  address = 0
  scale = 0.01
  quantity = "ch4"
  unit = "%"
  location = "working_face"
  range = [0, 4]
  tags = {{ zone = "1201" }}
  [[devices.points]]
  point = "CO-101"
  function = "holding"
  address = 1
  type = "f32"
  order = "CDAB"
  quantity = "co"
  unit = "ppm"
  [[devices.points]]
  point = "FEED-1201"
  function = "coil"
  address = 0
  quantity = "power_cut"
  unit = "bool"
[[mqtt_inputs]]
name = "fan"
topic = "{prefix}-devices/fan/+"
ts_field = "time"
  [[mqtt_inputs.points]]
  point = "WIND-1"
  field = "wind_ms"
  quantity = "wind_speed"
  unit = "m/s"
"#,
        data = data_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_status_and_batches_reach_the_broker() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let sim = Simulator::start(SimulatorConfig::from_toml_str(SIM).unwrap())
        .await
        .unwrap();
    let plc = sim.addr("gas-plc").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("test{}", rand::random::<u32>());
    let cfg =
        AgentConfig::from_toml_str(&agent_toml(&prefix, &broker.url(), dir.path(), plc.port()))
            .unwrap();

    let mut sub = Subscriber::connect(broker.port, &format!("{prefix}/#")).await;
    let agent = Agent::build(cfg).await.unwrap();
    let epoch = agent.epoch().to_string();
    assert_eq!(epoch.len(), 16);
    let metrics_addr = agent.metrics_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async move {
        let _ = stop_rx.await;
    }));

    let t = Duration::from_secs(10);
    let birth = sub
        .next_on("/sites/mine-01/mine-01-edge/birth", t)
        .await
        .expect("birth");
    let b = birth.json();
    assert_eq!(b["agent"], "mine-01-edge");
    assert_eq!(b["epoch"], epoch.as_str());
    assert_eq!(b["site"]["category"], "coal_mine");
    assert_eq!(b["points"].as_array().unwrap().len(), 4);
    assert_eq!(b["points"][0]["point"], "CH4-101");
    assert_eq!(b["points"][0]["interval_ms"], 100);
    assert_eq!(b["points"][0]["tags"]["zone"], "1201");
    let decoded =
        telemetry::decode_catalogue(&birth.payload, None, &DecodeLimits::default()).unwrap();
    assert!(decoded.refused.is_empty());

    let status = sub
        .next_on("/sites/mine-01/mine-01-edge/status", t)
        .await
        .expect("status");
    assert_eq!(status.json()["state"], "online");

    // Batches: seq rising by one, one epoch, the static methane value exact. A batch holds
    // what was read since the last one, so on a loaded machine one may fall between the
    // registers' and the coils' reads and hold no methane: methane is asked of the batches
    // together.
    let agent_id = AgentId::new("mine-01-edge").unwrap();
    let mut last_seq = None;
    let mut methane = Vec::new();
    for _ in 0..4 {
        let m = sub.next_on("/readings", t).await.expect("a batch");
        let batch = decode_batch(
            &m.payload,
            Some(&agent_id),
            chrono::Utc::now(),
            &DecodeLimits::default(),
        )
        .unwrap();
        assert!(batch.refused.is_empty(), "{:?}", batch.refused);
        assert_eq!(batch.epoch, epoch);
        if let Some(s) = last_seq {
            assert_eq!(batch.seq, s + 1);
        } else {
            assert_eq!(batch.seq, 1);
        }
        last_seq = Some(batch.seq);
        methane.extend(
            batch
                .readings
                .iter()
                .filter(|r| r.point.as_str() == "CH4-101")
                .map(|r| r.value),
        );
    }
    assert!(!methane.is_empty(), "no methane reading in four batches");
    assert!(
        methane.iter().all(|v| *v == Value::Number(0.42)),
        "{methane:?}"
    );

    // A retained birth and status greet a late subscriber.
    let mut late = Subscriber::connect(
        broker.port,
        &format!("{prefix}/sites/mine-01/mine-01-edge/+"),
    )
    .await;
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        let m = tokio::time::timeout(t, late.rx.recv())
            .await
            .expect("retained messages")
            .unwrap();
        if m.topic.ends_with("/birth") {
            assert!(m.retain);
            seen.0 = true;
        }
        if m.topic.ends_with("/status") {
            assert!(m.retain);
            seen.1 = true;
        }
    }
    drop(late);

    // A spike written through Modbus arrives in a later batch; so does a power cut.
    let mut client = tokio_modbus::client::tcp::connect(plc).await.unwrap();
    client.write_single_register(0, 162).await.unwrap().unwrap();
    client.write_single_coil(0, true).await.unwrap().unwrap();
    // An MQTT device message becomes a reading too.
    let dev = rumqttc::MqttOptions::new("test-fan", "127.0.0.1", broker.port);
    let (dev_client, mut dev_loop) = rumqttc::AsyncClient::new(dev, 10);
    let dev_task = tokio::spawn(async move { while dev_loop.poll().await.is_ok() {} });
    dev_client
        .publish(
            format!("{prefix}-devices/fan/2"),
            rumqttc::QoS::AtLeastOnce,
            false,
            r#"{"time":"2026-11-28T10:00:00Z","wind_ms":3.5}"#,
        )
        .await
        .unwrap();
    let (mut spike, mut cut, mut wind) = (false, false, false);
    let end = tokio::time::Instant::now() + t;
    while !(spike && cut && wind) {
        assert!(
            tokio::time::Instant::now() < end,
            "spike {spike} cut {cut} wind {wind}"
        );
        let Some(m) = sub.next_on("/readings", t).await else {
            break;
        };
        let batch = decode_batch(
            &m.payload,
            Some(&agent_id),
            chrono::Utc::now(),
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(batch.seq, last_seq.unwrap() + 1);
        last_seq = Some(batch.seq);
        for r in &batch.readings {
            match r.point.as_str() {
                "CH4-101" if r.value == Value::Number(1.62) => spike = true,
                "FEED-1201" if r.value == Value::Bool(true) => cut = true,
                "WIND-1" => {
                    assert_eq!(r.value, Value::Number(3.5));
                    assert_eq!(r.ts, parse_time("2026-11-28T10:00:00Z").unwrap());
                    wind = true;
                }
                _ => {}
            }
        }
    }
    assert!(spike && cut && wind);
    dev_task.abort();

    // Metrics are served.
    let body = common::http_get(metrics_addr, "/metrics").await.unwrap();
    for name in [
        "hrs_agent_polls_total",
        "hrs_agent_poll_duration_seconds_bucket",
        "hrs_agent_batches_published_total",
        "hrs_agent_buffer_batches",
        "hrs_agent_device_link_up{device=\"gas-plc\"} 1",
        "hrs_agent_mqtt_connected 1",
    ] {
        assert!(body.contains(name), "{name} missing from\n{body}");
    }

    // Shutdown: offline status, retained; then nothing left in the buffer.
    stop_tx.send(()).unwrap();
    let status = sub.next_on("/status", t).await.expect("offline status");
    assert_eq!(status.json()["state"], "offline");
    tokio::time::timeout(t, run)
        .await
        .expect("agent stops")
        .unwrap()
        .unwrap();
    // The offline status is retained: a new subscriber gets it.
    let mut late = Subscriber::connect(
        broker.port,
        &format!("{prefix}/sites/mine-01/mine-01-edge/status"),
    )
    .await;
    let m = late.next_on("/status", t).await.expect("retained status");
    assert!(m.retain);
    assert_eq!(m.json()["state"], "offline");
    let buf = edge_agent::buffer::Buffer::open(
        &dir.path().join("buffer.sqlite"),
        1 << 20,
        || unreachable!(),
    )
    .await
    .unwrap();
    assert_eq!(
        buf.len(),
        0,
        "every batch was acknowledged before the agent stopped"
    );
    assert_eq!(buf.epoch(), epoch);
    assert!(buf.next_seq() > last_seq.unwrap());
    sim.shutdown().await;
}
