//! `edge-agent probe`: one poll of each device, with what came off the wire, so that byte
//! order and scale are checked at the site before going live.

use crate::clock::SharedClock;
use crate::config::DeviceConfig;
use crate::metrics::AgentMetrics;
use crate::poll::{point_items, point_value, DevicePoller, ReadData};
use std::fmt::Write as _;
use telemetry::{Quality, Value};

/// What one point gave in a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeLine {
    pub point: String,
    /// The address as integrators write it (`400001`, `3!300010.2`).
    pub address: String,
    /// `u16 ABCD x0.01`: type, order, scale and offset as configured.
    pub decoding: String,
    /// The raw items read: registers as `0x0023 0x0000`, bits as `1`/`0`; empty when the
    /// read failed.
    pub raw: String,
    pub value: Option<Value>,
    pub unit: String,
    pub quality: Quality,
    /// Why the point is `bad`.
    pub reason: Option<String>,
}

/// Poll `device` once and describe every point, in the order of its requests.
pub async fn probe_device(device: &DeviceConfig, clock: SharedClock) -> Vec<ProbeLine> {
    let mut poller = DevicePoller::new(device.clone(), AgentMetrics::new(), clock);
    let plan = poller.plan().to_vec();
    let mut out = Vec::with_capacity(device.points.len());
    for req in &plan {
        let result = poller.read(req).await;
        for &i in &req.points {
            let p = &device.points[i];
            let mut decoding = match p.bit {
                _ if p.function.is_bits() => "bool".to_string(),
                Some(b) => format!("bool bit {b} {}", p.order),
                None => format!("{} {}", p.ty(), p.order),
            };
            if p.scale != 1.0 {
                let _ = write!(decoding, " x{}", p.scale);
            }
            if p.offset != 0.0 {
                let _ = write!(decoding, " {:+}", p.offset);
            }
            let (raw, value, reason) = match &result {
                Err(f) => (String::new(), None, Some(f.reason.clone())),
                Ok(data) => {
                    let raw = match point_items(p, req, data) {
                        ReadData::Bits(b) => b
                            .iter()
                            .map(|x| if *x { "1" } else { "0" })
                            .collect::<Vec<_>>()
                            .join(" "),
                        ReadData::Registers(r) => r
                            .iter()
                            .map(|w| format!("0x{w:04X}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    };
                    match point_value(p, req, data) {
                        Ok(v) => (raw, Some(v), None),
                        Err(e) => (raw, None, Some(e)),
                    }
                }
            };
            out.push(ProbeLine {
                point: p.point.to_string(),
                address: p.written_address().to_string(),
                decoding,
                raw,
                quality: if value.is_some() {
                    Quality::Good
                } else {
                    Quality::Bad
                },
                value,
                unit: p.unit.to_string(),
                reason,
            });
        }
    }
    out
}

/// The lines as a table for people: point, address, decoding, raw, value and unit, quality.
pub fn render(lines: &[ProbeLine]) -> String {
    let rows: Vec<[String; 6]> = lines
        .iter()
        .map(|l| {
            let value = match &l.value {
                Some(Value::Number(n)) => format!("{n} {}", l.unit),
                Some(Value::Bool(b)) => format!("{b} {}", l.unit),
                Some(other) => format!("{other:?}"),
                None => "-".into(),
            };
            let quality = match (&l.quality, &l.reason) {
                (Quality::Good, _) => "good".to_string(),
                (q, Some(r)) => format!("{} ({r})", q.as_str()),
                (q, None) => q.as_str().to_string(),
            };
            [
                l.point.clone(),
                l.address.clone(),
                l.decoding.clone(),
                if l.raw.is_empty() {
                    "-".into()
                } else {
                    l.raw.clone()
                },
                value,
                quality,
            ]
        })
        .collect();
    let header = ["point", "address", "decoding", "raw", "value", "quality"];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                let _ = write!(line, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What a probe of a configuration found: the report for people and the count of points that
/// are not good.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub text: String,
    pub points: usize,
    pub not_good: usize,
}

/// Probe every device of `cfg` (or only `device`) once. An unknown device name is refused
/// with the names there are.
pub async fn probe_config(
    cfg: &crate::AgentConfig,
    device: Option<&str>,
    clock: SharedClock,
) -> Result<ProbeReport, String> {
    let devices: Vec<&DeviceConfig> = cfg
        .devices
        .iter()
        .filter(|d| device.is_none_or(|n| d.name == n))
        .collect();
    if devices.is_empty() {
        let names: Vec<&str> = cfg.devices.iter().map(|d| d.name.as_str()).collect();
        return Err(match device {
            Some(n) => format!(
                "no device {n:?} in the configuration (devices: {})",
                names.join(", ")
            ),
            None => "the configuration has no [[devices]] to probe".into(),
        });
    }
    let mut report = ProbeReport {
        text: String::new(),
        points: 0,
        not_good: 0,
    };
    for d in devices {
        let _ = writeln!(
            report.text,
            "device {} {} unit {} {:?}, timeout {} ms",
            d.name,
            d.endpoint(),
            d.unit_id,
            d.transport,
            d.timeout_ms
        );
        let lines = probe_device(d, clock.clone()).await;
        report.points += lines.len();
        report.not_good += lines.iter().filter(|l| l.quality != Quality::Good).count();
        report.text.push_str(&render(&lines));
    }
    Ok(report)
}
