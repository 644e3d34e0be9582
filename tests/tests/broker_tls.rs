//! TLS to the broker, with real programs: a Mosquitto with a password-protected TLS listener
//! and a TLS listener that requires client certificates (test PKI made by `openssl`), the
//! edge agent and the gateway binaries connecting over TLS, and a watcher on a plain
//! listener of the same broker seeing what they publish.
//!
//! - the agent (client certificate) and the gateway (username and password) over TLS: a
//!   methane reading becomes an incident that the watcher sees;
//! - an agent that cannot verify the broker (wrong CA) never sends anything, keeps every
//!   batch, and, started again with the right CA after a SIGKILL, delivers them all in order;
//! - a broker that requires a client certificate refuses an agent without one, and a wrong
//!   password is refused; neither crashes the agent;
//! - `edge-agent check` and `gateway` refuse unreadable TLS files with the file's name.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use system_tests::*;

const USER: &str = "gateway";
const PASSWORD: &str = "s3cret-Gw";

/// What each test starts with: a test PKI, a Mosquitto with TLS listeners, a simulated gas
/// detector at `percent` methane, and a watcher on the broker's plain listener.
struct Setup {
    tmp: tempfile::TempDir,
    pki: TestPki,
    broker: TlsMosquitto,
    prefix: String,
    _sim: Proc,
    plc_port: u16,
    watch: Watcher,
}

