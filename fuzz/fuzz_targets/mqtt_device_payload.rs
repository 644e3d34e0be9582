//! A device's own MQTT payload maps to readings or is refused, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn input() -> &'static edge_agent::config::MqttInputConfig {
    static INPUT: OnceLock<edge_agent::config::MqttInputConfig> = OnceLock::new();
    INPUT.get_or_init(|| {
        toml::from_str(
            r#"
            name = "gas"
            topic = "dev/gas/+"
            ts_field = "t"
            [[points]]
            point = "CH4-9"
            field = "/gas/ch4"
            scale = 0.01
            quantity = "ch4"
            unit = "%"
            [[points]]
            point = "FAN-1"
            field = "fan"
            quantity = "operation_active"
            unit = "bool"
            "#,
        )
        .expect("fuzz input config")
    })
}

fuzz_target!(|data: &[u8]| {
    let now = telemetry::parse_time("2026-11-28T10:00:00Z").unwrap();
    if let Ok(readings) = edge_agent::mqtt_input::decode_message(input(), data, now) {
        assert!(readings.len() <= 2);
    }
});
