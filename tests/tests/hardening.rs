//! Nothing from outside may wedge or exhaust the gateway (issue 14). A real gateway on each
//! store (SQLite and PostgreSQL) over a real Mosquitto takes hostile payloads one after the
//! other: NUL bytes, invalid UTF-8, CAP documents in UTF-16 and GB18030, oversized fields, a
//! forced duplicate key in the store, 20,000 bad readings in one batch, and every bound it
//! keeps; after each, a good methane reading must raise its incident and `/readyz` must say
//! 200. The weather documents must come back after a restart, byte for byte.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;
use system_tests::*;

const SITE: &str = "mine-01";
const AGENT: &str = "edge";

struct Gw {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    broker: Mosquitto,
    proc: Proc,
    http: String,
    http_port: u16,
    prefix: String,
    store_url: Option<String>,
    config: std::path::PathBuf,
    seq: std::cell::Cell<u64>,
}

impl Gw {
    async fn start(store_url: Option<String>) -> Gw {
        Gw::start_with(
            store_url,
            "[ingest]\nmax_sites = 3\nmax_agents_per_site = 2\nmax_points_per_site = 16\n\
             max_epochs_per_agent = 2\n\
             [http]\nheader_read_timeout_ms = 500\nmax_sse_streams = 2\n\
             [weather.book]\nmax_warnings_per_sender = 2\n",
        )
        .await
    }

    async fn start_with(store_url: Option<String>, config_text: &str) -> Gw {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let config = dir.join("gateway.toml");
        std::fs::write(&config, config_text).unwrap();
        let http_port = free_port();
        let mut gw = Gw {
            _tmp: tmp,
            dir,
            broker,
            proc: Proc {
                name: String::new(),
                child: None,
                log: Default::default(),
            },
            http: format!("http://127.0.0.1:{http_port}"),
            http_port,
            prefix: format!("h{}/v1", free_port()),
            store_url,
            config,
            seq: std::cell::Cell::new(0),
        };
        gw.spawn().await;
        gw
    }

