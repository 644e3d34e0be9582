//! pymodbus as the real device: a register map of every type in every order (packed by
//! Python's struct), read by our poller; values asserted exactly.

use edge_agent::config::DeviceConfig;
use edge_agent::metrics::AgentMetrics;
use edge_agent::poll::DevicePoller;
use edge_agent::SystemClock;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use telemetry::{Quality, Value};

mod common;

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn poller_reads_every_type_and_order_from_pymodbus() {
    let python = common::workspace_root().join(".venv/bin/python");
    if !python.exists() {
        eprintln!(
            "\n\n*** SKIPPED: {} is missing. Create it: python3 -m venv .venv && .venv/bin/pip install 'pymodbus==3.*' paho-mqtt ***\n\n",
            python.display()
        );
        return;
    }
    let port = common::free_port();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/register_map.py");
    let _device = Kill(
        Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pymodbus"),
    );
    assert!(
        common::wait_for_port(port, Duration::from_secs(20)),
        "pymodbus did not listen"
    );

    let types: [(&str, u16, f64); 8] = [
        ("u16", 1, 4660.0),
        ("i16", 1, -2.0),
        ("u32", 2, 287454020.0),
        ("i32", 2, -123456789.0),
        ("u64", 4, 4822678189205111.0),
        ("i64", 4, -9007199254740991.0),
        ("f32", 2, -2.5),
        ("f64", 4, 123.456),
    ];
    let mut points = String::new();
    let mut expected = Vec::new();
    let mut address = 0u16;
    for order in ["ABCD", "CDAB", "BADC", "DCBA"] {
        for (ty, width, value) in types {
            let point = format!("{}-{order}", ty.to_uppercase());
            points.push_str(&format!(
                "{{ point = \"{point}\", function = \"holding\", address = {address}, type = \"{ty}\", order = \"{order}\", quantity = \"level\", unit = \"m\" }},\n"
            ));
            expected.push((point, Value::Number(value)));
            address += width;
        }
    }
    for (bit, set) in [(0, true), (5, true), (6, false)] {
        points.push_str(&format!(
            "{{ point = \"BIT{bit}\", function = \"holding\", address = 80, type = \"bool\", bit = {bit}, quantity = \"interlock_trip\", unit = \"bool\" }},\n"
        ));
        expected.push((format!("BIT{bit}"), Value::Bool(set)));
    }
    points.push_str(
        "{ point = \"SCALED\", function = \"holding\", address = 0, type = \"u16\", scale = 0.001, offset = -1, quantity = \"level\", unit = \"m\" },\n",
    );
    expected.push(("SCALED".into(), Value::Number(4660.0 * 0.001 - 1.0)));
    points.push_str("{ point = \"NOWHERE\", function = \"holding\", address = 900, quantity = \"level\", unit = \"m\" },\n");
    let device: DeviceConfig = toml::from_str(&format!(
        "name = \"py\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout_ms = 2000\npoints = [\n{points}]\n"
    ))
    .unwrap();
    let mut poller = DevicePoller::new(device, AgentMetrics::new(), Arc::new(SystemClock));
    assert_eq!(
        poller.plan().len(),
        2,
        "81 contiguous registers in one request, plus the missing one"
    );
    let readings = poller.poll_once().await;
    for (point, value) in expected {
        let r = readings.iter().find(|r| r.point.as_str() == point).unwrap();
        assert_eq!(r.quality, Quality::Good, "{point}: {:?}", r.reason);
        assert_eq!(r.value, value, "{point}");
    }
    let missing = readings
        .iter()
        .find(|r| r.point.as_str() == "NOWHERE")
        .unwrap();
    assert_eq!(missing.quality, Quality::Bad);
    assert_eq!(
        missing.reason.as_deref(),
        Some("modbus exception IllegalDataAddress")
    );
}
