//! The regulator's figures and what-if runs over real history (issue 26), against real
//! programs: a gateway in `tokens` mode over a real Mosquitto, on SQLite and on PostgreSQL.
//!
//! - A recorded day (three days ago, Beijing time) of three mines in two counties and
//!   another province, with methane incidents acknowledged, closed with a note, overdue and
//!   chattering: its figures match a hand count from the incidents themselves, and the
//!   same on both stores; a county-scoped operator gets only its county's figures (JSON and
//!   CSV), a site outside its scope is 404. Online rate and data completeness of today come
//!   from the site history the gateway records per interval.
//! - What-if: a day of methane readings written to a real VictoriaMetrics, exported with
//!   `gateway export-history` (with the births the gateway kept) and replayed with two rule
//!   sets (the working face's methane alarm at 1.0 % and at 0.8 %): the causes that differ are
//!   listed.

use chrono::{Duration as Span, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use system_tests::*;

const WAIT: Duration = Duration::from_secs(30);
const RULE: &str = "coal.ch4.working_face";

/// Beijing time.
fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// A time of a Beijing day, as the wire carries it (UTC).
fn at(day: NaiveDate, hms: &str) -> String {
    let t = chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").unwrap();
    let local = beijing().from_local_datetime(&day.and_time(t)).unwrap();
    local
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&beijing()).date_naive()
}

struct Rig {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    broker: Mosquitto,
    gateway: Proc,
    http: String,
    prefix: String,
    store_url: Option<String>,
}

impl Rig {
    /// A gateway with a site history of 1 s intervals and alarms overdue at once if not
    /// acknowledged (critical and warning ones not watched), `env` added.
    async fn start(store_url: Option<String>, env: &[(&str, String)]) -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            "[ingest]\nfigures_interval_ms = 1000\n\n[supervision]\ncheck_ms = 200\n\n\
             [supervision.times.alarm]\nack_within_ms = 1\nclose_within_ms = 0\n",
        )
        .unwrap();
        let port = free_port();
        let prefix = format!("f{}/v1", free_port());
        let mut cmd = gateway_command(&broker.url(), &prefix, port, &dir);
        cmd.arg("--config").arg(&config);
        let store = store_url.clone().map(|url| ("HRS_STORE_URL", url));
        let tokens = ("HRS_AUTH_MODE", "tokens".to_string());
        cmd.envs(env.iter().cloned().chain(store).chain([tokens]));
        let gateway = Proc::spawn("gateway", &mut cmd, &dir).unwrap();
        let http = format!("http://127.0.0.1:{port}");
        if let Err(e) = wait_ready(&http).await {
            panic!("{e}\n{}", gateway.log_text());
        }
        Rig {
            _tmp: tmp,
            dir,
            broker,
            gateway,
            http,
            prefix,
            store_url,
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        gateway_cli(&self.dir, self.store_url.as_deref(), args, "")
    }

    fn token(&self, name: &str, role: &str, scope: &str) -> String {
        let args = ["token", "create", "--name", name, "--role", role];
        let out = self.cli(&[&args[..], &["--scope", scope]].concat());
        out.trim().to_string()
    }

    /// A request as `token`: the status and the body as text.
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{path}", self.http);
        let mut req = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn get_text(&self, path: &str, token: &str) -> (u16, String) {
        self.request("GET", path, token, None).await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (status, text) = self.get_text(path, token).await;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
        (status, body)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> u16 {
        self.request("POST", path, token, Some(body)).await.0
    }

    async fn send(&self, site: &str, kind: &str, payload: Value) {
        let topic = format!("{}/sites/{site}/edge/{kind}", self.prefix);
        let retain = kind != "readings";
        let bytes = payload.to_string().into_bytes();
        let sent = publish(self.broker.port, &topic, bytes, retain).await;
        sent.unwrap();
    }

    async fn birth(&self, site: &str, region: &str) {
        let birth = json!({"agent": "edge", "epoch": "e1",
            "site": {"name": format!("{site} 煤矿"), "category": "coal_mine", "region": region},
            "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%",
                "location": "working_face", "tags": {"zone": "1201"}}]});
        self.send(site, "birth", birth).await;
    }

    /// One methane reading in its own batch.
    async fn methane(&self, site: &str, seq: u64, ts: &str, value: f64) {
        let batch = json!({"agent": "edge", "epoch": "e1", "seq": seq,
            "readings": [{"point": "CH4-101", "ts": ts, "value": value}]});
        self.send(site, "readings", batch).await;
    }

    /// Until the admin's list of incidents satisfies `ok`.
    async fn incidents_until(
        &self,
        admin: &str,
        what: &str,
        ok: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        eventually(WAIT, what, || async {
            let (_, list) = self.get("/api/v1/incidents?limit=500", admin).await;
            let list = list.as_array()?.clone();
            ok(&list).then_some(list)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()))
    }
}

