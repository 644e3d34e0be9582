//! The Grafana dashboards of `dashboards/grafana/` against the real system: a simulated Modbus
//! device, an edge agent, Mosquitto, the gateway writing readings to VictoriaMetrics, and a real
//! Prometheus (and VictoriaMetrics' own scraper) scraping the gateway's and the agent's
//! `/metrics`. The targets must come up healthy with data, every PromQL query of the dashboards
//! must return data from VictoriaMetrics (and from Prometheus where it names `hrs_*` metrics),
//! and the Flux queries may only name the measurement, tags and fields the writer wrote.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use system_tests::*;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/grafana")
}

fn load(kind: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dashboards_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), v));
    }
    assert!(!out.is_empty(), "no dashboards under {kind}/");
    out
}

/// (dashboard, panel title, query) of every target.
fn queries(kind: &str, field: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, d) in load(kind) {
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                out.push((
                    file.clone(),
                    p["title"].as_str().unwrap().to_string(),
                    t[field].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// Grafana's variables as a test fills them: all sites, a five-minute rate window.
fn substitute(q: &str) -> String {
    q.replace("$__rate_interval", "5m")
        .replace("$__interval", "15s")
        .replace("${site:regex}", ".*")
        .replace("$site", ".*")
        .replace("${bucket}", "hrs")
}

#[test]
fn dashboards_are_well_formed() {
    let mut uids = BTreeSet::new();
    for (kind, ds_type, field) in [
        ("prometheus", "prometheus", "expr"),
        ("influxdb", "influxdb", "query"),
    ] {
        for (file, d) in load(kind) {
            assert!(
                uids.insert(d["uid"].as_str().unwrap().to_string()),
                "{file}: uid used twice"
            );
            assert!(
                d["title"].as_str().is_some_and(|t| t.starts_with("HRS / ")),
                "{file}"
            );
            let vars = d["templating"]["list"].as_array().unwrap();
            let ds = vars
                .iter()
                .find(|v| v["name"] == "datasource")
                .unwrap_or_else(|| panic!("{file}: a data source variable"));
            assert_eq!(ds["query"], ds_type, "{file}");
            let panels = d["panels"].as_array().unwrap();
            let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
            assert_eq!(ids.len(), panels.len(), "{file}: panel ids unique");
            for p in panels {
                assert_eq!(
                    p["datasource"],
                    json!({"type": ds_type, "uid": "${datasource}"}),
                    "{file}: {}",
                    p["title"]
                );
                let targets = p["targets"].as_array().unwrap();
                assert!(!targets.is_empty(), "{file}: {} has no query", p["title"]);
                for t in targets {
                    assert!(
                        t[field].as_str().is_some_and(|q| !q.trim().is_empty()),
                        "{file}: {}",
                        p["title"]
                    );
                }
                for k in ["x", "y", "w", "h"] {
                    assert!(p["gridPos"][k].is_u64(), "{file}: {} gridPos", p["title"]);
                }
            }
        }
    }
    // The gas panels draw the alarm and power-off levels of the standard.
    let (_, overview) = load("prometheus")
        .into_iter()
        .find(|(f, _)| f == "site-overview.json")
        .unwrap();
    let face = overview["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["targets"][0]["expr"]
                .as_str()
                .unwrap()
                .contains("working_face|")
        })
        .unwrap();
    let steps: Vec<f64> = face["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(steps, vec![1.0, 1.5]);
    assert_eq!(
        face["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
        "line+area"
    );
    // Provisioning: both data source types, both dashboard folders.
    let prov = dashboards_dir().join("provisioning");
    let ds = std::fs::read_to_string(prov.join("datasources/hrs.yaml")).unwrap();
    for want in [
        "type: prometheus",
        "type: influxdb",
        "version: Flux",
        "uid: hrs-prometheus",
        "uid: hrs-influxdb",
    ] {
        assert!(ds.contains(want), "datasources/hrs.yaml: {want}");
    }
    let dash = std::fs::read_to_string(prov.join("dashboards/hrs.yaml")).unwrap();
    assert!(
        dash.contains("hrs/prometheus") && dash.contains("hrs/influxdb"),
        "{dash}"
    );
}

fn alerts_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dashboards/prometheus/alerts.yml")
        .canonicalize()
        .unwrap()
}

/// The metric names in the alerts' expressions (`hrs_*`, `process_*`, `up`).
fn alert_metrics(rules: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
    {
        let mut word = String::new();
        for c in l.chars().chain([' ']) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                if word.starts_with("hrs_") || word.starts_with("process_") || word == "up" {
                    out.insert(std::mem::take(&mut word));
                }
                word.clear();
            }
        }
    }
    out
}

async fn prom_query(base: &str, q: &str) -> Option<Vec<Value>> {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    if v["status"] != "success" {
        panic!("{base}: query {q:?} failed: {v}");
    }
    v["data"]["result"].as_array().cloned()
}

fn scrape_config(dir: &Path, gateway_port: u16, agent_port: u16) -> PathBuf {
    let path = dir.join("scrape.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: hrs-gateway\n    static_configs:\n      - targets: ['127.0.0.1:{gateway_port}']\n  - job_name: hrs-agents\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n        labels: {{site: mine-01, agent: mine-01-edge}}\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_gateway_and_agent_and_every_dashboard_query_has_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("db{}/v1", free_port());
    let (plc_port, http_port, agent_metrics_port, prom_port) =
        (free_port(), free_port(), free_port(), free_port());
    let scrape = scrape_config(dir, http_port, agent_metrics_port);
    let vm =
        VictoriaMetrics::start(dir, &[format!("-promscrape.config={}", scrape.display())]).await;

    // A gas PLC (simulated Modbus device) and the edge agent polling it, with its metrics served.
    std::fs::write(
        dir.join("sim.toml"),
        format!(
            "[[devices]]\nname = \"gas-plc\"\nlisten = \"127.0.0.1:{plc_port}\"\ntick_ms = 200\nhold_ms = 600000\n  [[devices.values]]\n  point = \"CH4-101\"\n  function = \"holding\"\n  address = 0\n  type = \"u16\"\n  scale = 0.01\n  signal = {{ kind = \"random_walk\", min = 0.2, max = 0.6, step = 0.05, seed = 7 }}\n"
        ),
    )
    .unwrap();
    let _sim = Proc::spawn(
        "simulator",
        Command::new(bin_path("edge-agent"))
            .arg("simulate")
            .arg("--config")
            .arg(dir.join("sim.toml")),
        dir,
    )
    .unwrap();
    wait_port(plc_port, Duration::from_secs(20)).await.unwrap();
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            r#"
agent = "mine-01-edge"
site = "mine-01"
data_dir = "{data}"
publish_interval_ms = 300
metrics_addr = "127.0.0.1:{agent_metrics_port}"
[site_info]
category = "coal_mine"
region = "410522"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
[[devices]]
name = "gas-plc"
host = "127.0.0.1"
port = {plc_port}
unit_id = 1
timeout_ms = 1000
poll_interval_ms = 300
  [[devices.points]]
  point = "CH4-101"
  function = "holding"
  address = 0
  type = "u16"
  scale = 0.01
  quantity = "ch4"
  unit = "%"
  location = "working_face"
  range = [0, 4]
  tags = {{ zone = "1201" }}
"#,
            data = dir.join("agent").display(),
            url = broker.url(),
        ),
    )
    .unwrap();
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(&broker.url(), &prefix, http_port, dir)
            .env("HRS_INFLUX_URL", vm.url())
            // A platform that does not answer: deliveries pending (the lag alert's metric).
            .env(
                "HRS_PLATFORM_URL",
                format!("http://127.0.0.1:{}/events", free_port()),
            ),
        dir,
    )
    .unwrap();
    let agent = Proc::spawn(
        "agent",
        Command::new(bin_path("edge-agent"))
            .arg("run")
            .arg("--config")
            .arg(dir.join("agent.toml")),
        dir,
    )
    .unwrap();
    // Prometheus scrapes the same targets and evaluates the alerting rules
    // (VictoriaMetrics' scraper takes no rule_files key).
    let prom_config = dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "{}rule_files:\n  - {}\n",
            std::fs::read_to_string(&scrape).unwrap(),
            alerts_file().display()
        ),
    )
    .unwrap();
    let prom_data = dir.join("prometheus");
    let prometheus = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", prom_data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        dir,
    )
    .expect("prometheus is not installed (Debian package prometheus)");
    let prom = format!("http://127.0.0.1:{prom_port}");
    let logs = || {
        format!(
            "--- gateway\n{}\n--- agent\n{}\n--- prometheus\n{}\n--- victoria-metrics\n{}",
            gateway.log_text(),
            agent.log_text(),
            prometheus.log_text(),
            vm.proc.log_text()
        )
    };

    // Prometheus: both targets up, with data from each.
    let targets = eventually(
        Duration::from_secs(60),
        "gateway and agent targets up in Prometheus",
        || {
            let prom = prom.clone();
            async move {
                let (_, v) = get_json(&format!("{prom}/api/v1/targets")).await.ok()?;
                let active = v["data"]["activeTargets"].as_array()?.clone();
                let up = |job: &str| {
                    active
                        .iter()
                        .any(|t| t["labels"]["job"] == job && t["health"] == "up")
                };
                (up("hrs-gateway") && up("hrs-agents")).then_some(active)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(targets.len(), 2, "{targets:?}");
    for (q, what) in [
        ("hrs_gateway_up == 1", "the gateway's own metrics"),
        ("hrs_agent_readings_total > 0", "the agent's metrics"),
        ("hrs_readings_taken_total > 0", "readings taken"),
    ] {
        let prom = prom.clone();
        eventually(Duration::from_secs(30), what, || {
            let prom = prom.clone();
            async move { prom_query(&prom, q).await.filter(|r| !r.is_empty()) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    }
    let agent_series = prom_query(&prom, "hrs_agent_mqtt_connected").await.unwrap();
    assert_eq!(
        agent_series[0]["metric"]["agent"], "mine-01-edge",
        "target labels: {agent_series:?}"
    );

    // Traffic for every panel: a second agent of the site with points at other locations and
    // of other quantities, an alarm, a bad reading, a refused reading and a duplicate batch.
    let birth = json!({"agent": "mine-01-kj", "site": {"category": "coal_mine", "region": "410522"}, "points": [
        {"point": "CH4-201", "quantity": "ch4", "unit": "%", "location": "working_face_return"},
        {"point": "CH4-301", "quantity": "ch4", "unit": "%", "location": "intake_airway"},
        {"point": "CH4-401", "quantity": "ch4", "unit": "%", "location": "main_return"},
        {"point": "CH4-501", "quantity": "ch4", "unit": "%", "location": "upper_corner"},
        {"point": "CO-1", "quantity": "co", "unit": "ppm", "location": "working_face"},
        {"point": "O2-1", "quantity": "o2", "unit": "%", "location": "working_face"},
        {"point": "T-1", "quantity": "temperature", "unit": "°C"},
        {"point": "FEED-1201", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "1201"}},
        {"point": "TRK-1", "quantity": "position", "unit": "wgs84"}]});
    let topic = |kind: &str| format!("{prefix}/sites/mine-01/mine-01-kj/{kind}");
    publish(
        broker.port,
        &topic("birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
    // Distinct, recent times per batch (the engine judges a point's readings in time order only).
    let base = chrono::Utc::now() - chrono::Duration::seconds(5);
    let batch = |seq: u64, ch4_return: f64| {
        let at = (base + chrono::Duration::milliseconds(100 * seq as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let now = || at.clone();
        json!({"agent": "mine-01-kj", "seq": seq, "readings": [
            {"point": "CH4-201", "ts": now(), "value": ch4_return},
            {"point": "CH4-301", "ts": now(), "value": 0.2},
            {"point": "CH4-401", "ts": now(), "value": 0.3},
            {"point": "CH4-501", "ts": now(), "value": null, "quality": "bad", "reason": "modbus timeout"},
            {"point": "CO-1", "ts": now(), "value": 6.0},
            {"point": "O2-1", "ts": now(), "value": 20.6},
            {"point": "T-1", "ts": now(), "value": 24.5},
            {"point": "FEED-1201", "ts": now(), "value": false},
            {"point": "TRK-1", "ts": now(), "value": {"lat": 36.1, "lon": 114.3, "speed_kmh": 42.0, "heading": 180}},
            {"point": "CO-1", "ts": "2026-11-28T10:00:00", "value": 5.0}]})
        .to_string()
        .into_bytes()
    };
    publish(broker.port, &topic("readings"), batch(1, 0.4), false)
        .await
        .unwrap();
    publish(broker.port, &topic("readings"), batch(2, 1.2), false)
        .await
        .unwrap(); // alarm at a return airway
    publish(broker.port, &topic("readings"), batch(2, 1.2), false)
        .await
        .unwrap(); // a duplicate
    let http = format!("http://127.0.0.1:{http_port}");
    eventually(Duration::from_secs(30), "an incident raised", || {
        let http = http.clone();
        async move {
            let (_, v) = get_json(&format!("{http}/api/v1/incidents")).await.ok()?;
            v.as_array()?
                .iter()
                .any(|i| i["point"] == "CH4-201")
                .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));

    // Every PromQL query of the dashboards returns data: from VictoriaMetrics always (it holds
    // the readings and scrapes the same targets), and from Prometheus where it names hrs_* or up.
    let all = queries("prometheus", "expr");
    assert!(all.len() >= 30, "{} queries", all.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut checked = (0, 0);
    for (file, title, expr) in &all {
        let q = substitute(expr);
        let mut sources = vec![("VictoriaMetrics", vm.url())];
        if q.contains("hrs_") || q.contains("up{") {
            sources.push(("Prometheus", prom.clone()));
        }
        for (name, base) in sources {
            loop {
                if prom_query(&base, &q).await.is_some_and(|r| !r.is_empty()) {
                    if name == "Prometheus" {
                        checked.1 += 1;
                    } else {
                        checked.0 += 1;
                    }
                    break;
                }
                if Instant::now() > deadline {
                    panic!("{file} / {title}: no data from {name} for {q}\n{}", logs());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    assert!(
        checked.1 >= 20,
        "queries checked against Prometheus: {checked:?}"
    );

    // The alerting rules: loaded and evaluated without error by the real Prometheus, and
    // every metric they name published by the gateway or the agent.
    let rules_text = std::fs::read_to_string(alerts_file()).unwrap();
    let alerts = rules_text.matches("- alert: ").count();
    eventually(
        Duration::from_secs(60),
        "every alerting rule evaluated without error",
        || {
            let prom = prom.clone();
            async move {
                let (_, v) = get_json(&format!("{prom}/api/v1/rules")).await.ok()?;
                let rules: Vec<Value> = v["data"]["groups"]
                    .as_array()?
                    .iter()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect();
                (rules.len() == alerts && rules.iter().all(|r| r["health"] == "ok")).then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let named = alert_metrics(&rules_text);
    assert!(named.len() >= 15, "{named:?}");
    for name in &named {
        let q = format!("count({{__name__=\"{name}\"}})");
        eventually(
            Duration::from_secs(30),
            &format!("{name} published"),
            || {
                let prom = prom.clone();
                let q = q.clone();
                async move { prom_query(&prom, &q).await.filter(|r| !r.is_empty()) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    }
    let pending = prom_query(&prom, "hrs_delivery_pending_since_seconds > 0")
        .await
        .unwrap();
    assert_eq!(
        pending.first().map(|s| s["metric"]["target"].clone()),
        Some(json!("platform")),
        "the platform's delivery waits: {pending:?}"
    );

    // The site variable of the overview (label_values(reading_value, site)).
    let (_, sites) = get_json(&format!(
        "{}/api/v1/label/site/values?match[]=reading_value",
        vm.url()
    ))
    .await
    .unwrap();
    assert_eq!(sites["data"], json!(["mine-01"]));

    // Flux: only the measurement, fields and tags the writer wrote. VictoriaMetrics names a
    // line-protocol field `{measurement}_{field}`, tags become labels.
    let written = vm.export(r#"{__name__=~"reading_.+"}"#).await;
    let fields: BTreeSet<String> = written
        .iter()
        .map(|(m, _, _)| {
            m["__name__"]
                .as_str()
                .unwrap()
                .trim_start_matches("reading_")
                .to_string()
        })
        .collect();
    let tags: BTreeSet<String> = written
        .iter()
        .flat_map(|(m, _, _)| {
            m.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "__name__")
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for want in ["value", "quality", "lat", "lon", "speed_kmh", "heading"] {
        assert!(fields.contains(want), "field {want} written: {fields:?}");
    }
    let flux = queries("influxdb", "query");
    assert!(flux.len() >= 8);
    let quoted = |q: &str, before: &str| -> Vec<String> {
        q.match_indices(before)
            .map(|(i, _)| q[i + before.len()..].split('"').next().unwrap().to_string())
            .collect()
    };
    for (file, title, q) in &flux {
        let q = substitute(q);
        for m in quoted(&q, "r._measurement == \"") {
            assert_eq!(m, "reading", "{file} / {title}");
        }
        let fs = quoted(&q, "r._field == \"");
        assert!(!fs.is_empty(), "{file} / {title}: names its field");
        for f in fs {
            assert!(
                fields.contains(&f),
                "{file} / {title}: field {f} is not written ({fields:?})"
            );
        }
        // Tags: `r.tag` in predicates and the columns of keep()/group().
        let mut used = BTreeSet::new();
        for (i, _) in q.match_indices("r.") {
            let name: String = q[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty()
                && !name.starts_with('_')
                && (i == 0 || !q.as_bytes()[i - 1].is_ascii_alphanumeric())
            {
                used.insert(name);
            }
        }
        for (i, _) in q.match_indices("columns: [") {
            let list = q[i + 10..].split(']').next().unwrap();
            used.extend(
                list.split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.starts_with('_')),
            );
        }
        for t in &used {
            assert!(
                tags.contains(t),
                "{file} / {title}: tag {t} is not written ({tags:?})"
            );
        }
    }
    let flux_tags: BTreeSet<String> = flux
        .iter()
        .flat_map(|(_, _, q)| {
            ["site", "point", "location", "quantity"]
                .into_iter()
                .filter(|t| q.contains(&format!("\"{t}\"")) || q.contains(&format!("r.{t}")))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        flux_tags.len() >= 4,
        "the Flux panels use the main tags: {flux_tags:?}"
    );
}
