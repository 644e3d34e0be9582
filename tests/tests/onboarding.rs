//! Site onboarding (issue 24): a device that publishes its own JSON (Neuron's format: epoch
//! milliseconds, values and error codes under their own keys) is read by the agent through
//! JSON pointers, with no bridge, and its methane spike becomes an incident at the gateway.
//! All real processes: Mosquitto, the gateway and the agent, on free ports.

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishing_its_own_json_with_epoch_ms_raises_an_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("onb{}/v1", free_port());
    let device_topic = format!("neuron{}/gas-plc", free_port());
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            r#"
agent = "mine-03-edge"
site = "mine-03"
data_dir = "{data}"
publish_interval_ms = 200
[site_info]
category = "coal_mine"
region = "410522"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
[[mqtt_inputs]]
name = "neuron"
topic = "{device_topic}"
ts_field = "/timestamp"
ts_format = "epoch_ms"
  [[mqtt_inputs.points]]
  point = "CH4-301"
  field = "/values/ch4"
  quality_field = "/errors/ch4"
  quantity = "ch4"
  unit = "%"
  location = "working_face"
  range = [0, 4]
  [[mqtt_inputs.points]]
  point = "CO-301"
  field = "/values/co"
  quality_field = "/errors/co"
  quantity = "co"
  unit = "ppm"
  location = "working_face"
