//! Access control (contract 1.1, Access): a real gateway in `tokens` mode over a real
//! Mosquitto, with a coal mine in one county (410522) and a chemical plant in another province
//! (320506), each with a methane incident. Tokens and users are made with the `gateway token`
//! and `gateway user` commands against the store of the running gateway. A county-scoped
//! operator sees and touches only the mine, through every list, item, export, figure and the
//! SSE stream; the roles' limits answer 403; no credential 401; every action is audited under
//! the authenticated name; repeated failed logins lock a user out; a cookie write without
//! its CSRF token is refused; a token revoked from the command line is refused at once and
//! its open event stream ends.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use system_tests::*;

struct Gw {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    broker: Mosquitto,
    proc: Proc,
    http: String,
    prefix: String,
    client: reqwest::Client,
    store_url: Option<String>,
}

/// `gateway ARGS` on the test gateway's store; `stdin` fed to it. Its standard output.
fn cli(gw: &Gw, args: &[&str], stdin: &str) -> String {
    gateway_cli(&gw.dir, gw.store_url.as_deref(), args, stdin)
}

fn token(gw: &Gw, name: &str, role: &str, scope: &str) -> String {
    let out = cli(
        gw,
        &[
            "token", "create", "--name", name, "--role", role, "--scope", scope,
        ],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on one line: {out:?}");
    assert!(lines[0].starts_with("hrs_"), "{out}");
    lines[0].to_string()
}

fn now_minus(s: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(s))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Gw {
    async fn start(store_url: Option<String>) -> Gw {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let http_port = free_port();
        let prefix = format!("h{}/v1", free_port());
        let mut cmd = gateway_command(&broker.url(), &prefix, http_port, &dir);
        cmd.env("HRS_AUTH_MODE", "tokens");
        if let Some(url) = &store_url {
            cmd.env("HRS_STORE_URL", url);
        }
        let proc = Proc::spawn("gateway", &mut cmd, &dir).unwrap();
        let http = format!("http://127.0.0.1:{http_port}");
        wait_ready(&http)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", proc.log_text()));
        Gw {
            _tmp: tmp,
            dir,
            broker,
            proc,
            http,
            prefix,
            client: reqwest::Client::new(),
            store_url,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.http));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// A site's birth (one methane point at a working face) and a reading that raises its
    /// methane incident.
    async fn site_with_incident(&self, site: &str, region: &str) {
        let base = format!("{}/sites/{site}/edge", self.prefix);
        let birth = json!({"agent": "edge", "epoch": "e1",
            "site": {"name": site, "category": "coal_mine", "region": region},
            "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face"}]});
        publish(
            self.broker.port,
            &format!("{base}/birth"),
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
        let batch = json!({"agent": "edge", "epoch": "e1", "seq": 1,
            "readings": [{"point": "CH4-101", "ts": now_minus(1), "value": 1.8}]});
        publish(
            self.broker.port,
            &format!("{base}/readings"),
            batch.to_string().into_bytes(),
            false,
        )
        .await
        .unwrap();
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["site"].as_str().or(i["id"].as_str()).unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_roles_audit_lockout_csrf_and_revocation_on_sqlite() {
    access_story(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_roles_audit_lockout_csrf_and_revocation_on_postgres() {
    let db = PgDatabase::create().unwrap();
    access_story(Some(db.url())).await;
}

async fn access_story(store_url: Option<String>) {
    let gw = Gw::start(store_url).await;
    let admin = token(&gw, "province-admin", "admin", "*");
    let county = token(&gw, "county-duty", "operator", "region:410522");
    let viewer = token(&gw, "county-viewer", "viewer", "region:4105");
    cli(
        &gw,
        &[
            "user",
            "add",
            "wang",
            "--role",
            "operator",
            "--scope",
            "region:410522",
        ],
        "Duty-Officer-2026\n",
    );
    cli(
        &gw,
        &[
            "user",
            "add",
            "li",
            "--role",
            "viewer",
            "--scope",
            "site:mine-01",
        ],
        "Night-Shift-2026\n",
    );
    let listed = cli(&gw, &["token", "list"], "");
    assert!(
        listed.contains("county-duty\toperator\tregion:410522\ton") && !listed.contains("hrs_"),
        "tokens are listed, their secrets never: {listed}"
    );

    gw.site_with_incident("mine-01", "410522").await;
    gw.site_with_incident("plant-02", "320506").await;
    let all = eventually(Duration::from_secs(20), "both incidents", || async {
        let (_, v) = gw.get("/api/v1/incidents?state=open", &admin).await;
        (v.as_array()?.len() == 2).then_some(v)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));
    let id_of = |site: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|i| i["site"] == site)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (mine, plant) = (id_of("mine-01"), id_of("plant-02"));

    // 401: no credential, or a bad one, on every kind of route; public routes need none.
    for (method, path) in [
        (Method::GET, "/api/v1/sites".to_string()),
        (Method::GET, "/api/v1/incidents".to_string()),
        (Method::GET, format!("/api/v1/incidents/{mine}")),
        (Method::GET, "/api/v1/incidents.csv".to_string()),
        (Method::GET, "/api/v1/events".to_string()),
        (Method::GET, "/api/v1/alarm-load".to_string()),
        (Method::GET, "/api/v1/weather/warnings".to_string()),
        (Method::GET, "/api/v1/dead-letters".to_string()),
        (Method::GET, "/api/v1/subscribers".to_string()),
        (Method::GET, "/api/v1/audit".to_string()),
        (Method::POST, format!("/api/v1/incidents/{mine}/ack")),
        (Method::POST, "/api/v1/rules/reload".to_string()),
        (Method::POST, "/api/v1/tokens".to_string()),
    ] {
        let (st, body) = gw.call(method.clone(), &path, None, Some(json!({}))).await;
        assert_eq!(st, 401, "{method} {path} without a credential: {body}");
        assert!(body["error"].is_string());
        let (st, _) = gw
            .call(
                method.clone(),
                &path,
                Some("hrs_not-a-token"),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 401, "{method} {path} with a bad token");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (st, _) = gw.call(Method::GET, path, None, None).await;
        assert_eq!(st, 200, "{path} is public");
    }

    // The county operator sees the mine only, through every view.
    let (_, sites) = gw.get("/api/v1/sites", &county).await;
    assert_eq!(ids(&sites), ["mine-01"]);
    let (_, list) = gw.get("/api/v1/incidents", &county).await;
    assert_eq!(ids(&list), ["mine-01"]);
    let (st, _) = gw.get(&format!("/api/v1/incidents/{plant}"), &county).await;
    assert_eq!(st, 404, "out of scope reads as unknown");
    let (st, unknown) = gw
        .get("/api/v1/incidents/01JD8X0000000000000000000Z", &county)
        .await;
    assert_eq!(st, 404);
    let (st, out_of_scope) = gw.get(&format!("/api/v1/incidents/{plant}"), &county).await;
    assert_eq!(
        (
            st,
            out_of_scope["error"]
                .as_str()
                .map(|e| e.starts_with("no incident"))
        ),
        (
            StatusCode::NOT_FOUND,
            unknown["error"]
                .as_str()
                .map(|e| e.starts_with("no incident"))
        )
    );
    for path in [
        "/api/v1/sites/plant-02/points",
        "/api/v1/sites/plant-02/agents",
    ] {
        let (st, _) = gw.get(path, &county).await;
        assert_eq!(st, 404, "{path}");
    }
    let (st, _) = gw.get("/api/v1/sites/mine-01/points", &county).await;
    assert_eq!(st, 200);
    let (_, csv) = gw.get("/api/v1/incidents.csv", &county).await;
    let csv = csv.as_str().unwrap().to_string();
    assert!(
        csv.contains("mine-01") && !csv.contains("plant-02"),
        "{csv}"
    );
    let (_, load) = gw.get("/api/v1/alarm-load", &county).await;
    let load_sites: Vec<&String> = load["sites"].as_object().unwrap().keys().collect();
    assert_eq!(load_sites, ["mine-01"]);
    let (_, load) = gw.get("/api/v1/alarm-load", &admin).await;
    assert_eq!(load["sites"].as_object().unwrap().len(), 2, "{load}");
    let (st, _) = gw
        .post(
            "/api/v1/sites/plant-02/points/CH4-101/out-of-service",
            &county,
            json!({"reason": "calibration", "duration_ms": 60000}),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = gw
        .post(
            &format!("/api/v1/incidents/{plant}/ack"),
            &county,
            json!({}),
        )
        .await;
    assert_eq!(
        st, 404,
        "an action out of scope is 404, and nothing happens"
    );
    let (_, p) = gw.get(&format!("/api/v1/incidents/{plant}"), &admin).await;
    assert_eq!(p["state"], "active");

    // The SSE stream from the start of the log holds the mine's events only.
    let mut resp = gw
        .client
        .get(format!("{}/api/v1/events", gw.http))
        .bearer_auth(&county)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while !text.contains(&mine) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("the mine's event on the stream")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains("plant-02"), "{text}");

    // Roles: a viewer may not act, an operator may not administer, a scoped admin may not act
    // on the whole gateway.
    let (st, body) = gw
        .post(&format!("/api/v1/incidents/{mine}/ack"), &viewer, json!({}))
        .await;
    assert_eq!(st, 403, "{body}");
    for path in ["/api/v1/rules/reload", "/api/v1/weather/cap"] {
        let (st, _) = gw.post(path, &county, json!({})).await;
        assert_eq!(st, 403, "{path}");
    }
    let (st, _) = gw.get("/api/v1/audit", &county).await;
    assert_eq!(st, 403);
    let (st, body) = gw
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "city-admin", "role": "admin", "scopes": "region:4105"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let city_admin = body["token"].as_str().unwrap().to_string();
    let (st, _) = gw
        .post("/api/v1/rules/reload", &city_admin, json!({}))
        .await;
    assert_eq!(st, 403, "rules act on every site: scope * only");
    let (st, body) = gw
        .post(
            "/api/v1/tokens",
            &city_admin,
            json!({"name": "too-wide", "role": "viewer", "scopes": "region:32"}),
        )
        .await;
    assert_eq!(st, 403, "an admin grants only within its own: {body}");
    let (st, _) = gw
        .post(
            "/api/v1/tokens",
            &city_admin,
            json!({"name": "county-2", "role": "viewer", "scopes": "region:410522"}),
        )
        .await;
    assert_eq!(st, 201);

    // A warning over both sites lists, to the county, only the mine; so does the list of
    // points out of service.
    let posted = gw
        .client
        .post(format!("{}/api/v1/weather/cap", gw.http))
        .bearer_auth(&admin)
        .body(cap_over_both())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let warning_sites = |v: &Value| -> Vec<String> {
        let mut s: Vec<String> = v[0]["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };
    let (_, w) = gw.get("/api/v1/weather/warnings", &admin).await;
    assert_eq!(warning_sites(&w), ["mine-01", "plant-02"], "{w}");
    let (_, w) = gw.get("/api/v1/weather/warnings", &county).await;
    assert_eq!(warning_sites(&w), ["mine-01"], "{w}");
    for (site, tok) in [("mine-01", &county), ("plant-02", &admin)] {
        let (st, body) = gw
            .post(
                &format!("/api/v1/sites/{site}/points/CH4-101/out-of-service"),
                tok,
                json!({"reason": "calibration", "duration_ms": 60000}),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    let (_, oos) = gw.get("/api/v1/out-of-service", &county).await;
    assert_eq!(ids(&oos), ["mine-01"], "{oos}");
    let (_, oos) = gw.get("/api/v1/out-of-service", &admin).await;
    assert_eq!(oos.as_array().unwrap().len(), 2, "{oos}");

    // The operator of an action is the authenticated name; the body's is ignored.
    let (st, acked) = gw
        .post(
            &format!("/api/v1/incidents/{mine}/ack"),
            &county,
            json!({"operator": "somebody-else", "note": "ventilating"}),
        )
        .await;
    assert_eq!(st, 200, "{acked}");
    assert_eq!(acked["acked_by"], "county-duty");

    // Logins: a session cookie (HttpOnly, SameSite), writes only with its CSRF token.
    let login = gw
        .client
        .post(format!("{}/api/v1/login", gw.http))
        .json(&json!({"user": "wang", "password": "Duty-Officer-2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let body: Value = login.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let with_cookie = |m: Method, path: &str| {
        gw.client
            .request(m, format!("{}{path}", gw.http))
            .header("cookie", &session)
    };
    let r = with_cookie(Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(ids(&r.json().await.unwrap()), ["mine-01"]);
    let comment = format!("/api/v1/incidents/{mine}/comment");
    let r = with_cookie(Method::POST, &comment)
        .json(&json!({"text": "checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a cookie write without the CSRF token");
    let r = with_cookie(Method::POST, &comment)
        .header("x-csrf-token", &csrf)
        .json(&json!({"text": "checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Five failed logins in a row lock the user out: then even the right password is refused.
    for _ in 0..5 {
        let (st, _) = gw
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(json!({"user": "li", "password": "guess-1234A"})),
            )
            .await;
        assert_eq!(st, 401);
    }
    let (st, _) = gw
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "li", "password": "Night-Shift-2026"})),
        )
        .await;
    assert_eq!(st, 401, "locked out");

    // The audit log: each action under its name, with where from; refusals and failed logins.
    let (st, audit) = gw.get("/api/v1/audit?limit=1000", &admin).await;
    assert_eq!(st, 200);
    let entries = audit.as_array().unwrap();
    let has = |who: &str, action: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["who"] == who
                && e["action"].as_str().unwrap().contains(action)
                && e["outcome"] == outcome
                && e["source"].as_str().unwrap().starts_with("127.0.0.1:")
        })
    };
    assert!(
        has("county-duty", "POST /api/v1/incidents/{id}/ack", "200"),
        "{audit}"
    );
    assert!(
        has("wang", "POST /api/v1/incidents/{id}/comment", "200"),
        "{audit}"
    );
    assert!(
        has("wang", "POST /api/v1/incidents/{id}/comment", "403"),
        "{audit}"
    );
    assert!(
        has("county-viewer", "POST /api/v1/incidents/{id}/ack", "403"),
        "{audit}"
    );
    assert!(
        has("province-admin", "POST /api/v1/tokens", "201"),
        "{audit}"
    );
    assert!(has("wang", "login", "ok"), "{audit}");
    let failed = entries
        .iter()
        .filter(|e| e["who"] == "li" && e["action"] == "login" && e["outcome"] == "refused")
        .count();
    assert_eq!(failed, 6, "{audit}");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "token create" && e["source"] == "cli"));
    let ack = entries
        .iter()
        .find(|e| e["who"] == "county-duty" && e["outcome"] == "200")
        .unwrap();
    assert_eq!(ack["site"], "mine-01");
    assert_eq!(ack["target"], format!("/api/v1/incidents/{mine}/ack"));
    // A city admin reads the entries of its sites only.
    let (_, city_audit) = gw.get("/api/v1/audit?limit=1000", &city_admin).await;
    assert!(city_audit
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["site"] == "mine-01"));

    // Revoked from the command line while the gateway runs: refused at once, its stream ends.
    let mut resp = gw
        .client
        .get(format!("{}/api/v1/events", gw.http))
        .bearer_auth(&county)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    cli(&gw, &["token", "revoke", "county-duty"], "");
    let (st, _) = gw.get("/api/v1/incidents", &county).await;
    assert_eq!(st, 401, "a revoked token is refused at once");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked token's stream ended");
    // Disabling a user ends its session at once.
    cli(&gw, &["user", "disable", "wang"], "");
    let r = with_cookie(Method::GET, "/api/v1/incidents")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A rainstorm warning over Anyang (410500: the mine) and Suzhou (320500: the plant), now. Blue:
/// below the orange that calls for the mines' stop-and-withdraw check (coal.rainstorm.withdraw),
/// so it raises no incident and the lists below hold the methane incident alone.
fn cap_over_both() -> String {
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now + d).format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>access-test-1</identifier>
  <sender>cma@12379.cn</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨蓝色预警</event>
    <urgency>Immediate</urgency>
    <severity>Minor</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>CMA</valueName><value>11B03</value></eventCode>
    <effective>{sent}</effective>
    <expires>{expires}</expires>
    <headline>暴雨蓝色预警</headline>
    <area><areaDesc>安阳市</areaDesc><geocode><valueName>GB/T 2260</valueName><value>410500</value></geocode></area>
    <area><areaDesc>苏州市</areaDesc><geocode><valueName>GB/T 2260</valueName><value>320500</value></geocode></area>
  </info>
</alert>"#,
        sent = t(-chrono::Duration::minutes(1)),
        expires = t(chrono::Duration::hours(12)),
    )
}

/// `gateway run` in open mode refuses to listen beyond loopback unless told to.
#[test]
fn open_mode_stays_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin_path("gateway"))
        .arg("check")
        .env("HRS_AUTH_MODE", "open")
        .env("HRS_HTTP_ADDR", "0.0.0.0:8080")
        .env("HRS_DATA_DIR", tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.open_on_network"), "{err}");
}