fn ms(t: &Value) -> Option<i64> {
    Some(
        chrono::DateTime::parse_from_rfc3339(t.as_str()?)
            .ok()?
            .timestamp_millis(),
    )
}

/// The p-th percentile by nearest rank, counted here by hand.
fn nearest_rank(mut v: Vec<i64>, p: usize) -> Value {
    v.sort();
    if v.is_empty() {
        return Value::Null;
    }
    json!(v[(p * v.len()).div_ceil(100) - 1])
}

/// The figures of `incidents` (those raised on `day` at `sites`), counted by hand.
fn hand_count(incidents: &[Value], day: NaiveDate, sites: &[&str]) -> Value {
    let (from, until) = (
        ms(&json!(at(day, "00:00:00"))),
        ms(&json!(at(day.succ_opt().unwrap(), "00:00:00"))),
    );
    let of_day: Vec<&Value> = incidents
        .iter()
        .filter(|i| sites.contains(&i["site"].as_str().unwrap()))
        .filter(|i| ms(&i["raised_at"]) >= from && ms(&i["raised_at"]) < until)
        .collect();
    let n = |f: &dyn Fn(&Value) -> bool| of_day.iter().filter(|i| f(i)).count();
    let took = |key: &str| -> Vec<i64> {
        of_day
            .iter()
            .filter_map(|i| Some(ms(&i[key])? - ms(&i["raised_at"])?))
            .collect()
    };
    let sev = |s: &str| n(&|i: &Value| i["severity"] == s);
    let closed_noted = n(&|i: &Value| i["closed_at"].is_string() && i["note"].is_string());
    json!({
        "sites": sites.len(),
        "incidents": of_day.len(),
        "by_severity": {"info": sev("info"), "warning": sev("warning"), "alarm": sev("alarm"), "critical": sev("critical")},
        "acknowledged": took("acked_at").len(),
        "ack_median_ms": nearest_rank(took("acked_at"), 50),
        "ack_p90_ms": nearest_rank(took("acked_at"), 90),
        "closed": took("closed_at").len(),
        "close_median_ms": nearest_rank(took("closed_at"), 50),
        "close_p90_ms": nearest_rank(took("closed_at"), 90),
        "overdue": n(&|i: &Value| i["overdue"] == true),
        "closed_with_note": closed_noted,
        "disposal_rate": closed_noted as f64 / of_day.len() as f64,
    })
}

/// Every key of `want` is in `got` with the same value.
fn assert_within(got: &Value, want: &Value, what: &str) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "{what}: {k} in {got:#}");
    }
}

