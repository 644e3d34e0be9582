//! Store and forward, end to end, all real processes: our Modbus simulator (a script value that
//! changes every second), the edge agent polling it at 1 Hz and publishing, a Mosquitto with
//! persistence, and the gateway. The broker is stopped for 30 s; during the outage the agent is
//! SIGKILLed and started again; then the broker comes back and the agent's buffer drains.
//! Every batch the agent stored arrives at the gateway exactly once, in order: every seq of the
//! agent's one epoch is taken once, none skipped, none out of order, and the gateway has
//! taken exactly the readings of those batches.

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use system_tests::*;
use tokio::sync::mpsc;

const SITE: &str = "saf-site";
const AGENT: &str = "saf-edge";
const OUTAGE: Duration = Duration::from_secs(30);

/// A subscriber with a persistent session (clean session off, a fixed client id): the broker
/// keeps its subscription and queues its QoS 1 messages across the broker's restart, so it
/// sees what is published while it is reconnecting.
struct SessionSubscriber {
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    _client: AsyncClient,
}

impl SessionSubscriber {
    async fn start(port: u16, client_id: &str, filter: &str) -> Result<SessionSubscriber> {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false)
            .set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut ev) = AsyncClient::new(opts, 100);
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(t) = subscribed_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // The broker is down: try again (the session waits for us at the broker).
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .context("no SUBACK")??;
        Ok(SessionSubscriber {
            rx,
            _client: client,
        })
    }
}

/// What the subscriber has seen of the agent's batches.
#[derive(Default)]
struct Seen {
    /// Seqs in the order of their first arrival.
    first_arrivals: Vec<u64>,
    /// Deliveries per seq (QoS 1 may deliver again; the gateway must take one).
    deliveries: BTreeMap<u64, u32>,
    /// The batch of each seq.
    batches: BTreeMap<u64, Value>,
    epochs: BTreeSet<String>,
    statuses: Vec<String>,
}

impl Seen {
    fn take(&mut self, topic: &str, payload: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        if topic.ends_with("/readings") {
            let seq = v["seq"].as_u64().expect("a batch has a seq");
            self.epochs.insert(
                v["epoch"]
                    .as_str()
                    .expect("a batch has an epoch")
                    .to_string(),
            );
            let n = self.deliveries.entry(seq).or_insert(0);
            if *n == 0 {
                self.first_arrivals.push(seq);
                self.batches.insert(seq, v);
            }
            *n += 1;
        } else if topic.ends_with("/status") {
            self.statuses
                .push(v["state"].as_str().unwrap_or("?").to_string());
        }
    }

    /// Take every message that has arrived by now, without waiting.
    fn drain(&mut self, sub: &mut SessionSubscriber) {
        while let Ok((topic, payload)) = sub.rx.try_recv() {
            self.take(&topic, &payload);
        }
    }

    /// Take messages until `done` holds, or fail after `within`.
    async fn until(
        &mut self,
        sub: &mut SessionSubscriber,
        within: Duration,
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            match tokio::time::timeout_at(deadline, sub.rx.recv()).await {
                Ok(Some((topic, payload))) => self.take(&topic, &payload),
                Ok(None) => bail!("subscriber stopped"),
                Err(_) => bail!(
                    "timed out after {within:?} waiting for {what}; seqs seen: {:?}",
                    self.deliveries.keys().collect::<Vec<_>>()
                ),
            }
        }
        Ok(())
    }

    fn readings(&self) -> usize {
        self.batches
            .values()
            .map(|b| b["readings"].as_array().map_or(0, |r| r.len()))
            .sum()
    }
}

