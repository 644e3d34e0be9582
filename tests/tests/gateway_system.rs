//! The gateway as a real process over a real Mosquitto, driven from outside like an agent and
//! an operator would: levels and hysteresis, duplicates, bad readings, the lifecycle over HTTP,
//! readiness when the broker stops, and a SIGKILL in the middle of an incident.

use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use system_tests::*;

const SITE: &str = "mine-01";
const AGENT: &str = "mine-01-edge";

struct System {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    broker: Mosquitto,
    gateway: Proc,
    http: String,
    http_port: u16,
    prefix: String,
    store_url: Option<String>,
    rules_dir: Option<std::path::PathBuf>,
}

impl System {
    async fn start(store_url: Option<String>) -> System {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let http_port = free_port();
        let prefix = format!("t{}/v1", free_port());
        let mut s = System {
            _dir: tmp,
            dir,
            broker,
            gateway: Proc {
                name: String::new(),
                child: None,
                log: Default::default(),
            },
            http: format!("http://127.0.0.1:{http_port}"),
            http_port,
            prefix,
            store_url,
            rules_dir: None,
        };
        s.start_gateway().await;
        s
    }

    async fn start_gateway(&mut self) {
        let mut cmd = gateway_command(&self.broker.url(), &self.prefix, self.http_port, &self.dir);
        if let Some(url) = &self.store_url {
            cmd.env("HRS_STORE_URL", url);
        }
        if let Some(dir) = &self.rules_dir {
            cmd.env("HRS_RULES_DIR", dir);
        }
        self.gateway = Proc::spawn("gateway", &mut cmd, &self.dir).unwrap();
        wait_ready(&self.http)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()));
    }

    fn topic(&self, kind: &str) -> String {
        format!("{}/sites/{SITE}/{AGENT}/{kind}", self.prefix)
    }

    async fn birth(&self) {
        let birth = json!({"agent": AGENT, "epoch": "e1",
        "site": {"name": "Zhaogu No.1 mine", "category": "coal_mine", "region": "410522", "lat": 36.10, "lon": 114.30},
        "points": [
            {"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face", "range": [0, 4]}
        ]});
        publish(
            self.broker.port,
            &self.topic("birth"),
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
        let chem = json!({"agent": "chem-01-dcs", "site": {"name": "Anyang chemical", "category": "hazchem", "region": "410502"},
            "points": [{"point": "IL-R3", "quantity": "interlock_bypass", "unit": "bool", "name": "reactor R3 interlock bypass"}]});
        publish(
            self.broker.port,
            &format!("{}/sites/chem-01/chem-01-dcs/birth", self.prefix),
            chem.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
    }

    async fn batch(&self, seq: u64, readings: Value) {
        let b = json!({"agent": AGENT, "epoch": "e1", "seq": seq, "readings": readings});
        publish(
            self.broker.port,
            &self.topic("readings"),
            b.to_string().into_bytes(),
            false,
        )
        .await
        .unwrap();
    }

    async fn incidents(&self, query: &str) -> Vec<Value> {
        let (status, v) = get_json(&format!("{}/api/v1/incidents?{query}", self.http))
            .await
            .unwrap();
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// Wait until the open incident of `rule` on CH4-101 satisfies `pred`.
    async fn wait_incident(&self, what: &str, pred: impl Fn(&Value) -> bool + Clone) -> Value {
        let r = eventually(Duration::from_secs(20), what, || {
            let pred = pred.clone();
            async move {
                self.incidents("limit=50")
                    .await
                    .into_iter()
                    .find(|i| pred(i))
            }
        })
        .await;
        r.unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()))
    }
}