/// The figures of a recorded day on one store: what the county operator got (durations
/// aside, which depend on when the test acknowledged), for the comparison across stores.
async fn recorded_day(store_url: Option<String>) -> Value {
    let rig = Rig::start(store_url, &[]).await;
    let admin = rig.token("centre", "admin", "*");
    let county = rig.token("county-duty", "operator", "region:410522");
    let city = rig.token("city-viewer", "viewer", "region:4105");
    let started = today();

    // mine-01 (county 410522) is online from its first word; mine-02 (county 410523) and
    // plant-03 (another province) never say so.
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    rig.send(
        "mine-01",
        "status",
        json!({"agent": "edge", "state": "online", "ts": now}),
    )
    .await;
    eventually(WAIT, "mine-01 online", || async {
        let (_, sites) = rig.get("/api/v1/sites", &admin).await;
        sites
            .as_array()?
            .iter()
            .any(|s| s["id"] == "mine-01" && s["online"] == true)
            .then_some(())
    })
    .await
    .unwrap();
    rig.birth("mine-01", "410522").await;
    rig.birth("mine-02", "410523").await;
    rig.birth("plant-03", "320506").await;

    // The day: three raises of the working face in 25 minutes (chattering), one just
    // before the day, one at each other site. Batch 5 of mine-01 never comes.
    let day = today() - Span::days(3);
    let eve = day.pred_opt().unwrap();
    let mine_01 = [
        (1, at(eve, "23:59:00"), 1.2),
        (2, at(eve, "23:59:30"), 0.5),
        (3, at(day, "10:00:00"), 1.2),
        (4, at(day, "10:05:00"), 0.5),
        (6, at(day, "10:10:00"), 1.7),
        (7, at(day, "10:15:00"), 0.5),
        (8, at(day, "10:20:00"), 1.1),
        (9, at(day, "10:25:00"), 0.5),
    ];
    for (seq, ts, v) in &mine_01 {
        rig.methane("mine-01", *seq, ts, *v).await;
    }
    rig.methane("mine-02", 1, &at(day, "11:00:00"), 1.3).await;
    rig.methane("plant-03", 1, &at(day, "12:00:00"), 1.6).await;

    // Alarms left unacknowledged go overdue at once (raised days ago); then the duty acts.
    let list = rig
        .incidents_until(&admin, "six incidents, the alarms overdue", |l| {
            let ours: Vec<_> = l.iter().filter(|i| i["rule"] == RULE).collect();
            ours.len() == 6
                && ours
                    .iter()
                    .filter(|i| i["site"] == "mine-01")
                    .all(|i| i["state"] == "cleared")
                && ours
                    .iter()
                    .filter(|i| i["severity"] == "alarm")
                    .all(|i| i["overdue"] == true)
        })
        .await;
    let raised = |site: &str, ts: &str| {
        let t = ms(&json!(ts));
        let i = list
            .iter()
            .find(|i| i["site"] == site && ms(&i["raised_at"]) == t);
        i.unwrap_or_else(|| panic!("no incident of {site} at {ts}: {list:#?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = raised("mine-01", &mine_01[2].1);
    let b = raised("mine-01", &mine_01[4].1);
    for (id, note) in [(&a, "已通风，浓度恢复正常"), (&b, "断电撤人，排查完毕")]
    {
        let path = format!("/api/v1/incidents/{id}");
        assert_eq!(
            rig.post(&format!("{path}/ack"), &county, json!({"note": "收到"}))
                .await,
            200
        );
        assert_eq!(
            rig.post(&format!("{path}/close"), &county, json!({"note": note}))
                .await,
            200
        );
    }
    let m2 = raised("mine-02", &at(day, "11:00:00"));
    let path = format!("/api/v1/incidents/{m2}/ack");
    assert_eq!(rig.post(&path, &admin, json!({})).await, 200);
    let list = rig
        .incidents_until(&admin, "the actions", |l| {
            l.iter().filter(|i| i["closed_at"].is_string()).count() == 2
                && l.iter().filter(|i| i["acked_at"].is_string()).count() == 3
        })
        .await;

    // The county: its mine only, whatever it asks; outside its scope nothing, or 404.
    let q = format!("/api/v1/figures?period=day&date={day}");
    let (st, mine) = rig.get(&q, &county).await;
    assert_eq!(st, 200, "{mine}");
    assert_eq!(mine["from"], json!(at(day, "00:00:00")));
    assert_eq!(mine["time_zone"], "Asia/Shanghai");
    let sites: Vec<&Value> = mine["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["site"])
        .collect();
    assert_eq!(sites, [&json!("mine-01")]);
    let want = hand_count(&list, day, &["mine-01"]);
    assert_within(&mine["total"], &want, "the county's day");
    // And in literal numbers: 3 raises (2 alarms, 1 critical), 2 closed with a note, 2
    // overdue, one chattering cause.
    assert_within(
        &mine["total"],
        &json!({"incidents": 3, "acknowledged": 2, "closed": 2, "overdue": 2,
            "by_severity": {"info": 0, "warning": 0, "alarm": 2, "critical": 1},
            "by_rule": {RULE: 3},
            "chattering_causes": [format!("{RULE} mine-01 CH4-101")]}),
        "the county's day by hand",
    );
    let (_, same) = rig.get(&format!("{q}&region=4105"), &county).await;
    assert_eq!(
        same["total"], mine["total"],
        "a wider region is cut to the scope"
    );
    let (_, none) = rig.get(&format!("{q}&region=32"), &county).await;
    assert_eq!(
        (
            none["total"]["sites"].clone(),
            none["total"]["incidents"].clone()
        ),
        (json!(0), json!(0))
    );
    for site in ["mine-02", "plant-03", "nowhere"] {
        let (st, body) = rig.get(&format!("{q}&site={site}"), &county).await;
        assert_eq!(st, 404, "{site}: {body}");
    }
    let (st, _) = rig.get(&format!("{q}&region=41052"), &county).await;
    assert_eq!(st, 400, "a region of 5 digits");
    let (st, csv) = rig
        .get_text(
            &format!("/api/v1/figures.csv?period=day&date={day}"),
            &county,
        )
        .await;
    assert_eq!(st, 200);
    assert!(
        csv.starts_with("\u{FEFF}站点,站点名称,区域代码,区域名称,开始时间"),
        "{csv}"
    );
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("mine-01,mine-01 煤矿,410522,"), "{csv}");
    assert!(rows[1].starts_with("小计,,410522,"), "{csv}");
    assert!(rows[2].starts_with("合计,"), "{csv}");
    assert!(
        !csv.contains("mine-02") && !csv.contains("plant-03"),
        "{csv}"
    );

    // The city sees both its mines; the centre all three.
    let (_, city_fig) = rig.get(&format!("{q}&region=4105"), &city).await;
    assert_within(
        &city_fig["total"],
        &hand_count(&list, day, &["mine-01", "mine-02"]),
        "the city's day",
    );
    assert_eq!(city_fig["total"]["overdue"], 3);
    let counties: Vec<(&Value, &Value)> = city_fig["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (&r["region"], &r["figures"]["incidents"]))
        .collect();
    assert_eq!(
        counties,
        [(&json!("410522"), &json!(3)), (&json!("410523"), &json!(1))]
    );
    let (_, all) = rig.get(&q, &admin).await;
    assert_within(
        &all["total"],
        &hand_count(&list, day, &["mine-01", "mine-02", "plant-03"]),
        "the centre's day",
    );
    let (_, week) = rig
        .get(
            &format!("/api/v1/figures?period=week&date={day}&site=mine-01"),
            &admin,
        )
        .await;
    assert!(week["total"]["incidents"].as_u64().unwrap() >= 3, "{week}");

    // Online rate and completeness of today, from the site history (1 s intervals): mine-01
    // online throughout, 8 batches of 9; mine-02 never online, its one batch.
    let today_of = |site: &'static str| {
        let rig = &rig;
        let admin = admin.clone();
        async move {
            // The test may cross midnight: the days it ran on, added up.
            let mut sum = [0i64; 4];
            let mut d = started;
            while d <= today() {
                let path = format!("/api/v1/figures?period=day&date={d}&site={site}");
                let (_, f) = rig.get(&path, &admin).await;
                let t = &f["total"];
                for (i, k) in [
                    "observed_ms",
                    "online_ms",
                    "batches_received",
                    "batches_expected",
                ]
                .iter()
                .enumerate()
                {
                    sum[i] += t[k].as_i64().unwrap_or(0);
                }
                d = d.succ_opt().unwrap();
            }
            sum
        }
    };
    let [observed, online, got, expected] = eventually(WAIT, "mine-01's history", || async {
        let s = today_of("mine-01").await;
        (s[2] == 8 && s[0] > 0).then_some(s)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.gateway.log_text()));
    assert_eq!(
        (online, observed > 0, got, expected),
        (observed, true, 8, 9)
    );
    let [observed, online, got, expected] = eventually(WAIT, "mine-02's history", || async {
        let s = today_of("mine-02").await;
        (s[2] == 1).then_some(s)
    })
    .await
    .unwrap();
    assert_eq!((online, observed > 0, got, expected), (0, true, 1, 1));

    let mut total = mine["total"].clone();
    for k in [
        "ack_median_ms",
        "ack_p90_ms",
        "close_median_ms",
        "close_p90_ms",
        "observed_ms",
        "online_ms",
        "online_rate",
        "batches_received",
        "batches_expected",
        "completeness",
    ] {
        total.as_object_mut().unwrap().remove(k);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_of_a_recorded_day_are_the_hand_count_on_sqlite_and_postgres() {
    let on_sqlite = recorded_day(None).await;
    let db = PgDatabase::create().unwrap();
    let on_postgres = recorded_day(Some(db.url())).await;
    assert_eq!(on_sqlite, on_postgres);
}

/// The working face's methane rule of the standard pack, with its alarm at `level` %.
fn methane_rule_at(dir: &Path, level: f64) -> PathBuf {
    let rules = dir.join(format!("rules-{level}"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("working_face.toml"),
        format!(
            "[[rule]]\nid = \"{RULE}\"\nkind = \"threshold\"\n\
             description = \"Methane at the working face, alarm at {level} %\"\n\
             select = {{ category = \"coal_mine\", quantity = \"ch4\", location = \"working_face\" }}\n\
             high = [\n  {{ severity = \"alarm\", raise = {level}, clear = {level} }},\n  \
             {{ severity = \"critical\", raise = 1.5, clear = {level} }},\n]\n"
        ),
    )
    .unwrap();
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_what_if_over_an_exported_day_lists_the_causes_that_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = VictoriaMetrics::start(tmp.path(), &[]).await;
    let rig = Rig::start(None, &[("HRS_INFLUX_URL", vm.url())]).await;
    let admin = rig.token("centre", "admin", "*");
    rig.birth("mine-01", "410522").await;
    eventually(WAIT, "mine-01's birth", || async {
        let (_, points) = rig.get("/api/v1/sites/mine-01/points", &admin).await;
        (points.as_array()?.len() == 1).then_some(())
    })
    .await
    .unwrap();
    // Methane at 0.9 and 0.85 % (an alarm at 0.8 %, not at 1.0 %), then 1.2 % (both).
    let start = Utc::now();
    let values = [0.5, 0.9, 0.5, 0.85, 0.5, 1.2, 0.5];
    for (i, v) in values.iter().enumerate() {
        let ts = (start + Span::milliseconds(10 * i as i64))
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        rig.methane("mine-01", i as u64 + 1, &ts, *v).await;
    }
    eventually(WAIT, "the readings in VictoriaMetrics", || async {
        (vm.export(r#"reading_value{point="CH4-101"}"#).await.len() == values.len()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.gateway.log_text()));

    // The day of the readings, Beijing time, exported with the births the gateway kept.
    let day = start.with_timezone(&beijing()).date_naive();
    let config = rig.dir.join("export.toml");
    std::fs::write(&config, format!("[timeseries]\nurl = \"{}\"\n", vm.url())).unwrap();
    let exported = rig.dir.join("day.jsonl");
    let (since, until) = (at(day, "00:00:00"), at(day.succ_opt().unwrap(), "00:00:00"));
    let paths = [config.display().to_string(), exported.display().to_string()];
    rig.cli(&[
        "export-history",
        "--config",
        &paths[0],
        "--since",
        &since,
        "--until",
        &until,
        "--output",
        &paths[1],
    ]);
    let text = std::fs::read_to_string(&exported).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + values.len(), "{text}");
    assert!(
        lines[0]["topic"]
            .as_str()
            .unwrap()
            .ends_with("/sites/mine-01/edge/birth"),
        "{text}"
    );
    assert_eq!(
        lines[0]["payload"]["points"][0]["tags"]["zone"], "1201",
        "the birth as it was"
    );
    let replayed: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l["payload"]["readings"][0]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(replayed, values);

    // The pack's 1.0 % against 0.8 %.
    let lower = methane_rule_at(&rig.dir, 0.8);
    let standard = methane_rule_at(&rig.dir, 1.0);
    let rules = [standard.display().to_string(), lower.display().to_string()];
    let report = rig.cli(&[
        "replay",
        "--input",
        &paths[1],
        "--rules",
        &rules[0],
        "--compare",
        &rules[1],
    ]);
    assert!(
        report.contains(&format!("  {RULE} mine-01: A 1, B 3  differs")),
        "{report}"
    );
    assert!(report.contains("causes that differ: 1\n"), "{report}");
    assert!(
        report.contains(&format!("  {RULE} mine-01 CH4-101: A raised 1, B raised 3")),
        "{report}"
    );
}
