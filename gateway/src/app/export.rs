//! `gateway export-history`: a period of real history in replay's input form. The readings
//! come from the time-series store (`timeseries::history`), the catalogues (births) from the
//! store's history of them (`store::history`): each agent's catalogue in force when the period
//! began, first, then every catalogue taken within it, before the readings that followed it.
//! So zone and range rules replay as they ran. Readings of one agent with one timestamp make
//! one batch (epoch `history`, seqs from 1 per agent).

use crate::config::GatewayConfig;
use crate::store::Store;
use crate::timeseries::history::{read_period, HistorySource, Sample, Samples};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use telemetry::catalogue::ValueKind;
use telemetry::{
    AgentId, Batch, Catalogue, PointId, Position, Quality, Quantity, Reading, SiteId, Timestamp,
    TopicScheme, Value,
};

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub from: Timestamp,
    pub until: Timestamp,
    /// Only these sites (`None`: every site).
    pub sites: Option<BTreeSet<String>>,
    pub source: HistorySource,
}

impl ExportRequest {
    /// From the command line's words.
    pub fn new(
        since: &str,
        until: &str,
        sites: Option<String>,
        source: &str,
    ) -> anyhow::Result<ExportRequest> {
        let from = telemetry::parse_time(since).with_context(|| format!("--since {since:?}"))?;
        let until_t = telemetry::parse_time(until).with_context(|| format!("--until {until:?}"))?;
        if until_t <= from {
            bail!("--until must lie after --since");
        }
        let source = match source {
            "victoria-metrics" => HistorySource::VictoriaMetrics,
            "influxdb" => HistorySource::InfluxDb,
            other => bail!("--source {other:?} is not victoria-metrics or influxdb"),
        };
        let sites = sites.map(|s| s.split(',').map(|s| s.trim().to_string()).collect());
        Ok(ExportRequest {
            from,
            until: until_t,
            sites,
            source,
        })
    }

    fn wants(&self, site: &str) -> bool {
        self.sites.as_ref().is_none_or(|s| s.contains(site))
    }
}

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportCounts {
    pub catalogues: u64,
    pub batches: u64,
}

impl ExportCounts {
    pub fn lines(&self) -> u64 {
        self.catalogues + self.batches
    }
}

/// The reading a sample was: its value as the point's quantity carries it.
fn reading_of(point: PointId, s: &Sample) -> Option<Reading> {
    let ts = chrono::DateTime::from_timestamp_millis(s.ts_ms)?;
    let quality = match s.fields.get("quality").map(|q| *q as i64) {
        Some(1) => Quality::Uncertain,
        Some(2) => Quality::Bad,
        Some(3) => Quality::Calibration,
        _ => Quality::Good,
    };
    let kind = s
        .tag("quantity")
        .and_then(|q| serde_json::from_value::<Quantity>(serde_json::json!(q)).ok())
        .map(|q| q.value_kind());
    let f = |k: &str| s.fields.get(k).copied();
    let value = match (kind, f("value"), f("lat"), f("lon")) {
        (Some(ValueKind::Bool), Some(v), _, _) => Value::Bool(v != 0.0),
        (_, Some(v), _, _) => Value::Number(v),
        (_, None, Some(lat), Some(lon)) => Value::Position(Position {
            lat,
            lon,
            speed_kmh: f("speed_kmh"),
            heading: f("heading"),
            alt_m: f("alt_m"),
        }),
        _ => Value::Null,
    };
    let reason = (value == Value::Null || quality == Quality::Bad)
        .then(|| "as kept by the time-series store".to_string());
    let quality = if value == Value::Null {
        Quality::Bad
    } else {
        quality
    };
    Some(Reading {
        point,
        ts,
        value,
        quality,
        reason,
    })
}

/// One line of replay input.
fn line(out: &mut dyn Write, topic: &str, payload: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &serde_json::json!({"topic": topic, "payload": payload}),
    )?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Write the period's catalogues and readings as replay input (topics of replay's scheme).
