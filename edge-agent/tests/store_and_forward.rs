//! The durable buffer, end to end, with the built binary: the broker becomes unreachable
//! (a proxy in front of a real Mosquitto is cut), batches pile up in the buffer, the agent is
//! SIGKILLed and started again, the broker comes back: every seq arrives, under one epoch,
//! drained in order. The last will says `offline` when the link is cut.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use telemetry::{decode_batch, AgentId, DecodeLimits};
use tokio::time::Instant;

mod common;
use common::{free_port, http_get, metric, CutProxy, Mosquitto, Subscriber};

const SIM: &str = r#"
[[devices]]
name = "plc"
tick_ms = 50
values = [
  { function = "holding", address = 0, type = "u16", scale = 0.01, signal = { kind = "random_walk", min = 0.1, max = 0.9, step = 0.05, seed = 1 } },
]
"#;

struct AgentProcess(Child);

impl AgentProcess {
    fn start(config: &std::path::Path, mqtt_url: &str) -> AgentProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("HRS_MQTT_URL", mqtt_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start edge-agent");
        AgentProcess(child)
    }
    fn sigkill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
    fn sigterm_and_wait(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let end = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < end,
                "agent did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll /metrics until `cond` holds for the named gauge, or fail after `within`.
async fn wait_metric(
    addr: std::net::SocketAddr,
    name: &str,
    within: Duration,
    cond: impl Fn(f64) -> bool,
) -> f64 {
    let end = Instant::now() + within;
    loop {
        if let Ok(body) = http_get(addr, "/metrics").await {
            if let Some(v) = metric(&body, name) {
                if cond(v) {
                    return v;
                }
            }
        }
        assert!(
            Instant::now() < end,
            "{name} did not reach the expected value in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_survive_broker_outage_and_sigkill() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let proxy = CutProxy::start(broker.port).await;
    let sim =
        edge_agent::Simulator::start(edge_agent::SimulatorConfig::from_toml_str(SIM).unwrap())
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("saf{}", rand::random::<u32>());
    let metrics_port = free_port();
    let metrics_addr: std::net::SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
agent = "a1"
site = "s1"
data_dir = "{data}"
publish_interval_ms = 100
metrics_addr = "127.0.0.1:{metrics_port}"
[mqtt]
url = "mqtt://127.0.0.1:1"   # replaced by HRS_MQTT_URL
topic_prefix = "{prefix}"
keep_alive_s = 5
timeout_ms = 2000
[[devices]]
name = "plc"
host = "127.0.0.1"
port = {plc}
poll_interval_ms = 50
  [[devices.points]]
  point = "CH4-1"
  function = "holding"
  address = 0
  scale = 0.01
  quantity = "ch4"
  unit = "%"
"#,
            data = dir.path().join("state").display(),
            plc = sim.addr("plc").unwrap().port()
        ),
    )
    .unwrap();

    let mut sub = Subscriber::connect(broker.port, &format!("{prefix}/#")).await;
    let agent_id = AgentId::new("a1").unwrap();
    let t = Duration::from_secs(15);
    let mut seqs: Vec<u64> = Vec::new();
    let mut epochs = BTreeSet::new();
    let mut take = |m: &common::Msg, seqs: &mut Vec<u64>| {
        let b = decode_batch(
            &m.payload,
            Some(&agent_id),
            chrono::Utc::now(),
            &DecodeLimits::default(),
        )
        .unwrap();
        assert!(!b.readings.is_empty());
        epochs.insert(b.epoch.clone());
        seqs.push(b.seq);
    };

    // 1. Connected: batches flow.
    let mut a = AgentProcess::start(&config, &proxy.url());
    let online = sub.next_on("/status", t).await.expect("online status");
    assert_eq!(online.json()["state"], "online");
    while seqs.len() < 3 {
        let m = sub
            .next_on("/readings", t)
            .await
            .expect("batches while connected");
        take(&m, &mut seqs);
    }

    // 2. The broker becomes unreachable: the will says offline; batches pile up.
    proxy.down();
    let will = sub.next_on("/status", t).await.expect("last will");
    assert_eq!(will.json()["state"], "offline");
    wait_metric(metrics_addr, "hrs_agent_mqtt_connected", t, |v| v == 0.0).await;
    wait_metric(metrics_addr, "hrs_agent_buffer_batches", t, |v| v >= 5.0).await;

    // 3. SIGKILL while the broker is unreachable, then start again: the buffer is still there.
    a.sigkill();
    let mut a = AgentProcess::start(&config, &proxy.url());
    let held = wait_metric(metrics_addr, "hrs_agent_buffer_batches", t, |v| v >= 8.0).await;
    while let Ok(m) = sub.rx.try_recv() {
        // Whatever slipped through before the cut counts too.
        if m.topic.ends_with("/readings") {
            take(&m, &mut seqs);
        }
    }
    let before_up = seqs.len();

    // 4. The broker is back: everything drains, in order, then live data follows.
    proxy.up();
    let online = sub.next_on("/status", t).await.expect("online again");
    assert_eq!(online.json()["state"], "online");
    wait_metric(metrics_addr, "hrs_agent_buffer_batches", t, |v| v < 2.0).await;
    let end = Instant::now() + t;
    loop {
        let m = sub
            .next_on("/readings", t)
            .await
            .expect("batches after the outage");
        take(&m, &mut seqs);
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        let max = *distinct.iter().max().unwrap();
        if distinct.len() as u64 == max && max as usize >= before_up + held as usize + 2 {
            break;
        }
        assert!(Instant::now() < end, "missing seqs: have {distinct:?}");
    }
    let after: Vec<u64> = seqs[before_up..].to_vec();
    let mut sorted = after.clone();
    sorted.sort();
    assert_eq!(after, sorted, "drained in seq order");
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(
        distinct,
        (1..=*distinct.iter().max().unwrap()).collect(),
        "no seq lost"
    );
    assert_eq!(epochs.len(), 1, "one epoch across the restart: {epochs:?}");

    // 5. SIGTERM: a clean stop.
    let status = a.sigterm_and_wait();
    assert!(status.success(), "{status:?}");
    let m = sub.next_on("/status", t).await.expect("offline at stop");
    assert_eq!(m.json()["state"], "offline");
    sim.shutdown().await;
}
