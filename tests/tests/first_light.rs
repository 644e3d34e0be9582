//! First light: a simulated Modbus device, the edge agent polling it over Modbus TCP and
//! publishing through a real Mosquitto, and the gateway judging the readings: all real
//! processes. A methane spike is pushed into the device over Modbus (a register write) and the
//! incident is seen over HTTP and over MQTT, and its clear after the spike.

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use system_tests::*;
use tokio_modbus::client::Writer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spike_through_modbus_mqtt_and_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("fl{}/v1", free_port());
    // The device: methane at 0.40 % (u16, scale 0.01) until written.
    let (_sim, plc_port) = methane_simulator(dir, 0.40).await.unwrap();

    std::fs::write(
        dir.join("agent.toml"),
        format!(
            r#"
agent = "mine-01-edge"
site = "mine-01"
data_dir = "{data}"
publish_interval_ms = 200
[site_info]
category = "coal_mine"
region = "410522"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
[[devices]]
name = "gas-plc"
host = "127.0.0.1"
port = {plc_port}
unit_id = 1
timeout_ms = 1000
poll_interval_ms = 200
  [[devices.points]]
  point = "CH4-101"
  function = "holding"
  address = 0
  type = "u16"
  scale = 0.01
  quantity = "ch4"
  unit = "%"
  location = "working_face"
  range = [0, 4]
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

    // The normal value arrives through Modbus and MQTT.
    eventually(
        Duration::from_secs(30),
        "CH4-101 = 0.4 at the gateway",
        || {
            let http = http.clone();
            async move {
                let (_, points) = get_json(&format!("{http}/api/v1/sites/mine-01/points"))
                    .await
                    .ok()?;
                points
                    .as_array()?
                    .iter()
                    .any(|p| p["point"] == "CH4-101" && p["value"] == 0.4 && p["quantity"] == "ch4")
                    .then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert!(get_json(&format!("{http}/api/v1/incidents"))
        .await
        .unwrap()
        .1
        .as_array()
        .unwrap()
        .is_empty());

    // The spike: 1.62 % written into the device's holding register over Modbus TCP.
    let mut plc = tokio_modbus::client::tcp::connect(([127, 0, 0, 1], plc_port).into())
        .await
        .unwrap();
    plc.write_single_register(0, 162).await.unwrap().unwrap();
    let raised = watch
        .next_json(Duration::from_secs(30), |t, v: &Value| {
            t == format!("{prefix}/incidents/mine-01") && v["event"] == "raised"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(raised["rule"], "coal.ch4.working_face");
    assert_eq!(
        raised["severity"], "critical",
        "1.62 % is past the power-off level: raised once, at the highest level"
    );
    assert_eq!(raised["value"], 1.62);
    assert_eq!(raised["threshold"], 1.5);
    assert_eq!(raised["agent"], "mine-01-edge");
    let id = raised["id"].as_str().unwrap().to_string();
    let (_, list) = get_json(&format!("{http}/api/v1/incidents?state=open"))
        .await
        .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str() && i["state"] == "active"),
        "{list}"
    );

    // Back to normal: cleared, on the same incident.
    plc.write_single_register(0, 35).await.unwrap().unwrap();
    let cleared = watch
        .next_json(Duration::from_secs(30), |_, v: &Value| {
            v["id"] == id.as_str() && v["event"] == "cleared"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(cleared["value"], 0.35);
    let (_, inc) = get_json(&format!("{http}/api/v1/incidents/{id}"))
        .await
        .unwrap();
    assert_eq!(inc["state"], "cleared");
}