pub fn write_history(
    catalogues: &[(i64, SiteId, Catalogue)],
    samples: &Samples,
    out: &mut dyn Write,
) -> anyhow::Result<ExportCounts> {
    let scheme = TopicScheme::default();
    // Batches by time, then site and agent: readings of one agent at one time.
    let mut batches: BTreeMap<(i64, String, String), Vec<Reading>> = BTreeMap::new();
    for ((site, agent, point, ts), s) in samples {
        let Ok(point) = PointId::new(point.clone()) else {
            continue;
        };
        if let Some(r) = reading_of(point, s) {
            batches
                .entry((*ts, site.clone(), agent.clone()))
                .or_default()
                .push(r);
        }
    }
    let mut counts = ExportCounts::default();
    let mut seqs: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut births = catalogues.iter().peekable();
    for ((ts, site, agent), readings) in batches {
        while let Some((_, bsite, cat)) = births.next_if(|(at, _, _)| *at <= ts) {
            line(out, &scheme.birth(bsite, &cat.agent), cat)?;
            counts.catalogues += 1;
        }
        let (Ok(site_id), Ok(agent_id)) = (SiteId::new(site.clone()), AgentId::new(agent.clone()))
        else {
            continue;
        };
        let seq = seqs.entry((site, agent)).or_default();
        *seq += 1;
        let batch = Batch {
            agent: agent_id.clone(),
            epoch: "history".into(),
            seq: *seq,
            readings,
        };
        line(out, &scheme.readings(&site_id, &agent_id), &batch)?;
        counts.batches += 1;
    }
    for (_, site, cat) in births {
        line(out, &scheme.birth(site, &cat.agent), cat)?;
        counts.catalogues += 1;
    }
    Ok(counts)
}

/// Export the period of `req`: catalogues from the configured store, readings from the
/// configured time-series store.
pub async fn export(
    config: &GatewayConfig,
    req: &ExportRequest,
    out: &mut dyn Write,
) -> anyhow::Result<ExportCounts> {
    let store = Store::open(&config.store_url())
        .await
        .context("opening the store")?;
    let (from_ms, until_ms) = (req.from.timestamp_millis(), req.until.timestamp_millis());
    let mut catalogues = Vec::new();
    for v in store.catalogues_between(from_ms, until_ms).await? {
        if !req.wants(&v.site) {
            continue;
        }
        let (Ok(site), Ok(cat)) = (
            SiteId::new(v.site.clone()),
            serde_json::from_str::<Catalogue>(&v.body),
        ) else {
            tracing::warn!(site = %v.site, agent = %v.agent, "a kept catalogue does not read; left out");
            continue;
        };
        // A catalogue in force before the period goes first.
        catalogues.push((v.at_ms.max(from_ms), site, cat));
    }
    let mut samples = read_period(&config.timeseries, req.source, req.from, req.until).await?;
    samples.retain(|k, _| req.wants(&k.0));
    write_history(&catalogues, &samples, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(point: &str, quantity: &str, ts_ms: i64, value: f64) -> Sample {
        Sample {
            tags: [("quantity", quantity), ("point", point)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ts_ms,
            fields: [("value".to_string(), value), ("quality".to_string(), 0.0)].into(),
        }
    }

    #[test]
    fn births_come_before_the_readings_that_followed_them() {
        let cat: Catalogue = serde_json::from_str(
            r#"{"agent":"edge","points":[{"point":"CH4-101","quantity":"ch4","unit":"%"}]}"#,
        )
        .unwrap();
        let site = SiteId::new("mine-01").unwrap();
        let catalogues = vec![(1000, site.clone(), cat.clone()), (2500, site, cat)];
        let mut samples = Samples::new();
        for (ts, v) in [(1000, 0.5), (2000, 0.9), (3000, 1.1)] {
            let key = ("mine-01".into(), "edge".into(), "CH4-101".into(), ts);
            samples.insert(key, sample("CH4-101", "ch4", ts, v));
        }
        let key = ("mine-01".into(), "edge".into(), "TRIP-1".into(), 3000);
        samples.insert(key, sample("TRIP-1", "interlock_trip", 3000, 1.0));
        let mut out = Vec::new();
        let counts = write_history(&catalogues, &samples, &mut out).unwrap();
        assert_eq!(
            counts,
            ExportCounts {
                catalogues: 2,
                batches: 3
            }
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let topics: Vec<&str> = lines.iter().map(|l| l["topic"].as_str().unwrap()).collect();
        assert_eq!(
            topics,
            [
                "hrs/v1/sites/mine-01/edge/birth",
                "hrs/v1/sites/mine-01/edge/readings",
                "hrs/v1/sites/mine-01/edge/readings",
                "hrs/v1/sites/mine-01/edge/birth",
                "hrs/v1/sites/mine-01/edge/readings",
            ]
        );
        let last = &lines[4]["payload"];
        assert_eq!(last["seq"], 3);
        assert_eq!(last["readings"][0]["value"], 1.1);
        assert_eq!(last["readings"][1]["value"], true, "{last}");
        // Each payload is what the gateway takes.
        let limits = telemetry::DecodeLimits::default();
        let agent = AgentId::new("edge").unwrap();
        let birth = serde_json::to_vec(&lines[0]["payload"]).unwrap();
        telemetry::decode_catalogue(&birth, Some(&agent), &limits).unwrap();
    }
}