/// `SELECT` one value from the agent's buffer file with the sqlite3 shell.
fn buffer_query(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 must be on PATH to read the agent's buffer");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn spawn_agent(config: &Path, dir: &Path) -> Proc {
    Proc::spawn(
        "agent",
        Command::new(bin_path("edge-agent"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info"),
        dir,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_once_in_order_across_broker_outage_and_agent_sigkill() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("saf{}/v1", free_port());

    // The device: a temperature that steps through a script, one value per second.
    let plc_port = free_port();
    let script: Vec<String> = (0..120).map(|i| format!("{}", 20 + i % 60)).collect();
    std::fs::write(
        dir.join("sim.toml"),
        format!(
            r#"
[[devices]]
name = "plc"
listen = "127.0.0.1:{plc_port}"
tick_ms = 100
  [[devices.values]]
  point = "TT-1"
  function = "holding"
  address = 0
  type = "u16"
  signal = {{ kind = "script", values = [{}], step_ms = 1000, repeat = true }}
"#,
            script.join(", ")
        ),
    )
    .unwrap();
    let _sim = Proc::spawn(
        "simulator",
        Command::new(bin_path("edge-agent"))
            .arg("simulate")
            .arg("--config")
            .arg(dir.join("sim.toml")),
        dir,
    )
    .unwrap();
    wait_port(plc_port, Duration::from_secs(20)).await.unwrap();

    let metrics_port = free_port();
    let agent_metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let agent_data = dir.join("agent");
    let agent_config = dir.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            r#"
agent = "{AGENT}"
site = "{SITE}"
data_dir = "{data}"
publish_interval_ms = 1000
metrics_addr = "127.0.0.1:{metrics_port}"
[site_info]
category = "hazchem"
region = "410502"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
keep_alive_s = 5
timeout_ms = 2000
[[devices]]
name = "plc"
host = "127.0.0.1"
port = {plc_port}
timeout_ms = 500
poll_interval_ms = 1000
  [[devices.points]]
  point = "TT-1"
  function = "holding"
  address = 0
  type = "u16"
  quantity = "temperature"
  unit = "°C"
  range = [-40, 200]
"#,
            data = agent_data.display(),
            url = broker.url(),
        ),
    )
    .unwrap();

    // The test's own subscriber and the gateway, both with persistent sessions, before the agent.
    let mut sub = SessionSubscriber::start(
        broker.port,
        &format!("saf-watch-{metrics_port}"),
        &format!("{prefix}/sites/{SITE}/{AGENT}/+"),
    )
    .await
    .unwrap();
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let gateway = Proc::spawn(
        "gateway",
        &mut gateway_command(&broker.url(), &prefix, http_port, dir),
        dir,
    )
    .unwrap();
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));

    let mut agent = spawn_agent(&agent_config, dir);
    let logs = |agent: &Proc| {
        format!(
            "--- gateway\n{}\n--- agent\n{}\n--- mosquitto\n{}",
            gateway.log_text(),
            agent.log_text(),
            std::fs::read_to_string(dir.join("mosquitto/mosquitto.log")).unwrap_or_default()
        )
    };

    // 1. Connected: a few batches flow.
    let mut seen = Seen::default();
    seen.until(
        &mut sub,
        Duration::from_secs(30),
        "three batches while connected",
        |s| s.batches.len() >= 3,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));

    // 2. The broker stops cleanly (it saves the sessions); the agent buffers.
    broker.stop();
    let outage_began = Instant::now();
    wait_metric(
        &agent_metrics,
        "hrs_agent_mqtt_connected",
        Duration::from_secs(20),
        |v| v == 0.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));
    wait_metric(
        &agent_metrics,
        "hrs_agent_buffer_batches",
        Duration::from_secs(20),
        |v| v >= 5.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));

    // 3. SIGKILL during the outage, and start again: the buffer survives and keeps growing.
    agent.kill();
    let held: u64 = buffer_query(
        &agent_data.join("buffer.sqlite"),
        "SELECT count(*) FROM batches",
    )
    .parse()
    .unwrap();
    assert!(
        held >= 5,
        "the SIGKILLed agent's batches are in its buffer file: {held}"
    );
    let mut agent = spawn_agent(&agent_config, dir);
    wait_metric(
        &agent_metrics,
        "hrs_agent_buffer_batches",
        Duration::from_secs(20),
        |v| v >= held as f64 + 3.0,
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the restarted agent did not keep the buffer and add to it: {e}\n{}",
            logs(&agent)
        )
    });

    // 4. The deliberate outage ends; the broker comes back with its persisted sessions.
    tokio::time::sleep(OUTAGE.saturating_sub(outage_began.elapsed())).await;
    broker.restart().await.unwrap();
    wait_metric(
        &agent_metrics,
        "hrs_agent_mqtt_connected",
        Duration::from_secs(20),
        |v| v == 1.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));
    wait_metric(
        &agent_metrics,
        "hrs_agent_buffer_batches",
        Duration::from_secs(20),
        |v| v == 0.0,
    )
    .await
    .unwrap_or_else(|e| panic!("the buffer did not drain: {e}\n{}", logs(&agent)));

    // 5. A clean stop: the agent writes its last batch, sends it and says offline. Its buffer
    //    file then holds nothing, and says which seq it gave last.
    agent.terminate();
    let db = agent_data.join("buffer.sqlite");
    assert_eq!(
        buffer_query(&db, "SELECT count(*) FROM batches"),
        "0",
        "every batch acknowledged by the broker\n{}",
        logs(&agent)
    );
    let last_seq: u64 = buffer_query(&db, "SELECT value FROM meta WHERE key = 'next_seq'")
        .parse::<u64>()
        .unwrap()
        - 1;
    let epoch = buffer_query(&db, "SELECT value FROM meta WHERE key = 'epoch'");
    assert!(
        last_seq >= 3 + held + 3,
        "batches before, during and after the outage: last seq {last_seq}"
    );

    // The subscriber's persistent session saw every seq (the last after its offline status).
    seen.until(
        &mut sub,
        Duration::from_secs(20),
        "every seq and the offline status",
        |s| {
            s.deliveries.len() as u64 == last_seq
                && s.statuses.last().map(String::as_str) == Some("offline")
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));
    seen.drain(&mut sub);
    assert_eq!(
        seen.epochs,
        BTreeSet::from([epoch.clone()]),
        "one epoch across the SIGKILL"
    );
    assert_eq!(
        seen.deliveries.keys().copied().collect::<Vec<_>>(),
        (1..=last_seq).collect::<Vec<_>>(),
        "every seq from 1 to the last, none else"
    );
    let mut sorted = seen.first_arrivals.clone();
    sorted.sort_unstable();
    assert_eq!(seen.first_arrivals, sorted, "batches arrive in seq order");
    // The readings, in seq order, go forward in time and follow the device.
    let readings: Vec<&Value> = seen
        .batches
        .values()
        .flat_map(|b| b["readings"].as_array().unwrap())
        .collect();
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = readings
        .iter()
        .map(|r| chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "reading times rise with seq: {times:?}"
    );
    let values: BTreeSet<i64> = readings
        .iter()
        .map(|r| r["value"].as_f64().expect("good readings") as i64)
        .collect();
    assert!(
        values.len() >= 10 && values.iter().all(|v| (20..80).contains(v)),
        "the script's values: {values:?}"
    );

    // 6. The gateway took every seq of the epoch once: no gap, completeness 1, and exactly the
    //    readings of those batches (duplicates, if the broker delivered any again, dropped).
    let agents_url = format!("{http}/api/v1/sites/{SITE}/agents");
    let status = eventually(
        Duration::from_secs(20),
        "the gateway at the last seq",
        || {
            let url = agents_url.clone();
            async move {
                let (_, v) = get_json(&url).await.ok()?;
                let a = v.as_array()?.iter().find(|a| a["agent"] == AGENT)?.clone();
                (a["status"]["max_seq"].as_u64() == Some(last_seq)).then_some(a)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&agent)));
    let st = &status["status"];
    assert_eq!(st["epoch"], epoch.as_str(), "{status}");
    assert_eq!(
        st["gaps"], 0,
        "no seq skipped or taken out of order: {status}"
    );
    assert_eq!(st["completeness"], 1.0, "{status}");
    let expected = seen.readings() as f64;
    let gateway_metrics = format!("{http}/metrics");
    // Counted just after max_seq moves: wait for the count to arrive, then compare exactly.
    let _ = eventually(Duration::from_secs(5), "hrs_readings_taken_total", || {
        let url = gateway_metrics.clone();
        async move {
            metric(&url, "hrs_readings_taken_total")
                .await
                .filter(|v| *v >= expected)
        }
    })
    .await;
    let taken = metric(&gateway_metrics, "hrs_readings_taken_total").await;
    assert_eq!(
        taken,
        Some(expected),
        "the gateway took each reading once ({last_seq} batches)"
    );
    let page = reqwest::get(&gateway_metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sample(&page, "hrs_seq_gaps_total"), Some(0.0), "{page}");
    assert_eq!(
        sample(&page, "hrs_readings_out_of_order_total"),
        Some(0.0),
        "{page}"
    );
    let redelivered: u32 = seen.deliveries.values().map(|n| n - 1).sum();
    eprintln!(
        "store_and_forward: {last_seq} batches, {expected} readings, {held} held at the SIGKILL, gateway duplicates dropped {}, subscriber redeliveries {redelivered}, {:.0?} in all",
        st["duplicates"],
        started.elapsed()
    );
}