"#,
            data = dir.join("agent").display(),
            url = broker.url(),
        ),
    )
    .unwrap();
    let mut watch = Watcher::start(broker.port, &format!("{prefix}/incidents/#"))
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
    let agent = Proc::spawn(
        "agent",
        Command::new(bin_path("edge-agent"))
            .arg("run")
            .arg("--config")
            .arg(dir.join("agent.toml")),
        dir,
    )
    .unwrap();
    let logs = || {
        format!(
            "--- gateway\n{}\n--- agent\n{}",
            gateway.log_text(),
            agent.log_text()
        )
    };
    // The device's time, in epoch milliseconds with a millisecond part: the gateway must show
    // exactly it (not the arrival time, not a time read as seconds).
    let device_ms = (chrono::Utc::now().timestamp_millis() / 1000 - 3) * 1000 + 123;
    let device_ts = telemetry::format_time(
        &chrono::DateTime::<chrono::Utc>::from_timestamp_millis(device_ms).unwrap(),
    );
    let message = |ms: i64, ch4: f64| {
        serde_json::to_vec(&serde_json::json!({
            "node": "gas-plc", "group": "fast", "timestamp": ms,
            "values": {"ch4": ch4}, "errors": {"co": 2014}
        }))
        .unwrap()
    };
    // Published until the agent has it (its subscription may follow its birth by a moment).
    eventually(
        Duration::from_secs(30),
        "CH4-301 = 0.4 at the device's time, CO-301 bad with the device's error",
        || {
            let http = http.clone();
            let device_ts = device_ts.clone();
            let payload = message(device_ms, 0.40);
            let port = broker.port;
            let topic = device_topic.clone();
            async move {
                publish(port, &topic, payload, false).await.ok()?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let (_, points) = get_json(&format!("{http}/api/v1/sites/mine-03/points"))
                    .await
                    .ok()?;
                let points = points.as_array()?;
                let ch4 = points.iter().find(|p| p["point"] == "CH4-301")?;
                let co = points.iter().find(|p| p["point"] == "CO-301")?;
                (ch4["value"] == 0.4
                    && ch4["quality"] == "good"
                    && ch4["ts"] == device_ts.as_str()
                    && co["quality"] == "bad"
                    && co["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("/errors/co = 2014")))
                .then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));

    // The spike: 1.62 % in the device's own format.
    publish(
        broker.port,
        &device_topic,
        message(device_ms + 1000, 1.62),
        false,
    )
    .await
    .unwrap();
    let raised = watch
        .next_json(Duration::from_secs(30), |t, v: &Value| {
            // (CO-301's error code raises a sensor fault of its own.)
            t == format!("{prefix}/incidents/mine-03")
                && v["event"] == "raised"
                && v["point"] == "CH4-301"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(raised["rule"], "coal.ch4.working_face", "{raised}");
    assert_eq!(raised["point"], "CH4-301", "{raised}");
    assert_eq!(raised["value"], 1.62, "{raised}");
    assert_eq!(raised["agent"], "mine-03-edge", "{raised}");
    let spike_ts = telemetry::format_time(
        &chrono::DateTime::<chrono::Utc>::from_timestamp_millis(device_ms + 1000).unwrap(),
    );
    assert_eq!(raised["raised_at"], spike_ts.as_str(), "{raised}");
}

/// The Python of the test environment (`HRS_PYTHON`, else the workspace's `.venv`).
fn python() -> std::path::PathBuf {
    std::env::var_os("HRS_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
        })
}

/// Two gas monitors (units 1 and 2) on one RS-485 line: pymodbus's serial server on one end
/// of a pseudo-terminal pair made by socat, the agent on the other with two `rtu_serial`
/// devices on the same port, polled in turn; the methane of unit 1 past its power-off level
/// becomes an incident at the gateway, and unit 2's carbon monoxide arrives beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_line_of_two_units_reaches_the_gateway_as_an_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (agent_end, device_end) = (dir.join("ttyAGENT"), dir.join("ttyDEVICE"));
    let _socat = Proc::spawn(
        "socat",
        Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", agent_end.display()))
            .arg(format!("pty,raw,echo=0,link={}", device_end.display())),
        dir,
    )
    .expect("socat (scripts/test installs it)");
    eventually(Duration::from_secs(10), "socat's pty pair", || {
        let ready = agent_end.exists() && device_end.exists();
        async move { ready.then_some(()) }
    })
    .await
    .unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/serial_gas.py");
    let device = Proc::spawn(
        "serial-device",
        Command::new(python())
            .arg(&script)
            .arg(&device_end)
            .args(["19200", "N", "1", "162", "12"]),
        dir,
    )
    .unwrap();
    eventually(Duration::from_secs(20), "the serial device ready", || {
        let ready = device.log_text().contains("ready");
        async move { ready.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", device.log_text()));

    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("ser{}/v1", free_port());
    let line = format!(
        "transport = \"rtu_serial\"\nserial_port = \"{}\"\nbaud = 19200\nparity = \"none\"\nstop_bits = 1\ntimeout_ms = 500\npoll_interval_ms = 200\n",
        agent_end.display()
    );
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            r#"
agent = "mine-04-edge"
site = "mine-04"
data_dir = "{data}"
publish_interval_ms = 200
[site_info]
category = "coal_mine"
region = "410522"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
[[devices]]
name = "gas-1"
unit_id = 1
{line}
  [[devices.points]]
  point = "CH4-401"
  address = "40001"
  scale = 0.01
  quantity = "ch4"
  unit = "%"
  location = "working_face"
  range = [0, 4]
[[devices]]
name = "gas-2"
unit_id = 2
{line}
  [[devices.points]]
  point = "CO-401"
  address = "40001"
  quantity = "co"
  unit = "ppm"
  location = "working_face"
"#,
            data = dir.join("agent").display(),
            url = broker.url(),
        ),
    )
    .unwrap();
    let mut watch = Watcher::start(broker.port, &format!("{prefix}/incidents/#"))
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
    let agent = Proc::spawn(
        "agent",
        Command::new(bin_path("edge-agent"))
            .arg("run")
            .arg("--config")
            .arg(dir.join("agent.toml")),
        dir,
    )
    .unwrap();
    let logs = || {
        format!(
            "--- gateway\n{}\n--- agent\n{}\n--- device\n{}",
            gateway.log_text(),
            agent.log_text(),
            device.log_text()
        )
    };
    let raised = watch
        .next_json(Duration::from_secs(30), |t, v: &Value| {
            t == format!("{prefix}/incidents/mine-04") && v["event"] == "raised"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(raised["rule"], "coal.ch4.working_face", "{raised}");
    assert_eq!(raised["point"], "CH4-401", "{raised}");
    assert_eq!(raised["value"], 1.62, "{raised}");
    // Unit 2 on the same line, read in turn: its value (not unit 1's) under its own point.
    eventually(
        Duration::from_secs(20),
        "CO-401 = 12 at the gateway",
        || {
            let http = http.clone();
            async move {
                let (_, points) = get_json(&format!("{http}/api/v1/sites/mine-04/points"))
                    .await
                    .ok()?;
                points
                    .as_array()?
                    .iter()
                    .any(|p| p["point"] == "CO-401" && p["value"] == 12.0 && p["quality"] == "good")
                    .then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
}
