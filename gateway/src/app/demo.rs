//! `gateway demo`: the whole system in one process, with embedded defaults. An embedded MQTT
//! broker (rumqttd), the gateway with its embedded store, simulated Modbus devices (a coal
//! mine's gas PLC, a chemical plant's DCS) polled over Modbus TCP by in-process edge agents, and
//! a fleet's JT/T 808 vehicle terminals simulated over TCP into an agent's JT/T 808 listener.
//! Every reading crosses the broker: nothing goes from a simulator to the rules but through
//! Modbus or JT/T 808, and MQTT.

use crate::clock::SystemClock;
use crate::config::GatewayConfig;
use anyhow::{Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A demo site: a simulator file (if it has Modbus devices) and an agent file, with
/// `{{...}}` placeholders filled in at start.
struct DemoSite {
    name: &'static str,
    simulator: Option<&'static str>,
    agent: &'static str,
}

const SITES: &[DemoSite] = &[
    DemoSite {
        name: "mine-01",
        simulator: Some(include_str!("../../demo/mine-01.sim.toml")),
        agent: include_str!("../../demo/mine-01.agent.toml"),
    },
    DemoSite {
        name: "chem-01",
        simulator: Some(include_str!("../../demo/chem-01.sim.toml")),
        agent: include_str!("../../demo/chem-01.agent.toml"),
    },
    DemoSite {
        name: "trans-01",
        simulator: None,
        agent: include_str!("../../demo/trans-01.agent.toml"),
    },
];

/// The embedded broker's port: the one asked for, else 1883 when free, else any free port.
fn broker_port(asked: Option<u16>) -> Result<u16> {
    if let Some(p) = asked {
        return Ok(p);
    }
    if TcpListener::bind(("127.0.0.1", 1883)).is_ok() {
        return Ok(1883);
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Start rumqttd on its own thread (it has no stop; it ends with the process).
pub fn start_broker(port: u16) -> Result<()> {
    let config = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
  [v4.1.connections]
  connection_timeout_ms = 60000
  max_payload_size = 8388608
  max_inflight_count = 200
  dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&config).context("embedded broker config")?;
    std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })?;
    Ok(())
}

async fn wait_port(port: u16) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the embedded broker did not open port {port}")
}

pub async fn run(mqtt_port: Option<u16>) -> Result<()> {
    let data_dir = std::env::var_os("HRS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("hrs-demo-data"));
    let http_addr: SocketAddr = match std::env::var("HRS_HTTP_ADDR") {
        Ok(a) => a
            .parse()
            .with_context(|| format!("HRS_HTTP_ADDR {a:?} is not host:port"))?,
        Err(_) => "127.0.0.1:8080".parse()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let port = broker_port(mqtt_port)?;
    start_broker(port)?;
    wait_port(port).await?;
    let mqtt_url = format!("mqtt://127.0.0.1:{port}");

    let mut config = GatewayConfig::default();
    config.mqtt.url = mqtt_url.clone();
    config.mqtt.client_id = "hrs-demo-gateway".into();
    config.http.addr = http_addr;
    // The demo is open (contract 1.1): no login, every request an admin named anonymous.
    config.auth.mode = crate::access::AuthMode::Open;
    config.data_dir = data_dir.join("gateway");
    let gw = crate::app::start::start(config, Arc::new(SystemClock)).await?;

    let shutdown = CancellationToken::new();
    let mut simulators = Vec::new();
    let jt808_port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
    for site in SITES {
        let mut agent_text = site
            .agent
            .replace("{{MQTT_URL}}", &mqtt_url)
            .replace("{{DATA_DIR}}", &data_dir.display().to_string())
            .replace("{{JT808_PORT}}", &jt808_port.to_string());
        if let Some(sim) = site.simulator {
            let sim_config = edge_agent::SimulatorConfig::from_toml_str(sim)
                .with_context(|| format!("demo simulator of {}", site.name))?;
            let handle = edge_agent::Simulator::start(sim_config)
                .await
                .with_context(|| format!("starting the simulator of {}", site.name))?;
            for dev in handle.devices() {
                let key = format!("{{{{{}_PORT}}}}", dev.name.to_uppercase().replace('-', "_"));
                agent_text = agent_text.replace(&key, &dev.addr.port().to_string());
            }
            simulators.push(handle);
        }
        let agent_config = edge_agent::AgentConfig::from_toml_str(&agent_text)
            .with_context(|| format!("demo agent of {}", site.name))?;
        let agent = edge_agent::Agent::build(agent_config)
            .await
            .with_context(|| format!("starting the agent of {}", site.name))?;
        let sd = shutdown.clone();
        let name = site.name;
        tokio::spawn(async move {
            if let Err(e) = agent.run(async move { sd.cancelled().await }).await {
                tracing::error!(site = name, error = %e, "demo agent stopped");
            }
        });
    }
    let (_, fleet) = edge_agent::jt808_sim::run_fleet(demo_fleet(jt808_port));

    let api = format!("http://{}", gw.http_addr);
    println!(
        "\nHRS demo is running.\n\
         \n  console          {api}/   (control room, open mode: no login)\
         \n  incidents        {api}/api/v1/incidents\
         \n  open incidents   {api}/api/v1/incidents?state=open\
         \n  sites            {api}/api/v1/sites\
         \n  live points      {api}/api/v1/sites/mine-01/points\
         \n  event stream     {api}/api/v1/events   (Server-Sent Events)\
         \n  metrics          {api}/metrics   (hrs_messages_received_total{{kind=\"readings\"}}: batches that crossed the broker)\
         \n  MQTT broker      {mqtt_url}   (incident events on hrs/v1/incidents/#)\
         \n  data             {}\
         \n\nSimulated: coal mine mine-01 (methane drifts and spikes past 1.0 % and 1.5 %), chemical plant chem-01\
         \n(combustible gas spikes, an interlock bypass every minute), fleet trans-01 (three JT/T 808 terminals over TCP;\
         \nthe dangerous-goods truck speeds every five minutes). Incidents appear within a minute.\
         \nCtrl-C stops.\n",
        data_dir.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
    gw.shutdown.cancel();
    for terminal in fleet {
        terminal.abort();
    }
    for s in simulators {
        s.shutdown().await;
    }
    Ok(())
}

/// The fleet of trans-01: three terminals (a dangerous-goods truck, a passenger bus, a freight
/// lorry) driving near Anyang at 40-42 km/h and reporting every two seconds. The truck speeds
/// at 88 km/h for 40 s from 20 s after the start and then every five minutes, past its 80 km/h
/// limit for longer than the 10 s the rule holds: an overspeed alarm within a minute.
fn demo_fleet(port: u16) -> edge_agent::jt808_sim::FleetConfig {
    use edge_agent::jt808_sim::{FleetConfig, SpeedScript};
    FleetConfig {
        addr: format!("127.0.0.1:{port}"),
        terminals: 3,
        first: 13_800_000_001,
        interval: Duration::from_secs(2),
        layout: None,
        ramp: Duration::from_millis(100),
        speeds: (0..288)
            .map(|k| SpeedScript {
                terminal: "13800000001".into(),
                speed_kmh: 88.0,
                from: Duration::from_secs(20 + 300 * k),
                for_: Duration::from_secs(40),
            })
            .collect(),
        drive_rest: None,
        reregister: true,
        stop_after: None,
    }
}

/// Where the demo keeps its data by default (for docs and tests).
pub fn default_data_dir() -> &'static Path {
    Path::new("hrs-demo-data")
}
