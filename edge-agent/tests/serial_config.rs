//! Serial lines in the configuration: the contract's keys, one setting per line, the frame gap.

use edge_agent::config::{Parity, Transport};
use edge_agent::AgentConfig;
use std::time::Duration;

fn device(name: &str, extra: &str) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\ntransport = \"rtu_serial\"\n{extra}\n  [[devices.points]]\n  point = \"P-{name}\"\n  address = \"40001\"\n  quantity = \"level\"\n  unit = \"m\"\n"
    )
}

fn load(devices: &str) -> Result<AgentConfig, String> {
    AgentConfig::from_toml_str(&format!("agent = \"a\"\nsite = \"s\"\n{devices}"))
        .map_err(|e| e.to_string())
}

#[test]
fn the_contracts_keys_load_and_the_gap_follows_the_baud_rate() {
    let cfg = load(&(device(
        "g1",
        "serial_port = \"/dev/ttyUSB0\"\nbaud = 9600\nparity = \"even\"\nstop_bits = 1\nunit_id = 1",
    ) + &device(
        "g2",
        "serial_port = \"/dev/ttyUSB0\"\nbaud = 9600\nparity = \"even\"\nunit_id = 2\nframe_gap_ms = 20",
    )))
    .unwrap();
    let d = &cfg.devices[0];
    assert_eq!(
        (d.transport, d.parity, d.stop_bits, d.data_bits),
        (Transport::RtuSerial, Parity::Even, 1, 8)
    );
    // 3.5 characters of 11 bits at 9600 bit/s.
    assert_eq!(d.frame_gap(), Duration::from_micros(4011));
    assert_eq!(d.endpoint(), "/dev/ttyUSB0 9600 8E1");
    assert_eq!(cfg.devices[1].frame_gap(), Duration::from_millis(20));
    let mut fast = d.clone();
    fast.baud = 115_200;
    assert_eq!(fast.frame_gap(), Duration::from_micros(1750));
}

#[test]
fn serial_mistakes_are_refused_with_the_place_named() {
    for (devices, says) in [
        (device("g1", ""), "devices[0] (g1): transport = \"rtu_serial\" needs serial_port"),
        (device("g1", "serial_port = \"/dev/ttyS0\"\nbaud = 50"), "baud = 50 must be 300..921600"),
        (device("g1", "serial_port = \"/dev/ttyS0\"\nstop_bits = 3"), "stop_bits = 3 must be 1 or 2"),
        (device("g1", "serial_port = \"/dev/ttyS0\"\nhost = \"10.0.0.1\""), "host applies only to TCP"),
        (
            device("g1", "serial_port = \"/dev/ttyS0\"") + &device("g2", "serial_port = \"/dev/ttyS0\"\nbaud = 19200"),
            "devices[1] (g2): serial_port /dev/ttyS0 is shared with device g1 but its baud",
        ),
        (
            "[[devices]]\nname = \"t\"\nhost = \"127.0.0.1\"\nserial_port = \"/dev/ttyS0\"\n  [[devices.points]]\n  point = \"X\"\n  address = \"40001\"\n  quantity = \"level\"\n  unit = \"m\"\n".to_string(),
            "serial_port applies only to transport = \"rtu_serial\"",
        ),
    ] {
        let e = load(&devices).expect_err(&devices);
        assert!(e.contains(says), "{devices}\n{e}");
    }
}
