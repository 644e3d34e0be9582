//! Reading a period of readings back from the time-series store, as the writer wrote them
//! (`docs/timeseries.md`): VictoriaMetrics through its export API (`GET /api/v1/export`, one
//! JSON line per series `reading_<field>`), InfluxDB through its query API (`POST
//! /api/v2/query`, a Flux query, CSV back). Samples come back per series and timestamp with
//! their fields joined: `value`, `quality`, and for positions `lat`, `lon`, `speed_kmh`,
//! `heading`, `alt_m`.

use super::{TimeSeriesConfig, TimeSeriesError};
use std::collections::BTreeMap;
use telemetry::Timestamp;

/// Where a period is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    VictoriaMetrics,
    InfluxDb,
}

/// One reading as the time-series store kept it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// The series' tags: `site`, `agent`, `point`, `quantity`, `location`, `category`.
    pub tags: BTreeMap<String, String>,
    pub ts_ms: i64,
    /// Field name (without `reading_`) to value.
    pub fields: BTreeMap<String, f64>,
}

impl Sample {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// Samples by (site, agent, point, timestamp), their fields joined.
pub type Samples = BTreeMap<(String, String, String, i64), Sample>;

fn add_field(out: &mut Samples, tags: &BTreeMap<String, String>, field: &str, ts_ms: i64, v: f64) {
    let key = |k: &str| tags.get(k).cloned().unwrap_or_default();
    let s = out
        .entry((key("site"), key("agent"), key("point"), ts_ms))
        .or_insert_with(|| Sample {
            tags: tags.clone(),
            ts_ms,
            fields: BTreeMap::new(),
        });
    s.fields.insert(field.to_string(), v);
}

/// The lines of VictoriaMetrics' `/api/v1/export` (`{"metric":{..},"values":[..],
/// "timestamps":[..]}`) of the series `reading_<field>`, into `out`.
pub fn parse_victoria_export(text: &str, out: &mut Samples) -> Result<(), TimeSeriesError> {
    #[derive(serde::Deserialize)]
    struct Line {
        metric: BTreeMap<String, String>,
        values: Vec<Option<f64>>,
        timestamps: Vec<i64>,
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut l: Line = serde_json::from_str(line)
            .map_err(|e| TimeSeriesError::Read(format!("an export line: {e}")))?;
        let Some(field) = l
            .metric
            .remove("__name__")
            .and_then(|n| n.strip_prefix("reading_").map(str::to_string))
        else {
            continue;
        };
        for (v, ts) in l.values.iter().zip(&l.timestamps) {
            if let Some(v) = v {
                add_field(out, &l.metric, &field, *ts, *v);
            }
        }
    }
    Ok(())
}

/// One line of CSV into its cells (quotes as RFC 4180).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().expect("one cell").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().expect("one cell").push(c),
        }
    }
    cells
}

/// InfluxDB's CSV answer to a Flux query (tables separated by blank lines, each with its
/// header row; `#` annotation rows skipped), into `out`.
pub fn parse_influx_csv(text: &str, out: &mut Samples) -> Result<(), TimeSeriesError> {
    let mut header: Option<Vec<String>> = None;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if line.trim().is_empty() {
            header = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let cells = csv_cells(line);
        let Some(h) = &header else {
            header = Some(cells);
            continue;
        };
        let mut tags = BTreeMap::new();
        let (mut time, mut value, mut field) = (None, None, None);
        for (name, cell) in h.iter().zip(cells) {
            match name.as_str() {
                "_time" => time = Some(cell),
                "_value" => value = cell.parse::<f64>().ok(),
                "_field" => field = Some(cell),
                "" | "result" | "table" | "_start" | "_stop" | "_measurement" => {}
                tag => {
                    if !cell.is_empty() {
                        tags.insert(tag.to_string(), cell);
                    }
                }
            }
        }
        let (Some(time), Some(value), Some(field)) = (time, value, field) else {
            continue;
        };
        let ts = telemetry::parse_time(&time)
            .map_err(|e| TimeSeriesError::Read(format!("a CSV time {time:?}: {e}")))?;
        add_field(out, &tags, &field, ts.timestamp_millis(), value);
    }
    Ok(())
}

/// `base` with `path` appended to its own path (a prefix of the base is kept).
fn endpoint(base: &str, path: &str) -> Result<reqwest::Url, TimeSeriesError> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|e| TimeSeriesError::Config(format!("timeseries.url {base:?}: {e}")))?;
    let joined = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    Ok(url)
}