impl Setup {
    async fn start(percent: f64) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let pki = TestPki::generate(dir).unwrap();
        let broker = TlsMosquitto::start(dir, &pki, USER, PASSWORD)
            .await
            .unwrap();
        let prefix = format!("tls{}/v1", free_port());
        let (sim, plc_port) = methane_simulator(dir, percent).await.unwrap();
        let watch = Watcher::start(broker.port, &format!("{prefix}/#"))
            .await
            .unwrap();
        Setup {
            tmp,
            pki,
            broker,
            prefix,
            _sim: sim,
            plc_port,
            watch,
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `[mqtt]` lines for the listener that requires a client certificate, trusting `ca`.
    fn mtls(&self, ca: &Path) -> String {
        format!(
            "url = \"mqtts://127.0.0.1:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            self.broker.mtls_port,
            ca.display(),
            self.pki.client_cert.display(),
            self.pki.client_key.display()
        )
    }
}

/// An agent config whose `[mqtt]` table is `mqtt` (TOML lines).
fn agent_config(dir: &Path, name: &str, prefix: &str, plc_port: u16, mqtt: &str) -> (String, u16) {
    let data_dir = dir.join("agent-data");
    let who = TestAgent {
        name,
        agent: "mine-01-edge",
        site: "mine-01",
        data_dir: &data_dir,
    };
    methane_agent_config(dir, &who, prefix, plc_port, mqtt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_gateway_reach_each_other_over_tls() {
    let mut t = Setup::start(1.20).await;
    let (dir, prefix) = (t.dir().to_path_buf(), t.prefix.clone());
    let dir = dir.as_path();

    // The gateway: username and password over TLS, the CA from the environment.
    let http_port = free_port();
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(
            &format!("mqtts://127.0.0.1:{}", t.broker.tls_port),
            &prefix,
            http_port,
            dir,
        )
        .env("HRS_MQTT_CA_FILE", &t.pki.ca)
        .env("HRS_MQTT_USERNAME", USER)
        .env("HRS_MQTT_PASSWORD", PASSWORD),
        dir,
    )
    .unwrap();
    // The agent: a client certificate (the broker takes its CN as the username).
    let (config, metrics_port) =
        agent_config(dir, "agent", &prefix, t.plc_port, &t.mtls(&t.pki.ca));
    let agent = start_agent(dir, "agent", &config);
    let logs = || {
        format!(
            "--- gateway\n{}\n--- agent\n{}\n--- broker\n{}",
            gateway.log_text(),
            agent.log_text(),
            std::fs::read_to_string(dir.join("mosquitto-tls/mosquitto.log")).unwrap_or_default()
        )
    };

    // The agent's batches arrive through its TLS connection (the watcher is on plain MQTT).
    let batch = t
        .watch
        .next_json(Duration::from_secs(30), |t, _| {
            t.ends_with("/mine-01-edge/readings")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(batch["readings"][0]["value"], 1.2, "{batch}");
    // The gateway took it in over TLS and published the incident over TLS.
    let raised = t
        .watch
        .next_json(Duration::from_secs(30), |t, v: &Value| {
            t == format!("{prefix}/incidents/mine-01") && v["event"] == "raised"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(raised["rule"], "coal.ch4.working_face");
    assert_eq!(raised["value"], 1.2);
    assert_eq!(
        metric(
            &format!("http://127.0.0.1:{metrics_port}/metrics"),
            "hrs_agent_mqtt_connected"
        )
        .await,
        Some(1.0)
    );
    let (status, _) = get_json(&format!("http://127.0.0.1:{http_port}/readyz"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_verify_the_broker_keeps_every_batch() {
    let mut t = Setup::start(0.40).await;
    let (dir, prefix) = (t.dir().to_path_buf(), t.prefix.clone());
    let dir = dir.as_path();

    // The wrong CA: the broker's certificate does not verify.
    let (config, metrics_port) =
        agent_config(dir, "agent", &prefix, t.plc_port, &t.mtls(&t.pki.other_ca));
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let mut agent = start_agent(dir, "agent", &config);
    // It tries again and again, and keeps what it reads.
    wait_metric(
        &metrics,
        "hrs_agent_mqtt_disconnects_total",
        Duration::from_secs(30),
        |v| v >= 2.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", agent.log_text()));
    wait_metric(
        &metrics,
        "hrs_agent_buffer_batches",
        Duration::from_secs(30),
        |v| v >= 5.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", agent.log_text()));
    assert_eq!(
        metric(&metrics, "hrs_agent_mqtt_connected").await,
        Some(0.0)
    );
    assert_eq!(
        metric(&metrics, "hrs_agent_batches_published_total").await,
        Some(0.0)
    );
    let log = agent.log_text();
    assert!(
        log.contains("over TLS") && log.contains("invalid peer certificate: UnknownIssuer"),
        "the log says why: {log}"
    );
    assert!(
        t.watch.rx.try_recv().is_err(),
        "nothing may reach the broker from an agent that could not verify it"
    );

    // SIGKILL, the right CA, start again: every batch, seq 1.. in order, under one epoch.
    let held = metric(&metrics, "hrs_agent_buffer_batches").await.unwrap() as u64;
    agent.kill();
    let (config, metrics_port) =
        agent_config(dir, "agent", &prefix, t.plc_port, &t.mtls(&t.pki.ca));
    let agent = start_agent(dir, "agent", &config);
    let mut epoch = None;
    let mut next_seq = 1u64;
    // What was held at the kill, and a few live batches after it.
    while next_seq <= held + 3 {
        let b = t
            .watch
            .next_json(Duration::from_secs(30), |t, _| {
                t.ends_with("/mine-01-edge/readings")
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", agent.log_text()));
        let e = b["epoch"].as_str().unwrap().to_string();
        assert_eq!(
            epoch.get_or_insert(e.clone()),
            &e,
            "one epoch across the restart"
        );
        assert_eq!(b["seq"], next_seq, "batches in order, none missing: {b}");
        next_seq += 1;
    }
    assert_eq!(
        metric(
            &format!("http://127.0.0.1:{metrics_port}/metrics"),
            "hrs_agent_mqtt_connected"
        )
        .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_counted_not_fatal() {
    let t = Setup::start(0.40).await;
    let (dir, prefix, pki, broker) = (t.dir(), &t.prefix, &t.pki, &t.broker);

    for (name, mqtt) in [
        (
            "no-client-cert",
            format!(
                "url = \"mqtts://127.0.0.1:{}\"\nca_file = \"{}\"",
                broker.mtls_port,
                pki.ca.display()
            ),
        ),
        (
            "wrong-password",
            format!(
                "url = \"mqtts://127.0.0.1:{}\"\nca_file = \"{}\"\nusername = \"{USER}\"\npassword = \"not-it\"",
                broker.tls_port,
                pki.ca.display()
            ),
        ),
    ] {
        let (config, metrics_port) = agent_config(dir, name, prefix, t.plc_port, &mqtt);
        let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
        let mut agent = start_agent(dir, "agent", &config);
        wait_metric(&metrics, "hrs_agent_mqtt_disconnects_total", Duration::from_secs(30), |v| v >= 2.0)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", agent.log_text()));
        wait_metric(&metrics, "hrs_agent_buffer_batches", Duration::from_secs(30), |v| v >= 2.0)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", agent.log_text()));
        assert_eq!(metric(&metrics, "hrs_agent_mqtt_connected").await, Some(0.0), "{name}");
        assert!(
            agent.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "{name}: the agent keeps running"
        );
        if name == "wrong-password" {
            let log = agent.log_text();
            assert!(log.contains("refused"), "{name}: the log says the broker refused: {log}");
        }
        agent.kill();
        std::fs::remove_dir_all(dir.join("agent-data")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_tls_files_are_refused_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let missing = dir.join("no-such-ca.pem");
    let (config, _) = agent_config(
        dir,
        "agent",
        "hrs/v1",
        502,
        &format!(
            "url = \"mqtts://127.0.0.1:8883\"\nca_file = \"{}\"",
            missing.display()
        ),
    );
    let out = Command::new(bin_path("edge-agent"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("ca_file") && err.contains("no-such-ca.pem"),
        "{err}"
    );

    // A key without its certificate; and TLS files on a plain URL.
    for (url, var, file, why) in [
        (
            "mqtts://127.0.0.1:8883",
            "HRS_MQTT_CLIENT_KEY_FILE",
            "k.pem",
            "go together",
        ),
        (
            "mqtt://127.0.0.1:1883",
            "HRS_MQTT_CA_FILE",
            "ca.pem",
            "plain MQTT",
        ),
    ] {
        let out = Command::new(bin_path("gateway"))
            .arg("run")
            .env("HRS_MQTT_URL", url)
            .env(var, dir.join(file))
            .env("HRS_DATA_DIR", dir.join("gw"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(why), "{err}");
    }
}

/// The broker's certificate is renewed under a new CA: the operator puts the new CA where the
/// gateway's `ca_file` points and the broker restarts with its new certificate. The gateway
/// reads the file again when its connection fails and reconnects, with no restart of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_takes_a_renewed_ca_without_a_restart() {
    let mut t = Setup::start(0.40).await;
    let dir = t.dir().to_path_buf();
    let ca = dir.join("gateway-ca.pem");
    std::fs::copy(&t.pki.ca, &ca).unwrap();
    let http_port = free_port();
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(
            &format!("mqtts://127.0.0.1:{}", t.broker.tls_port),
            &t.prefix,
            http_port,
            &dir,
        )
        .env("HRS_MQTT_CA_FILE", &ca)
        .env("HRS_MQTT_USERNAME", USER)
        .env("HRS_MQTT_PASSWORD", PASSWORD),
        &dir,
    )
    .unwrap();
    let metrics = format!("http://127.0.0.1:{http_port}/metrics");
    let topic = format!("{}/sites/mine-01/edge/readings", t.prefix);
    let batch = |seq: u64| {
        json!({"agent": "edge", "epoch": "e1", "seq": seq, "readings": [{"point": "CH4-1",
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "value": 0.3}]})
        .to_string()
        .into_bytes()
    };
    wait_metric(
        &metrics,
        "hrs_mqtt_connected",
        Duration::from_secs(30),
        |v| v == 1.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    publish(t.broker.port, &topic, batch(1), false)
        .await
        .unwrap();
    wait_metric(
        &metrics,
        "hrs_readings_taken_total",
        Duration::from_secs(30),
        |v| v >= 1.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));

    // The renewal. The broker keeps no session (persistence off), so a batch reaches the
    // gateway only once it has reconnected and subscribed: send one at a time until one does.
    let renewed = TestPki::generate(&dir.join("renewed")).unwrap();
    std::fs::copy(&renewed.ca, &ca).unwrap();
    t.broker.restart_with(&renewed).await.unwrap();
    let mut seq = 1;
    eventually(
        Duration::from_secs(30),
        "a batch taken after the renewal",
        || {
            seq += 1;
            let (port, topic, payload, metrics) =
                (t.broker.port, topic.clone(), batch(seq), metrics.clone());
            async move {
                publish(port, &topic, payload, false).await.ok()?;
                let taken = metric(&metrics, "hrs_readings_taken_total").await?;
                (taken >= 2.0).then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
}