fn ts(sec: u32) -> String {
    let now = chrono::Utc::now() - chrono::Duration::seconds(120);
    (now + chrono::Duration::seconds(sec as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ch4(sec: u32, v: f64) -> Value {
    json!({"point": "CH4-101", "ts": ts(sec), "value": v})
}

async fn lifecycle(store_url: Option<String>) {
    let mut sys = System::start(store_url).await;
    let mut watch = Watcher::start(sys.broker.port, &format!("{}/incidents/#", sys.prefix))
        .await
        .unwrap();
    sys.birth().await;
    sys.batch(1, json!([ch4(0, 0.42)])).await;
    // Alarm level: raised at `alarm`.
    sys.batch(2, json!([ch4(1, 1.1)])).await;
    let raised = watch
        .next_json(Duration::from_secs(20), |_, v| {
            v["event"] == "raised" && v["point"] == "CH4-101"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sys.gateway.log_text()));
    assert_eq!(raised["rule"], "coal.ch4.working_face");
    assert_eq!(raised["severity"], "alarm");
    assert_eq!(raised["threshold"], 1.0);
    assert_eq!(raised["site"], SITE);
    let id = raised["id"].as_str().unwrap().to_string();
    // A duplicate seq carrying a power-off value is dropped whole: no escalation.
    sys.batch(2, json!([ch4(2, 1.9)])).await;
    // Between alarm and restore: no flapping (0.99 is below the restore level 1.0: it clears).
    sys.batch(3, json!([ch4(3, 1.6)])).await;
    let esc = watch
        .next_json(Duration::from_secs(20), |_, v| v["id"] == id.as_str())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sys.gateway.log_text()));
    assert_eq!(
        esc["event"], "escalated",
        "the duplicate seq 2 must not have been taken: {esc}"
    );
    assert_eq!(esc["severity"], "critical");
    assert_eq!(esc["value"], 1.6);
    // A batch with one bad reading: the good one is taken. 1.2 % lies between the alarm and
    // the power-off level, but the power-off level is restored only below 1.0 %: no event.
    sys.batch(
        4,
        json!([{"point": "CH4-101", "ts": "2026-11-28T10:00:00", "value": 3.0}, ch4(4, 1.2)]),
    )
    .await;
    let http = sys.http.clone();
    let dead = eventually(
        Duration::from_secs(20),
        "a dead letter for the zone-less time",
        || {
            let http = http.clone();
            async move {
                let (_, dead) = get_json(&format!("{http}/api/v1/dead-letters"))
                    .await
                    .ok()?;
                dead.as_array()?
                    .iter()
                    .find(|d| d["code"] == "time_without_zone")
                    .cloned()
            }
        },
    )
    .await
    .unwrap();
    assert!(
        dead["reason"].as_str().unwrap().contains("no zone"),
        "{dead}"
    );
    let points = eventually(Duration::from_secs(20), "CH4-101 at 1.2", || {
        let http = http.clone();
        async move {
            let (_, p) = get_json(&format!("{http}/api/v1/sites/{SITE}/points"))
                .await
                .ok()?;
            p.as_array()?
                .iter()
                .any(|p| p["point"] == "CH4-101" && p["value"] == 1.2)
                .then_some(p)
        }
    })
    .await;
    assert!(points.is_ok(), "the good reading of the batch was taken");
    // Bad quality never raises or clears a threshold incident.
    sys.batch(5, json!([{"point": "CH4-101", "ts": ts(5), "value": null, "quality": "bad", "reason": "modbus timeout"}])).await;

    // Close before clear: 409; close without a note: 400; unknown id: 404.
    let (st, body) = post_json(
        &format!("{}/api/v1/incidents/{id}/close", sys.http),
        json!({"operator": "li", "note": "fixed"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 409, "{body}");
    let (st, _) = post_json(
        &format!("{}/api/v1/incidents/{id}/close", sys.http),
        json!({"operator": "li"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 400);
    let (st, body) = post_json(
        &format!("{}/api/v1/incidents/NOPE/ack", sys.http),
        json!({"operator": "li"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 404);
    assert!(body["error"].is_string());
    let (st, _) = get_json(&format!(
        "{}/api/v1/incidents/01JD8X0000000000000000000Z",
        sys.http
    ))
    .await
    .unwrap();
    assert_eq!(st, 404);

    // Acknowledge; again: no change.
    let (st, acked) = post_json(
        &format!("{}/api/v1/incidents/{id}/ack", sys.http),
        json!({"operator": "wang", "note": "ventilating"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    // The operator is the authenticated name (open mode: `anonymous`); the body's is ignored.
    assert_eq!(acked["acked_by"], "anonymous");
    let (st, again) = post_json(
        &format!("{}/api/v1/incidents/{id}/ack", sys.http),
        json!({"operator": "zhao"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200);
    assert_eq!(again["acked_by"], "anonymous");
    assert_eq!(again["acked_at"], acked["acked_at"], "no change");

    // Metrics count what happened (before the restart resets them).
    let m = reqwest::get(format!("{}/metrics", sys.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("hrs_readings_refused_total{reason=\"time_without_zone\"} 1"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("hrs_batches_duplicate_total") && !l.ends_with(" 0")),
        "{m}"
    );

    // SIGKILL in the middle of the incident; the condition still stands after the restart.
    sys.gateway.kill();
    sys.batch(6, json!([ch4(6, 1.3)])).await; // queued in the broker's persistent session
    sys.start_gateway().await;
    // Below the restore level: cleared, once, on the same incident.
    sys.batch(7, json!([ch4(7, 0.5)])).await;
    let cleared = sys
        .wait_incident("the incident cleared", |i| {
            i["rule"] == "coal.ch4.working_face" && i["state"] == "cleared"
        })
        .await;
    assert_eq!(
        cleared["id"],
        id.as_str(),
        "no second raise after the restart: {:#?}\n{}",
        sys.incidents("").await,
        sys.gateway.log_text()
    );
    let methane = sys.incidents("rule=coal.ch4.working_face").await;
    assert_eq!(
        methane.len(),
        1,
        "exactly one methane incident: {methane:?}"
    );
    // The bad-quality reading raised a sensor fault of its own (not a threshold incident),
    // cleared by the next good reading.
    let faults = sys.incidents("rule=sensor.fault").await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["point"], "CH4-101");
    let (_, full) = get_json(&format!("{}/api/v1/incidents/{id}", sys.http))
        .await
        .unwrap();
    let events: Vec<&str> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["raised", "escalated", "acknowledged", "cleared"],
        "{full}"
    );

    // Now it can be closed with a note.
    let (st, closed) = post_json(
        &format!("{}/api/v1/incidents/{id}/close", sys.http),
        json!({"operator": "li", "note": "ventilation restored, sensor checked"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{closed}");
    assert_eq!(closed["state"], "closed");
    let (st, _) = post_json(
        &format!("{}/api/v1/incidents/{id}/close", sys.http),
        json!({"operator": "li", "note": "again"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 409);

    // A new raise after the clear is a new incident naming the previous one.
    sys.batch(8, json!([ch4(8, 2.0)])).await;
    let second = sys
        .wait_incident("a second incident", |i| {
            i["rule"] == "coal.ch4.working_face" && i["id"] != id.as_str()
        })
        .await;
    assert_eq!(second["previous"], id.as_str());
    assert_eq!(second["severity"], "critical");

    // Interlock bypass raises a warning.
    let b = json!({"agent": "chem-01-dcs", "seq": 1, "readings": [{"point": "IL-R3", "ts": ts(9), "value": true}]});
    publish(
        sys.broker.port,
        &format!("{}/sites/chem-01/chem-01-dcs/readings", sys.prefix),
        b.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();
    let bypass = sys
        .wait_incident("interlock bypass incident", |i| i["point"] == "IL-R3")
        .await;
    assert_eq!(bypass["severity"], "warning");

    // Latest values over the API.
    let (_, points) = get_json(&format!("{}/api/v1/sites/{SITE}/points", sys.http))
        .await
        .unwrap();
    let p = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == "CH4-101")
        .unwrap()
        .clone();
    assert_eq!(p["value"], 2.0);
    assert_eq!(p["quantity"], "ch4");

    // The broker stops: /readyz says 503 with the reason.
    sys.broker.stop();
    let http = sys.http.clone();
    let reason = eventually(Duration::from_secs(30), "readyz 503", || {
        let http = http.clone();
        async move {
            match get_json(&format!("{http}/readyz")).await {
                Ok((503, v)) => Some(v),
                _ => None,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        reason["error"].as_str().unwrap().contains("broker"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_sqlite() {
    lifecycle(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_postgres() {
    let db = PgDatabase::create().unwrap();
    lifecycle(Some(db.url())).await;
}

/// Read SSE events from `/api/v1/events` until `n` have come (or the deadline passes).
async fn sse_events(url: &str, last_event_id: Option<&str>, n: usize) -> Vec<(String, Value)> {
    use futures_util_lite::next_chunk;
    let mut req = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let mut resp = req.send().await.unwrap();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, next_chunk(&mut resp))
            .await
            .expect("SSE events in time")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|s| s.trim().to_string());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(|s| s.trim().to_string());
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

mod futures_util_lite {
    pub async fn next_chunk(r: &mut reqwest::Response) -> Option<Vec<u8>> {
        r.chunk().await.ok().flatten().map(|b| b.to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resume_out_of_service_csv_and_alarm_load() {
    let sys = System::start(None).await;
    sys.birth().await;
    // Raise and clear three times: six events.
    for (i, v) in [1.2, 0.5, 1.2, 0.5, 1.2, 0.5].iter().enumerate() {
        sys.batch(i as u64 + 1, json!([ch4(i as u32, *v)])).await;
    }
    let url = format!("{}/api/v1/events", sys.http);
    // Resume from the beginning: all six, in order, ids = event ids.
    let all = sse_events(&url, Some("0"), 6).await;
    let kinds: Vec<&str> = all
        .iter()
        .map(|(_, e)| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["raised", "cleared", "raised", "cleared", "raised", "cleared"]
    );
    for (id, e) in &all {
        assert_eq!(id, e["event_id"].as_str().unwrap());
    }
    // Resume after the second: the four after it, nothing twice.
    let rest = sse_events(&url, Some(&all[1].0), 4).await;
    assert_eq!(
        rest.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        all[2..]
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>()
    );

    // Chattering: the same cause raised three times within the hour.
    let (st, load) = get_json(&format!("{}/api/v1/alarm-load?hours=1", sys.http))
        .await
        .unwrap();
    assert_eq!(st, 200, "{load}");
    assert_eq!(load["sites"][SITE]["raised"], 3, "{load}");
    assert_eq!(
        load["sites"][SITE]["chattering_causes"],
        json!(["coal.ch4.working_face CH4-101"]),
        "{load}"
    );

    // CSV export of the period.
    let since = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let csv = reqwest::get(format!(
        "{}/api/v1/incidents.csv?since={}",
        sys.http,
        since.replace(':', "%3A")
    ))
    .await
    .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // UTF-8 with a byte-order mark (Excel on Chinese Windows), Chinese headers, Beijing time.
    assert!(
        lines[0].starts_with("\u{FEFF}编号,站点,站点名称,区域代码,区域名称,规则,测点"),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "a header and three incidents:\n{text}");
    assert!(
        lines[1..].iter().all(|l| l.contains(",mine-01,")
            && l.contains(",410522,")
            && l.contains("安阳县,coal.ch4.working_face,CH4-101,")
            && l.contains("+08:00")),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.contains(",报警,") || l.contains(",紧急,")),
        "{text}"
    );

    // Out of service: an alarm raised meanwhile is shelved until the maintenance ends, and says so.
    let (st, body) = post_json(
        &format!(
            "{}/api/v1/sites/{SITE}/points/CH4-101/out-of-service",
            sys.http
        ),
        json!({"operator": "li", "reason": "sensor replacement", "duration_ms": 3_600_000}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{body}");
    sys.batch(7, json!([ch4(7, 1.2)])).await;
    let shelved = sys
        .wait_incident("an incident on the point out of service", |i| {
            i["state"] == "active" && i["shelved_until"].is_string()
        })
        .await;
    assert_eq!(shelved["severity"], "alarm");
    // A critical one is never hidden.
    sys.batch(8, json!([ch4(8, 0.4)])).await;
    sys.batch(9, json!([ch4(9, 1.8)])).await;
    let critical = sys
        .wait_incident("a critical incident", |i| i["severity"] == "critical")
        .await;
    assert!(critical["shelved_until"].is_null(), "{critical}");
    let (_, full) = get_json(&format!(
        "{}/api/v1/incidents/{}",
        sys.http,
        shelved["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    let history: Vec<&str> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(&history[..2], ["raised", "shelved"]);
    assert!(
        full["history"][1]["note"]
            .as_str()
            .unwrap()
            .contains("out of service"),
        "{full}"
    );
}

fn site_rule(level: f64) -> String {
    format!(
        "[[rule]]\nid = \"site.ch4.face\"\nkind = \"threshold\"\nsource = \"site instruction\"\nselect = {{ site = \"mine-01\", quantity = \"ch4\" }}\nhigh = [{{ severity = \"warning\", raise = {level}, label = \"site level\" }}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_reload_by_api_and_sighup() {
    let mut sys = System::start(None).await;
    let rules = sys.dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("site.toml"), site_rule(2.0)).unwrap();
    sys.rules_dir = Some(rules.clone());
    sys.gateway.kill();
    sys.start_gateway().await;
    sys.birth().await;
    sys.batch(1, json!([ch4(0, 1.6)])).await;
    sys.wait_incident("the built-in rule raised", |i| {
        i["rule"] == "coal.ch4.working_face"
    })
    .await;
    assert!(sys.incidents("rule=site.ch4.face").await.is_empty());

    // A bad file is refused with the reason; the old rules stay in force.
    std::fs::write(rules.join("site.toml"), "[[rule]]\nid = \"site.ch4.face\"\nkind = \"threshold\"\nhigh = [{ severity = \"warning\", raise = 1.0 }]\nbogus = 1\n").unwrap();
    let (st, body) = post_json(&format!("{}/api/v1/rules/reload", sys.http), json!({}))
        .await
        .unwrap();
    assert_eq!(st, 422, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.contains("site.toml") && reason.contains("bogus"),
        "the reason names the file and the field: {reason}"
    );
    sys.batch(2, json!([ch4(1, 1.65)])).await;
    assert!(
        sys.incidents("rule=site.ch4.face").await.is_empty(),
        "the old rule (2.0 %) is still in force"
    );

    // A good file: the changed rule is re-judged at once on the latest value (1.65 >= 1.5).
    std::fs::write(rules.join("site.toml"), site_rule(1.5)).unwrap();
    let (st, body) = post_json(&format!("{}/api/v1/rules/reload", sys.http), json!({}))
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
    let raised = sys
        .wait_incident("the lowered site level raised without a new reading", |i| {
            i["rule"] == "site.ch4.face"
        })
        .await;
    assert_eq!(raised["threshold"], 1.5);

    // SIGHUP reloads too: the level raised past the value clears the incident.
    std::fs::write(rules.join("site.toml"), site_rule(3.0)).unwrap();
    let pid = sys.gateway.pid();
    assert!(Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    sys.wait_incident("the site incident cleared after SIGHUP", |i| {
        i["rule"] == "site.ch4.face" && i["state"] == "cleared"
    })
    .await;
}
