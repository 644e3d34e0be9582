//! `edge-agent probe` against our simulator: the built binary prints, per point, the raw
//! registers in hex, the decoded value with its unit, and the quality (a failure with its
//! reason), for addresses written as integrators write them.

use edge_agent::{Simulator, SimulatorConfig};
use std::process::Output;

const SIM: &str = r#"
[[devices]]
name = "plc"
listen = "127.0.0.1:0"
tick_ms = 1000
values = [
  { function = "holding", address = 0, type = "u16", scale = 0.01, signal = { kind = "static", value = 0.35 } },
  { function = "holding", address = 1, type = "i16", signal = { kind = "static", value = -2 } },
  { function = "input",   address = 0, type = "f32", order = "CDAB", signal = { kind = "static", value = 12.5 } },
  { function = "coil",    address = 4, signal = { kind = "static", value = 1 } },
]
"#;

fn agent_toml(port: u16) -> String {
    format!(
        r#"
agent = "probe-test"
site = "s1"
[[devices]]
name = "plc"
host = "127.0.0.1"
port = {port}
timeout_ms = 500
retries = 0
points = [
  {{ point = "CH4-1", address = "40001", type = "u16", scale = 0.01, quantity = "ch4", unit = "%" }},
  {{ point = "RAW-2", address = "400002", type = "i16", quantity = "level", unit = "m" }},
  {{ point = "T-1",   address = "1!300001", type = "f32", order = "CDAB", quantity = "temperature", unit = "°C" }},
  {{ point = "FAN-1", address = "00005", quantity = "operation_active", unit = "bool" }},
  {{ point = "GONE",  address = "40100", quantity = "level", unit = "m" }},
]
"#
    )
}

async fn probe(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("probe")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_registers_values_and_qualities_of_the_simulator() {
    let sim = Simulator::start(SimulatorConfig::from_toml_str(SIM).unwrap())
        .await
        .unwrap();
    let port = sim.addr("plc").unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, agent_toml(port)).unwrap();
    let cfg = cfg.to_str().unwrap();

    let out = probe(&["--config", cfg]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = |point: &str| -> String {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{point} ")))
            .unwrap_or_else(|| panic!("no line for {point}:\n{stdout}\n{stderr}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        stdout.contains(&format!("device plc 127.0.0.1:{port} unit 1")),
        "{stdout}"
    );
    assert_eq!(
        line("CH4-1"),
        "CH4-1 400001 u16 ABCD x0.01 0x0023 0.35 % good"
    );
    assert_eq!(line("RAW-2"), "RAW-2 400002 i16 ABCD 0xFFFE -2 m good");
    assert_eq!(
        line("T-1"),
        "T-1 1!300001 f32 CDAB 0x0000 0x4148 12.5 °C good"
    );
    assert_eq!(line("FAN-1"), "FAN-1 000005 bool 1 true bool good");
    assert_eq!(
        line("GONE"),
        "GONE 400100 u16 ABCD - - bad (modbus exception IllegalDataAddress)"
    );
    // A point that is not good makes the probe fail, after printing everything.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 of 5 points are not good"), "{stderr}");

    let out = probe(&["--config", cfg, "--device", "pump"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no device \"pump\"") && stderr.contains("devices: plc"),
        "{stderr}"
    );

    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_of_one_device_that_answers_exits_zero() {
    let sim = Simulator::start(SimulatorConfig::from_toml_str(SIM).unwrap())
        .await
        .unwrap();
    let port = sim.addr("plc").unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    let toml = agent_toml(port)
        .lines()
        .filter(|l| !l.contains("GONE"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, toml).unwrap();
    let out = probe(&["--config", cfg.to_str().unwrap(), "--device", "plc"]).await;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    sim.shutdown().await;
}
