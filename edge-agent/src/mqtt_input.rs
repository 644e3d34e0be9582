//! Devices that speak MQTT themselves: a JSON message maps, through JSON pointers, to
//! readings: each point's value, its time (the input's or its own; RFC 3339, epoch seconds or
//! milliseconds, local times in the input's zone) and its quality.

use crate::config::{json_pointer, MqttInputConfig, MqttPointConfig};
use crate::device_time::parse_device_time;
use serde_json::Value as Json;
use telemetry::{Quality, Reading, Timestamp, Value};

/// The time of one point's reading: its own field, else the input's, else `now`. A field that
/// is present but cannot be read refuses the message (its readings would be misplaced in time).
fn reading_time(
    input: &MqttInputConfig,
    field: Option<&str>,
    json: &Json,
    now: Timestamp,
) -> Result<Timestamp, String> {
    match field.and_then(|f| json.pointer(&json_pointer(f))) {
        None | Some(Json::Null) => Ok(now),
        Some(v) => parse_device_time(v, input.ts_format, input.zone())
            .map_err(|e| format!("mqtt input {}: time field: {e}", input.name)),
    }
}

/// A point's quality as its device wrote it: absent or null = good; `0`, `true` or a quality
/// name (`good`, `uncertain`, `bad`, `calibration`, any case) as said; anything else is bad,
/// with the value as the reason (Neuron puts an error code there).
fn written_quality(field: &str, v: Option<&Json>) -> (Quality, Option<String>) {
    let bad = |v: &Json| {
        (
            Quality::Bad,
            Some(format!("device quality {} = {v}", json_pointer(field))),
        )
    };
    match v {
        None | Some(Json::Null) => (Quality::Good, None),
        Some(Json::Bool(true)) => (Quality::Good, None),
        Some(Json::Number(n)) if n.as_f64() == Some(0.0) => (Quality::Good, None),
        Some(Json::String(s)) => match s.to_ascii_lowercase().as_str() {
            "good" | "ok" => (Quality::Good, None),
            "uncertain" => (Quality::Uncertain, None),
            "calibration" => (Quality::Calibration, None),
            _ => bad(&Json::String(s.clone())),
        },
        Some(other) => bad(other),
    }
}

/// Readings out of one message of an MQTT device. A point whose value field is absent gives no
/// reading, unless its quality field says it is not good (a device that reports a failed
/// sensor without a value: a `bad` reading with the device's reason); a value that is neither
/// a number nor a bool gives a `bad` reading; a message that is not a JSON object, or whose
/// time field cannot be read, is refused whole.
pub fn decode_message(
    input: &MqttInputConfig,
    payload: &[u8],
    now: Timestamp,
) -> Result<Vec<Reading>, String> {
    let json: Json = serde_json::from_slice(payload)
        .map_err(|e| format!("mqtt input {}: not JSON: {e}", input.name))?;
    if !json.is_object() {
        return Err(format!(
            "mqtt input {}: payload is not a JSON object",
            input.name
        ));
    }
    let input_ts = reading_time(input, input.ts_field.as_deref(), &json, now)?;
    let mut out = Vec::new();
    for p in &input.points {
        let ts = match &p.ts_field {
            Some(f) => reading_time(input, Some(f), &json, input_ts)?,
            None => input_ts,
        };
        if let Some(r) = point_reading(input, p, &json, ts) {
            out.push(r);
        }
    }
    Ok(out)
}

fn point_reading(
    input: &MqttInputConfig,
    p: &MqttPointConfig,
    json: &Json,
    ts: Timestamp,
) -> Option<Reading> {
    let (quality, reason) = match p.quality_field.as_ref().or(input.quality_field.as_ref()) {
        Some(f) => written_quality(f, json.pointer(&json_pointer(f))),
        None => (Quality::Good, None),
    };
    let value = match json.pointer(&json_pointer(&p.field)) {
        None | Some(Json::Null) if quality == Quality::Good => return None,
        // No value: bad whatever the device's quality (a null value is only ever bad).
        None | Some(Json::Null) => {
            return Some(Reading::bad(
                p.point.clone(),
                ts,
                reason.unwrap_or_else(|| {
                    format!("device says {} and gives no value", quality.as_str())
                }),
            ))
        }
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => match n.as_f64().map(|v| v * p.scale + p.offset) {
            Some(v) if v.is_finite() => Value::Number(v),
            _ => {
                return Some(Reading::bad(
                    p.point.clone(),
                    ts,
                    format!("field {} is not a finite number", p.field),
                ))
            }
        },
        Some(_) => {
            return Some(Reading::bad(
                p.point.clone(),
                ts,
                format!("field {} is not a number or bool", p.field),
            ))
        }
    };
    let mut r = Reading::good(p.point.clone(), ts, value);
    if quality != Quality::Good {
        r.quality = quality;
        r.reason = reason;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::parse_time;

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

    fn neuron() -> MqttInputConfig {
        toml::from_str(
            r#"
            name = "neuron"
            topic = "neuron/+"
            ts_field = "/timestamp"
            ts_format = "epoch_ms"
            [[points]]
            point = "CH4-1"
            field = "/values/ch4"
            quality_field = "/errors/ch4"
            quantity = "ch4"
            unit = "%"
            [[points]]
            point = "CO-1"
            field = "/values/co"
            quality_field = "/errors/co"
            quantity = "co"
            unit = "ppm"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn neurons_own_format_with_epoch_milliseconds_and_errors() {
        let input = neuron();
        let now = parse_time("2026-11-28T10:00:00Z").unwrap();
        let r = decode_message(
            &input,
            br#"{"node":"plc","group":"g","timestamp":1795831199000,"values":{"ch4":1.62},"errors":{"co":2014}}"#,
            now,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].value, Value::Number(1.62));
        assert_eq!(r[0].quality, telemetry::Quality::Good);
        assert_eq!(r[0].ts, parse_time("2026-11-28T01:59:59Z").unwrap());
        assert_eq!(r[1].quality, telemetry::Quality::Bad);
        assert_eq!(
            r[1].reason.as_deref(),
            Some("device quality /errors/co = 2014")
        );
        // An unreadable time refuses the message rather than misplacing it.
        let e = decode_message(&input, br#"{"timestamp":"soon","values":{"ch4":1}}"#, now);
        assert!(e.unwrap_err().contains("time field"));
    }

    #[test]
    fn local_times_in_the_inputs_zone_and_per_point_times_and_qualities() {
        let input: MqttInputConfig = toml::from_str(
            r#"
            name = "vendor"
            topic = "v/#"
            ts_field = "time"
            ts_zone = "Asia/Shanghai"
            quality_field = "/q"
            [[points]]
            point = "T-1"
            field = "/data/t"
            quantity = "temperature"
            unit = "°C"
            [[points]]
            point = "L-1"
            field = "/data/l"
            ts_field = "/data/l_time"
            quality_field = "/data/l_q"
            quantity = "level"
            unit = "m"
            "#,
        )
        .unwrap();
        let now = parse_time("2026-11-28T10:00:00Z").unwrap();
        let r = decode_message(
            &input,
            r#"{"time":"2026-11-28 09:59:59","q":"uncertain","data":{"t":21.5,"l":3,"l_time":"2026-11-28 08:00:00","l_q":0}}"#.as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r[0].ts, parse_time("2026-11-28T01:59:59Z").unwrap());
        assert_eq!(r[0].quality, telemetry::Quality::Uncertain);
        assert_eq!(r[1].ts, parse_time("2026-11-28T00:00:00Z").unwrap());
        assert_eq!(r[1].quality, telemetry::Quality::Good);
    }
}