/// Every sample of `[from, until)` in the time-series store of `config`.
pub async fn read_period(
    config: &TimeSeriesConfig,
    source: HistorySource,
    from: Timestamp,
    until: Timestamp,
) -> Result<Samples, TimeSeriesError> {
    let base = config
        .url
        .as_deref()
        .ok_or_else(|| TimeSeriesError::Config("timeseries.url is not set".into()))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(
            config.request_timeout_ms.max(60_000),
        ))
        .build()
        .map_err(TimeSeriesError::Client)?;
    let request = match source {
        HistorySource::VictoriaMetrics => {
            // `end` is inclusive: the last millisecond before `until`.
            let end = until - chrono::Duration::milliseconds(1);
            client.get(endpoint(base, "/api/v1/export")?).query(&[
                (
                    "match[]",
                    format!("{{__name__=~\"{}_.+\"}}", super::MEASUREMENT),
                ),
                ("start", telemetry::format_time(&from)),
                ("end", telemetry::format_time(&end)),
            ])
        }
        HistorySource::InfluxDb => {
            let flux = format!(
                "from(bucket: {:?}) |> range(start: {}, stop: {}) |> filter(fn: (r) => r._measurement == {:?})",
                config.bucket,
                telemetry::format_time(&from),
                telemetry::format_time(&until),
                super::MEASUREMENT
            );
            client
                .post(endpoint(base, "/api/v2/query")?)
                .query(&[("org", config.org.as_str())])
                .header("content-type", "application/vnd.flux")
                .header("accept", "application/csv")
                .body(flux)
        }
    };
    let request = match &config.token {
        Some(t) => request.header("authorization", format!("Token {t}")),
        None => request,
    };
    let resp = request
        .send()
        .await
        .map_err(|e| TimeSeriesError::Read(format!("the time-series store: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| TimeSeriesError::Read(format!("the time-series store's answer: {e}")))?;
    if !status.is_success() {
        return Err(TimeSeriesError::Read(format!(
            "the time-series store answered {status}: {}",
            text.chars().take(500).collect::<String>()
        )));
    }
    let mut out = Samples::new();
    match source {
        HistorySource::VictoriaMetrics => parse_victoria_export(&text, &mut out)?,
        HistorySource::InfluxDb => parse_influx_csv(&text, &mut out)?,
    }
    let (from_ms, until_ms) = (from.timestamp_millis(), until.timestamp_millis());
    out.retain(|k, _| (from_ms..until_ms).contains(&k.3));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victoria_export_lines_join_their_fields() {
        let text = r#"{"metric":{"__name__":"reading_value","site":"mine-01","agent":"edge","point":"CH4-101","quantity":"ch4"},"values":[0.5,0.9],"timestamps":[1000,2000]}
{"metric":{"__name__":"reading_quality","site":"mine-01","agent":"edge","point":"CH4-101","quantity":"ch4"},"values":[0,1],"timestamps":[1000,2000]}
{"metric":{"__name__":"other"},"values":[1],"timestamps":[1]}
"#;
        let mut out = Samples::new();
        parse_victoria_export(text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let s = &out[&("mine-01".into(), "edge".into(), "CH4-101".into(), 2000)];
        assert_eq!(s.fields["value"], 0.9);
        assert_eq!(s.fields["quality"], 1.0);
        assert_eq!(s.tag("quantity"), Some("ch4"));
    }

    #[test]
    fn influx_csv_tables_join_their_fields() {
        let text = "#datatype,string,long\n,result,table,_start,_stop,_time,_value,_field,_measurement,agent,point,site\n\
            ,_result,0,x,y,2026-12-01T00:00:01Z,0.85,value,reading,edge,CH4-101,mine-01\n\
            \n,result,table,_start,_stop,_time,_value,_field,_measurement,agent,point,site\n\
            ,_result,1,x,y,2026-12-01T00:00:01Z,0,quality,reading,edge,CH4-101,\"mine-01\"\n";
        let mut out = Samples::new();
        parse_influx_csv(text, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let s = out.values().next().unwrap();
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields["value"], 0.85);
        assert_eq!(s.tag("site"), Some("mine-01"));
        assert_eq!(csv_cells("a,\"b,\"\"c\"\"\",d"), vec!["a", "b,\"c\"", "d"]);
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        assert_eq!(
            endpoint("http://h:8428/vm/", "/api/v1/export")
                .unwrap()
                .as_str(),
            "http://h:8428/vm/api/v1/export"
        );
    }
}