    async fn spawn(&mut self) {
        let mut cmd = gateway_command(&self.broker.url(), &self.prefix, self.http_port, &self.dir);
        cmd.arg("--config").arg(&self.config);
        if let Some(url) = &self.store_url {
            cmd.env("HRS_STORE_URL", url);
        }
        self.proc = Proc::spawn("gateway", &mut cmd, &self.dir).unwrap();
        wait_ready(&self.http)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.log_text()));
    }

    fn topic(&self, agent: &str, kind: &str) -> String {
        format!("{}/sites/{SITE}/{agent}/{kind}", self.prefix)
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        publish(self.broker.port, topic, payload.into(), false)
            .await
            .unwrap();
    }

    /// A batch of the main agent, epoch `e1`, the next seq.
    async fn batch(&self, readings: Value) {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let b = json!({"agent": AGENT, "epoch": "e1", "seq": seq, "readings": readings});
        self.publish(&self.topic(AGENT, "readings"), b.to_string())
            .await;
    }

    async fn birth(&self) {
        let points: Vec<Value> = (101..=112)
            .map(|n| json!({"point": format!("CH4-{n}"), "quantity": "ch4", "unit": "%", "location": "working_face"}))
            .collect();
        let birth = json!({"agent": AGENT, "epoch": "e1",
            "site": {"name": "赵固一矿", "category": "coal_mine", "region": "410522", "lat": 36.1, "lon": 114.3},
            "points": points});
        publish(
            self.broker.port,
            &self.topic(AGENT, "birth"),
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
        eventually(Duration::from_secs(20), "the birth", || async {
            let (_, v) = get_json(&format!("{}/api/v1/sites/{SITE}/points", self.http))
                .await
                .ok()?;
            (v.as_array()?.len() >= 12).then_some(())
        })
        .await
        .unwrap();
    }

    /// A methane reading of 1.3 % on `point` raises its incident, and the gateway is ready.
    async fn good_reading_raises(&self, point: &str, after: &str) {
        self.batch(json!([{"point": point, "ts": now_minus(1), "value": 1.3}]))
            .await;
        let url = format!("{}/api/v1/incidents?state=open&limit=100", self.http);
        eventually(Duration::from_secs(20), "the incident", || async {
            let (_, v) = get_json(&url).await.ok()?;
            v.as_array()?
                .iter()
                .find(|i| {
                    i["point"] == point
                        && i["rule"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("coal.ch4"))
                })
                .cloned()
        })
        .await
        .unwrap_or_else(|e| panic!("after {after}: {e}\n{}", self.proc.log_text()));
        self.assert_ready(after).await;
    }

    async fn assert_ready(&self, after: &str) {
        let (status, v) = get_json(&format!("{}/readyz", self.http)).await.unwrap();
        assert_eq!(status, 200, "after {after}: {v}");
    }

    /// A metric's value; for a name without labels, the sum over all its labels.
    async fn metric(&self, name: &str) -> f64 {
        let page = reqwest::get(format!("{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn dead_letters(&self) -> Vec<Value> {
        let (_, v) = get_json(&format!("{}/api/v1/dead-letters?limit=1000", self.http))
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// Run SQL on the gateway's store (psql or sqlite3).
    fn sql(&self, sql: &str) {
        let ok = match &self.store_url {
            Some(url) => Command::new("psql").arg(url).arg("-qc").arg(sql).status(),
            None => Command::new("sqlite3")
                .arg(self.dir.join("gw").join("gateway.db"))
                .arg(sql)
                .status(),
        }
        .unwrap();
        assert!(ok.success(), "{sql}");
    }
}

fn now_minus(s: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(s))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A rainstorm warning for Anyang (410500, which holds the mine's county 410522), in force now.
fn cap(identifier: &str, encoding: &str, headline: &str) -> String {
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now + d).format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    format!(
        r#"<?xml version="1.0" encoding="{encoding}"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>410500@12379.cn</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨橙色预警</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>CMA</valueName><value>11B03</value></eventCode>
    <effective>{sent}</effective>
    <expires>{expires}</expires>
    <senderName>安阳市气象台</senderName>
    <headline>{headline}</headline>
    <area><areaDesc>安阳市</areaDesc><geocode><valueName>GB/T 2260</valueName><value>410500</value></geocode></area>
  </info>
</alert>"#,
        sent = t(-chrono::Duration::minutes(1)),
        expires = t(chrono::Duration::hours(12)),
    )
}

fn utf16le_with_bom(s: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

async fn warning_headlines(gw: &Gw) -> Vec<String> {
    let (_, v) = get_json(&format!("{}/api/v1/weather/warnings", gw.http))
        .await
        .unwrap();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["headline"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn hostile_payloads(store_url: Option<String>) {
    let mut gw = Gw::start(store_url).await;
    gw.birth().await;
    let readings_topic = gw.topic(AGENT, "readings");
    // A site's region shows its name beside its code (GB/T 2260).
    let (_, sites) = get_json(&format!("{}/api/v1/sites", gw.http))
        .await
        .unwrap();
    let mine = sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == SITE)
        .unwrap();
    assert_eq!(mine["region"], "410522");
    assert_eq!(mine["region_name"], "河南省安阳市安阳县");

    // 1. A NUL byte inside a point id (JSON-escaped): the reading is refused, its dead letter
    //    (whose reason names the id) is stored even on PostgreSQL, and judging goes on.
    gw.batch(json!([{"point": "CH4\u{0000}", "ts": now_minus(1), "value": 1.3}]))
        .await;
    gw.good_reading_raises("CH4-101", "a NUL in a point id")
        .await;
    let dl = gw.dead_letters().await;
    assert!(
        dl.iter().any(|d| d["code"] == "bad_id"),
        "the refused reading is dead-lettered: {dl:?}"
    );

    // 2. Invalid UTF-8 and a raw NUL byte: refused whole; the dead letter keeps the exact bytes.
    let bad_utf8: &[u8] =
        b"{\"agent\":\"edge\",\"seq\":900,\"readings\":[{\"point\":\"\xff\xfe\x00\"}]}";
    gw.publish(&readings_topic, bad_utf8).await;
    let raw_nul: &[u8] = b"{\"agent\":\0\"edge\"}";
    gw.publish(&readings_topic, raw_nul).await;
    gw.good_reading_raises("CH4-102", "invalid UTF-8 and a raw NUL")
        .await;
    use base64::Engine as _;
    let dl = gw.dead_letters().await;
    let exact: Vec<Vec<u8>> = dl
        .iter()
        .filter_map(|d| d["raw_base64"].as_str())
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .collect();
    assert!(
        exact.iter().any(|b| b == bad_utf8),
        "the invalid UTF-8 is kept byte for byte: {dl:?}"
    );
    assert!(
        dl.iter()
            .any(|d| d["raw"].as_str().is_some_and(|r| r.contains('\0'))),
        "the raw NUL is kept: {dl:?}"
    );

    // 3. CAP documents in UTF-16 (with a BOM) and in GB18030, over MQTT: both are taken and in
    //    force; after a restart they come back from the store (below).
    let cap_topic = format!("{}/weather/cap", gw.prefix);
    let utf16 = utf16le_with_bom(&cap("hardening-utf16", "UTF-16", "UTF-16 暴雨橙色预警"));
    gw.publish(&cap_topic, utf16).await;
    let gb_text = cap("hardening-gb", "GB18030", "GB18030 暴雨橙色预警");
    let (gb, _, bad) = encoding_rs::GB18030.encode(&gb_text);
    assert!(!bad);
    gw.publish(&cap_topic, gb.into_owned()).await;
    eventually(Duration::from_secs(20), "both warnings", || async {
        let h = warning_headlines(&gw).await;
        (h.iter().any(|h| h == "UTF-16 暴雨橙色预警")
            && h.iter().any(|h| h == "GB18030 暴雨橙色预警"))
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));
    gw.good_reading_raises("CH4-103", "UTF-16 and GB18030 documents")
        .await;
    let (_, warnings) = get_json(&format!("{}/api/v1/weather/warnings", gw.http))
        .await
        .unwrap();
    assert_eq!(
        warnings[0]["region_names"],
        json!(["河南省安阳市"]),
        "{warnings}"
    );
    // Warnings per sender (2 here): a third document of the same sender is refused, counted,
    // and the two in force stay.
    gw.publish(
        &cap_topic,
        cap("hardening-third", "UTF-8", "第三个暴雨预警").into_bytes(),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the third warning refused",
        || async {
            (gw.metric("hrs_bounds_hit_total{bound=\"warnings_per_sender\"}")
                .await
                >= 1.0)
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(warning_headlines(&gw).await.len(), 2);
    gw.good_reading_raises("CH4-111", "a sender past its bound")
        .await;

    // 4. Oversized fields: a point name of 10,000 characters (that point refused, the others
    //    kept), a reason of 100,000 characters (cut), a site id of 60,000 bytes in a topic.
    let mut points: Vec<Value> = (101..=112)
        .map(|n| json!({"point": format!("CH4-{n}"), "quantity": "ch4", "unit": "%", "location": "working_face"}))
        .collect();
    points.push(
        json!({"point": "CH4-LONG", "quantity": "ch4", "unit": "%", "name": "长".repeat(10_000)}),
    );
    let long_birth = json!({"agent": AGENT, "epoch": "e1", "points": points});
    gw.publish(&gw.topic(AGENT, "birth"), long_birth.to_string())
        .await;
    gw.batch(json!([{"point": "CH4-109", "ts": now_minus(1), "value": null, "quality": "bad", "reason": "x".repeat(100_000)}]))
        .await;
    let long_topic = format!(
        "{}/sites/{}/{AGENT}/readings",
        gw.prefix,
        "s".repeat(60_000)
    );
    gw.publish(&long_topic, b"{}".to_vec()).await;
    gw.good_reading_raises("CH4-104", "oversized fields").await;
    let dl = gw.dead_letters().await;
    assert!(
        dl.iter().any(|d| d["code"] == "bad_point_spec"
            && d["reason"].as_str().unwrap_or("").contains("longer than")),
        "{dl:?}"
    );
    assert!(dl.iter().any(|d| d["code"] == "bad_topic"), "{dl:?}");

    // 5. A duplicate key forced in the store: the next event ids of CH4-101's incident are
    //    taken behind the gateway's back. Its clear is stored under the next free seq.
    let (_, list) = get_json(&format!(
        "{}/api/v1/incidents?state=open&limit=100",
        gw.http
    ))
    .await
    .unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["point"] == "CH4-101")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for seq in [2, 3] {
        gw.sql(&format!(
            "INSERT INTO incident_events (event_id, incident_id, site, event_seq, body) \
             VALUES ('{id}-{seq}', 'someone-else', 'elsewhere', 1, '{{}}')"
        ));
    }
    gw.batch(json!([{"point": "CH4-101", "ts": now_minus(1), "value": 0.2}]))
        .await;
    let cleared = eventually(Duration::from_secs(20), "the clear", || async {
        let (_, v) = get_json(&format!("{}/api/v1/incidents/{id}", gw.http))
            .await
            .ok()?;
        (v["state"] == "cleared").then_some(v)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));
    let seqs: Vec<u64> = cleared["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_id"].as_str().unwrap().starts_with(&id))
        .filter_map(|e| e["event_seq"].as_u64())
        .collect();
    assert!(seqs.contains(&4), "the clear took seq 4: {cleared}");
    assert!(
        gw.metric("hrs_store_refusals_total{what=\"incident\"}")
            .await
            >= 1.0
    );
    // And a dead letter the store refuses for good (a unique index on its code): counted,
    // and the core goes on.
    gw.sql("DELETE FROM dead_letters");
    gw.sql("CREATE UNIQUE INDEX hardening_one_per_code ON dead_letters (code)");
    for _ in 0..2 {
        gw.publish(&readings_topic, b"[not json".to_vec()).await;
    }
    gw.good_reading_raises("CH4-105", "a refused dead letter")
        .await;
    assert!(
        gw.metric("hrs_store_refusals_total{what=\"dead_letter\"}")
            .await
            >= 1.0
    );
    gw.sql("DROP INDEX hardening_one_per_code");
    // A cleared incident closed with a formula as its note: the CSV neutralises it.
    let (status, v) = post_json(
        &format!("{}/api/v1/incidents/{id}/close", gw.http),
        json!({"operator": "li", "note": "=HYPERLINK(\"http://x\",\"y\")"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let r = reqwest::get(format!("{}/api/v1/incidents.csv", gw.http))
        .await
        .unwrap();
    assert_eq!(r.headers()["x-hrs-row-cap"], "100000");
    let csv = r.text().await.unwrap();
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{csv}"
    );
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");

    // 6. 20,000 bad readings in one batch: one dead letter keeps every reason.
    let before = gw.metric("hrs_dead_letters_total").await;
    let refused_before = gw.metric("hrs_readings_refused_total").await;
    let bad: Vec<Value> = (0..20_000)
        .map(|i| json!({"point": format!("bad id {i}"), "ts": now_minus(1), "value": 1}))
        .collect();
    gw.batch(json!(bad)).await;
    gw.good_reading_raises("CH4-106", "20,000 bad readings")
        .await;
    assert_eq!(gw.metric("hrs_dead_letters_total").await - before, 1.0);
    assert_eq!(
        gw.metric("hrs_readings_refused_total").await - refused_before,
        20_000.0
    );
    let dl = gw.dead_letters().await;
    let one = dl
        .iter()
        .find(|d| {
            d["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("20000 items refused")
        })
        .unwrap_or_else(|| panic!("{dl:?}"));
    assert_eq!(one["code"], "bad_id");
    let items: Value = serde_json::from_str(one["raw"].as_str().unwrap_or("[]")).unwrap();
    assert_eq!(items.as_array().map(Vec::len), Some(20_000));
    assert!(items[19_999]["reason"].is_string(), "{}", items[19_999]);

    // 7. Bounds. Points per site (16): the site has 12 (CH4-101..112); of 8 new points, 4
    //    are taken and 4 refused.
    let new_points: Vec<Value> = (0..8)
        .map(|i| json!({"point": format!("NEW-{i}"), "ts": now_minus(1), "value": 0.1}))
        .collect();
    gw.batch(json!(new_points)).await;
    gw.good_reading_raises("CH4-107", "points beyond the bound")
        .await;
    assert!(
        gw.metric("hrs_bounds_hit_total{bound=\"points_per_site\"}")
            .await
            >= 1.0
    );
    assert!(gw
        .dead_letters()
        .await
        .iter()
        .any(|d| d["code"] == "too_many_points"));
    // Agents per site (2): a second agent is taken, a third refused.
    for agent in ["edge-b", "edge-c"] {
        let status = json!({"agent": agent, "state": "online", "ts": now_minus(0)});
        gw.publish(&gw.topic(agent, "status"), status.to_string())
            .await;
    }
    // Sites (3): two more are taken, a fourth refused.
    for site in ["s2", "s3", "s4"] {
        let status = json!({"agent": "a", "state": "online", "ts": now_minus(0)});
        gw.publish(
            &format!("{}/sites/{site}/a/status", gw.prefix),
            status.to_string(),
        )
        .await;
    }
    gw.good_reading_raises("CH4-108", "agents and sites beyond the bounds")
        .await;
    assert!(
        gw.metric("hrs_bounds_hit_total{bound=\"agents_per_site\"}")
            .await
            >= 1.0
    );
    assert!(gw.metric("hrs_bounds_hit_total{bound=\"sites\"}").await >= 1.0);
    let codes: Vec<String> = gw
        .dead_letters()
        .await
        .iter()
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect();
    assert!(codes.contains(&"too_many_agents".to_string()), "{codes:?}");
    assert!(codes.contains(&"too_many_sites".to_string()), "{codes:?}");
    // Epochs per agent (2): two more epochs push `e1` out of memory; its window comes back
    // from the store, so a batch of `e1` seen before is still a duplicate.
    for epoch in ["x1", "x2"] {
        let b = json!({"agent": AGENT, "epoch": epoch, "seq": 1, "readings": []});
        gw.publish(&readings_topic, b.to_string()).await;
    }
    eventually(
        Duration::from_secs(20),
        "an epoch out of memory",
        || async {
            (gw.metric("hrs_bounds_hit_total{bound=\"epochs_per_agent\"}")
                .await
                >= 1.0)
                .then_some(())
        },
    )
    .await
    .unwrap();
    let dups = gw.metric("hrs_batches_duplicate_total").await;
    let old = json!({"agent": AGENT, "epoch": "e1", "seq": 1, "readings": [
        {"point": "CH4-110", "ts": now_minus(1), "value": 3.0}]});
    gw.publish(&readings_topic, old.to_string()).await;
    gw.good_reading_raises("CH4-109", "an epoch back from the store")
        .await;
    assert_eq!(
        gw.metric("hrs_batches_duplicate_total").await - dups,
        1.0,
        "seq 1 of e1 is known after e1 left memory"
    );

    // 8. HTTP: an overflowing duration is a 400; a body past the bound a 413; an unknown
    //    Last-Event-ID starts the stream now and says so; a client that never finishes its
    //    headers is disconnected.
    let (status, _) = post_json(
        &format!("{}/api/v1/incidents/{id}/shelve", gw.http),
        json!({"operator": "li", "reason": "x", "duration_ms": 1u64 << 62}),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    let (status, _) = post_json(
        &format!(
            "{}/api/v1/sites/{SITE}/points/CH4-101/out-of-service",
            gw.http
        ),
        json!({"operator": "li", "reason": "x", "duration_ms": 1u64 << 62}),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    let big = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/{id}/comment", gw.http))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"operator\":\"li\",\"text\":\"{}\"}}",
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let mut sse = reqwest::Client::new()
        .get(format!("{}/api/v1/events", gw.http))
        .header("last-event-id", "no-such-event")
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
        .await
        .expect("the stream says at once")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("event: resync"),
        "{first:?}"
    );
    // Event streams (2 here): a third while two are open is answered 503 and counted.
    let second = reqwest::Client::new()
        .get(format!("{}/api/v1/events", gw.http))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status().as_u16(), 200);
    let third = reqwest::Client::new()
        .get(format!("{}/api/v1/events", gw.http))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status().as_u16(), 503);
    assert!(
        gw.metric("hrs_bounds_hit_total{bound=\"sse_streams\"}")
            .await
            >= 1.0
    );
    drop((sse, second));
    let port = gw.http_port;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        // The server closes the connection (EOF, or a 408 and then EOF) well before 10 s.
        let mut got = Vec::new();
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .unwrap();
    assert!(closed.is_ok(), "a slow client is disconnected: {closed:?}");
    gw.good_reading_raises("CH4-110", "hostile HTTP requests")
        .await;

    // 9. A restart: the weather documents come back from the store as they came.
    gw.proc.terminate();
    gw.spawn().await;
    let h = warning_headlines(&gw).await;
    assert!(
        h.iter().any(|h| h == "UTF-16 暴雨橙色预警")
            && h.iter().any(|h| h == "GB18030 暴雨橙色预警"),
        "restored after a restart: {h:?}\n{}",
        gw.proc.log_text()
    );
    gw.assert_ready("the restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_on_sqlite() {
    hostile_payloads(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_on_postgres() {
    let db = PgDatabase::create().unwrap();
    hostile_payloads(Some(db.url())).await;
}

/// The ingest buffer (1 here, so the core's inbox holds 1 too): a burst of QoS 0 batches that
/// the core cannot judge as fast as they come is cut, the cut counted; QoS 1 messages are
/// never dropped, and a good reading after the burst raises its incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_beyond_the_ingest_buffer_is_dropped_and_counted() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
    let gw = Gw::start_with(None, "[ingest]\nmax_pending_messages = 1\n").await;
    gw.birth().await;
    // Heavy batches: 5,000 refused readings each, one dead letter each.
    let mut opts = MqttOptions::new(
        format!("burst-{}", free_port()),
        "127.0.0.1",
        gw.broker.port,
    );
    opts.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut ev) = AsyncClient::new(opts, 200);
    const BURST: u64 = 100;
    for seq in 0..BURST {
        let bad: Vec<Value> = (0..5_000)
            .map(|i| json!({"point": format!("bad id {i}"), "ts": now_minus(1), "value": 1}))
            .collect();
        let b = json!({"agent": AGENT, "epoch": "burst", "seq": seq + 1, "readings": bad});
        client
            .publish(
                gw.topic(AGENT, "readings"),
                QoS::AtMostOnce,
                false,
                b.to_string(),
            )
            .await
            .unwrap();
    }
    let mut sent = 0;
    while sent < BURST {
        match tokio::time::timeout(Duration::from_secs(30), ev.poll()).await {
            Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) => sent += 1,
            Ok(Ok(_)) => {}
            other => panic!("publishing the burst: {other:?}"),
        }
    }
    eventually(Duration::from_secs(30), "QoS 0 batches dropped", || async {
        (gw.metric("hrs_ingest_dropped_total{reason=\"buffer_full\"}")
            .await
            >= 1.0)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));
    assert!(
        gw.metric("hrs_bounds_hit_total{bound=\"ingest_buffer\"}")
            .await
            >= 1.0
    );
    gw.good_reading_raises("CH4-101", "a burst of QoS 0 batches")
        .await;
}
