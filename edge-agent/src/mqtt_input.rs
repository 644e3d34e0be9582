//! Devices that speak MQTT themselves: a JSON message maps, field by field, to readings.

use crate::config::{json_pointer, MqttInputConfig};
use telemetry::{parse_time, Reading, Timestamp, Value};

/// Readings out of one message of an MQTT device. Fields that are absent give no reading;
/// a field that is present but neither a number nor a bool gives a `bad` reading; a message
/// that is not a JSON object is refused whole.
pub fn decode_message(
    input: &MqttInputConfig,
    payload: &[u8],
    now: Timestamp,
) -> Result<Vec<Reading>, String> {
    let json: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| format!("mqtt input {}: not JSON: {e}", input.name))?;
    if !json.is_object() {
        return Err(format!(
            "mqtt input {}: payload is not a JSON object",
            input.name
        ));
    }
    let ts = match input
        .ts_field
        .as_deref()
        .and_then(|f| json.pointer(&json_pointer(f)))
    {
        None | Some(serde_json::Value::Null) => now,
        Some(serde_json::Value::String(s)) => {
            parse_time(s).map_err(|e| format!("mqtt input {}: time field: {e}", input.name))?
        }
        Some(_) => {
            return Err(format!(
                "mqtt input {}: time field is not an RFC 3339 string",
                input.name
            ))
        }
    };
    let mut out = Vec::new();
    for p in &input.points {
        match json.pointer(&json_pointer(&p.field)) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Bool(b)) => {
                out.push(Reading::good(p.point.clone(), ts, Value::Bool(*b)))
            }
            Some(serde_json::Value::Number(n)) => {
                match n.as_f64().map(|v| v * p.scale + p.offset) {
                    Some(v) if v.is_finite() => {
                        out.push(Reading::good(p.point.clone(), ts, Value::Number(v)))
                    }
                    _ => out.push(Reading::bad(
                        p.point.clone(),
                        ts,
                        format!("field {} is not a finite number", p.field),
                    )),
                }
            }
            Some(_) => out.push(Reading::bad(
                p.point.clone(),
                ts,
                format!("field {} is not a number or bool", p.field),
            )),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_readings() {
        let input: MqttInputConfig = toml::from_str(
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
            [[points]]
            point = "CO-1"
            field = "co"
            quantity = "co"
            unit = "ppm"
            "#,
        )
        .unwrap();
        let now = parse_time("2026-11-28T10:00:00Z").unwrap();
        let r = decode_message(
            &input,
            br#"{"t":"2026-11-28T09:59:59Z","gas":{"ch4":42},"fan":true,"co":"x"}"#,
            now,
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].value, Value::Number(0.42));
        assert_eq!(r[0].ts, parse_time("2026-11-28T09:59:59Z").unwrap());
        assert_eq!(r[1].value, Value::Bool(true));
        assert_eq!(r[2].quality, telemetry::Quality::Bad);
        assert!(decode_message(&input, b"[1]", now).is_err());
        let r = decode_message(&input, br#"{"fan":false}"#, now).unwrap();
        assert_eq!((r.len(), r[0].ts), (1, now));
    }
}
