//! Forwarding end to end (issue 9): the gateway as a real process over a real Mosquitto,
//! delivering incident events to a real HTTP receiver in this test that answers 503 for a
//! while, answers too slowly (past `timeout_ms`), is not listening for a while, and refuses
//! one specific event with 400; the gateway is SIGKILLed in the middle and restarted. Every
//! other event arrives, in order per site, each retry under the same Idempotency-Key, signed;
//! the refused one is parked and resent over the API. Subscribers: DingTalk signatures checked
//! by the receiver, escalation tiers that fire and stop on acknowledgement, a flood that
//! becomes one summary, and the subscribers API.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use system_tests::*;

const PLATFORM_SECRET: &str = "s3cret-platform";
const DING_SECRET: &str = "SECtest-ding";

// ---------------------------------------------------------------------------------------------
// The receiver: a real HTTP server on a port of its own.

#[derive(Debug, Clone)]
struct Req {
    path: String,
    query: String,
    key: Option<String>,
    ts: Option<String>,
    sig: Option<String>,
    body: Vec<u8>,
    json: Value,
    /// What the gateway saw: an HTTP status, or 0 when we answered after its timeout.
    status: u16,
}

#[derive(Default)]
struct Script {
    /// Answer 503 to this many platform requests.
    fail_503: usize,
    /// Sleep past the gateway's timeout for this many platform requests.
    slow: usize,
    /// Refuse (400) the first `escalated` event of this site, and that event id ever after.
    reject_escalated_of: Option<String>,
    rejected_id: Option<String>,
    requests: Vec<Req>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Script>>);

const SLOW: Duration = Duration::from_millis(1500);

fn hmac_hex(key: &str, text: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(text);
    hex::encode(m.finalize().into_bytes())
}

async fn receive(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut req = Req {
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        key: h("idempotency-key"),
        ts: h("x-hrs-timestamp"),
        sig: h("x-hrs-signature"),
        body: body.to_vec(),
        json: json.clone(),
        status: 200,
    };
    let mut sleep = false;
    {
        let mut s = r.0.lock().unwrap();
        if req.path == "/platform" {
            let id = json["event_id"].as_str().unwrap_or("").to_string();
            if s.fail_503 > 0 {
                s.fail_503 -= 1;
                req.status = 503;
            } else if s.slow > 0 {
                s.slow -= 1;
                req.status = 0;
                sleep = true;
            } else if s.rejected_id.as_deref() == Some(id.as_str())
                || (s.rejected_id.is_none()
                    && s.reject_escalated_of
                        .as_deref()
                        .is_some_and(|site| json["site"] == site && json["event"] == "escalated"))
            {
                s.rejected_id = Some(id);
                req.status = 400;
            }
        } else if req.path.starts_with("/ding/") {
            // The robot checks its signature: timestamp and sign in the query.
            let q: HashMap<String, String> = req
                .query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect();
            let ok = match (q.get("timestamp"), q.get("sign")) {
                (Some(ts), Some(sign)) => {
                    let mut m = Hmac::<Sha256>::new_from_slice(DING_SECRET.as_bytes()).unwrap();
                    m.update(format!("{ts}\n{DING_SECRET}").as_bytes());
                    let expect =
                        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
                    &expect == sign
                }
                _ => false,
            };
            req.status = if ok { 200 } else { 299 };
        }
        s.requests.push(req.clone());
    }
    if sleep {
        tokio::time::sleep(SLOW).await;
        return (StatusCode::OK, "too late").into_response();
    }
    if req.path.starts_with("/ding/") || req.path.starts_with("/wecom/") {
        let body = if req.status == 299 {
            json!({"errcode": 310000, "errmsg": "sign not match"})
        } else {
            json!({"errcode": 0, "errmsg": "ok"})
        };
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    match req.status {
        503 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        400 => (StatusCode::BAD_REQUEST, "schema says no").into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The receiver's server; stop it to make the port refuse connections.
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(r: &Receiver, port: u16) -> Server {
        let app = axum::Router::new().fallback(receive).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            stop: Some(tx),
            task: Some(task),
        }
    }
    /// Stop listening and close every connection (idle keep-alive ones at once).
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Receiver {
    fn requests(&self) -> Vec<Req> {
        self.0.lock().unwrap().requests.clone()
    }
    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
    /// Event ids the platform accepted (2xx in time), in order of their first acceptance, per site.
    fn accepted_per_site(&self) -> HashMap<String, Vec<String>> {
        let mut seen = HashSet::new();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for r in self
            .requests()
            .iter()
            .filter(|r| r.path == "/platform" && r.status == 200)
        {
            let id = r.json["event_id"].as_str().unwrap().to_string();
            if seen.insert(id.clone()) {
                out.entry(r.json["site"].as_str().unwrap().to_string())
                    .or_default()
                    .push(id);
            }
        }
        out
    }
    fn accepted(&self, event_id: &str) -> bool {
        self.requests()
            .iter()
            .any(|r| r.path == "/platform" && r.status == 200 && r.json["event_id"] == event_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The system: broker, gateway process, config file.

struct System {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    broker: Mosquitto,
    gateway: Proc,
    http: String,
    http_port: u16,
    prefix: String,
    config: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl System {
    async fn start(config: &str, env: Vec<(String, String)>) -> System {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let http_port = free_port();
        let cfg = dir.join("gateway.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut s = System {
            _tmp: tmp,
            dir,
            broker,
            gateway: Proc {
                name: String::new(),
                child: None,
                log: Default::default(),
            },
            http: format!("http://127.0.0.1:{http_port}"),
            http_port,
            prefix: format!("f{}/v1", free_port()),
            config: cfg,
            env,
        };
        s.start_gateway().await;
        s
    }

    async fn start_gateway(&mut self) {
        let mut cmd = gateway_command(&self.broker.url(), &self.prefix, self.http_port, &self.dir);
        cmd.arg("--config")
            .arg(&self.config)
            .env("HRS_LOG", "info,gateway::outbox=debug,sqlx=warn");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.gateway = Proc::spawn("gateway", &mut cmd, &self.dir).unwrap();
        wait_ready(&self.http)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()));
    }

    async fn birth(&self, site: &str, region: &str, points: &[&str]) {
        let agent = format!("{site}-edge");
        let pts: Vec<Value> = points
            .iter()
            .map(
                |p| json!({"point": p, "quantity": "ch4", "unit": "%", "location": "working_face"}),
            )
            .collect();
        let mut birth = json!({"agent": agent, "epoch": "e1",
            "site": {"name": format!("site {site}"), "category": "coal_mine", "region": region}, "points": pts});
        if site.starts_with("chem") {
            birth = json!({"agent": agent, "epoch": "e1", "site": {"name": "chem", "category": "hazchem", "region": region},
                "points": [{"point": "IL-R3", "quantity": "interlock_bypass", "unit": "bool"}]});
        }
        publish(
            self.broker.port,
            &format!("{}/sites/{site}/{agent}/birth", self.prefix),
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
    }

    async fn batch(&self, site: &str, seq: u64, readings: Value) {
        let agent = format!("{site}-edge");
        let b = json!({"agent": agent, "epoch": "e1", "seq": seq, "readings": readings});
        publish(
            self.broker.port,
            &format!("{}/sites/{site}/{agent}/readings", self.prefix),
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

    async fn wait<T>(&self, what: &str, within: Duration, f: impl Fn() -> Option<T>) -> T {
        eventually(within, what, || {
            let v = f();
            async move { v }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()))
    }

    async fn wait_incident(&self, what: &str, pred: impl Fn(&Value) -> bool + Clone) -> Value {
        let r = eventually(Duration::from_secs(20), what, || {
            let pred = pred.clone();
            async move {
                self.incidents("limit=100")
                    .await
                    .into_iter()
                    .find(|i| pred(i))
            }
        })
        .await;
        r.unwrap_or_else(|e| panic!("{e}\n{}", self.gateway.log_text()))
    }

    async fn history(&self, id: &str) -> Vec<Value> {
        let (_, full) = get_json(&format!("{}/api/v1/incidents/{id}", self.http))
            .await
            .unwrap();
        full["history"].as_array().cloned().unwrap_or_default()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Now (the gateway runs on the wall clock), as RFC 3339.
/// Now, in milliseconds, and strictly later than any time this test took before: two batches
/// published within one millisecond must not carry the same event time (the engine judges a
/// point's readings in event time and takes a second reading at the same time for a replay).
fn now_ts() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST_MS: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_millis();
    let ms = LAST_MS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .map(|last| now.max(last + 1))
        .unwrap_or(now);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ch4(point: &str, v: f64) -> Value {
    json!({"point": point, "ts": now_ts(), "value": v})
}

/// Take what the watcher received into the log (first occurrence of each event id).
fn drain(watch: &mut Watcher, log: &mut Vec<Value>) {
    while let Ok((_, payload)) = watch.rx.try_recv() {
        let v: Value = serde_json::from_slice(&payload).unwrap();
        if !log.iter().any(|e| e["event_id"] == v["event_id"]) {
            log.push(v);
        }
    }
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_gets_every_event_in_order_through_failures_and_a_sigkill() {
    platform_story(None).await;
}

/// The same with the store (outbox, lanes, parked deliveries) on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_story_on_postgres() {
    let db = PgDatabase::create().unwrap();
    platform_story(Some(db.url())).await;
}

async fn platform_story(store_url: Option<String>) {
    let receiver = Receiver::default();
    let rport = free_port();
    let mut server = Server::start(&receiver, rport).await;
    receiver.with(|s| {
        s.fail_503 = 3;
        s.reject_escalated_of = Some("mine-01".into());
    });
    let config = "[forwarding]\nretry_initial_ms = 100\n\n[[forwarding.endpoints]]\nname = \"platform\"\nurl = \"http://placeholder.invalid/\"\ntimeout_ms = 700\nmax_backoff_ms = 800\n";
    let env = vec![
        (
            "HRS_PLATFORM_URL".to_string(),
            format!("http://127.0.0.1:{rport}/platform"),
        ),
        (
            "HRS_PLATFORM_SECRET".to_string(),
            PLATFORM_SECRET.to_string(),
        ),
    ]
    .into_iter()
    .chain(store_url.map(|u| ("HRS_STORE_URL".to_string(), u)))
    .collect();
    let mut sys = System::start(config, env).await;
    let mut watch = Watcher::start(sys.broker.port, &format!("{}/incidents/#", sys.prefix))
        .await
        .unwrap();
    // The log order, as the gateway's MQTT publisher reports it (deduplicated by event id).
    let mut log: Vec<Value> = Vec::new();

    sys.birth("mine-01", "410522", &["CH4-101", "CH4-102"])
        .await;
    sys.birth("chem-01", "410502", &[]).await;

    // Phase 1: the platform answers 503 three times; two sites raise.
    sys.batch("mine-01", 1, json!([ch4("CH4-101", 1.1)])).await;
    sys.batch(
        "chem-01",
        1,
        json!([{"point": "IL-R3", "ts": now_ts(), "value": true}]),
    )
    .await;
    sys.wait("both raises accepted", Duration::from_secs(30), || {
        let a = receiver.accepted_per_site();
        (a.get("mine-01").is_some_and(|v| !v.is_empty())
            && a.get("chem-01").is_some_and(|v| !v.is_empty()))
        .then_some(())
    })
    .await;
    assert_eq!(
        receiver.with(|s| s.fail_503),
        0,
        "the three 503s were answered"
    );

    // Phase 2: the escalation of mine-01 is refused (400: parked); the next two requests time out.
    receiver.with(|s| s.slow = 2);
    sys.batch("mine-01", 2, json!([ch4("CH4-101", 1.6)])).await;
    let rejected = sys
        .wait(
            "the escalated event refused",
            Duration::from_secs(30),
            || receiver.with(|s| s.rejected_id.clone()),
        )
        .await;
    sys.batch("mine-01", 3, json!([ch4("CH4-102", 1.2)])).await;
    sys.batch(
        "chem-01",
        2,
        json!([{"point": "IL-R3", "ts": now_ts(), "value": false}]),
    )
    .await;
    // The parked event is listed with its status, and the site's later events go on.
    let http = sys.http.clone();
    let parked = eventually(Duration::from_secs(20), "the refused event parked", || {
        let http = http.clone();
        async move {
            let (st, parked) = get_json(&format!("{http}/api/v1/deliveries/parked"))
                .await
                .ok()?;
            assert_eq!(st, 200);
            let parked = parked.as_array()?.clone();
            (!parked.is_empty()).then_some(parked)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", sys.gateway.log_text()));
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["message_id"], rejected.as_str());
    assert_eq!(parked[0]["status"], 400);
    assert_eq!(parked[0]["target"], "endpoint:platform");
    assert_eq!(parked[0]["site"], "mine-01");
    sys.wait(
        "the events after the parked one delivered (after two timeouts)",
        Duration::from_secs(30),
        || {
            let a = receiver.accepted_per_site();
            (a.get("mine-01").map_or(0, |v| v.len()) >= 2
                && a.get("chem-01").map_or(0, |v| v.len()) >= 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(receiver.with(|s| s.slow), 0, "both slow answers were used");
    let m = sys.metrics().await;
    assert_eq!(metric(&m, "hrs_deliveries_parked "), 1.0, "{m}");
    assert!(
        metric(
            &m,
            "hrs_deliveries_total{endpoint_kind=\"http\",outcome=\"retried\",target=\"platform\"}"
        ) >= 5.0,
        "3 x 503 + 2 timeouts: {m}"
    );
    assert!(
        metric(
            &m,
            "hrs_deliveries_total{endpoint_kind=\"http\",outcome=\"parked\",target=\"platform\"}"
        ) >= 1.0,
        "{m}"
    );

    // Phase 3: the platform is unreachable; events pile up; the gateway is SIGKILLed and
    // restarted; more events arrive meanwhile; then the platform comes back.
    server.stop().await;
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{rport}/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "the receiver's port refuses connections");
    sys.batch(
        "mine-01",
        4,
        json!([ch4("CH4-101", 0.5), ch4("CH4-102", 0.3)]),
    )
    .await;
    sys.batch(
        "chem-01",
        3,
        json!([{"point": "IL-R3", "ts": now_ts(), "value": true}]),
    )
    .await;
    let open_chem = sys
        .wait_incident("a second chem incident", |i| {
            i["site"] == "chem-01" && i["state"] == "active"
        })
        .await;
    sys.wait_incident("mine-01 cleared", |i| {
        i["point"] == "CH4-102" && i["state"] == "cleared"
    })
    .await;
    sys.gateway.kill();
    sys.batch("mine-01", 5, json!([ch4("CH4-101", 1.1)])).await; // waits in the broker's session
    sys.start_gateway().await;
    let (st, _) = post_json(
        &format!(
            "{}/api/v1/incidents/{}/ack",
            sys.http,
            open_chem["id"].as_str().unwrap()
        ),
        json!({"operator": "wang"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200);
    sys.wait_incident("the raise queued while the gateway was down", |i| {
        i["point"] == "CH4-101" && i["state"] == "active"
    })
    .await;
    // Retries against a closed port, after the restart.
    eventually(
        Duration::from_secs(20),
        "retries counted after the restart",
        || {
            let http = http.clone();
            async move {
                let m = reqwest::get(format!("{http}/metrics"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                (metric(
                    &m,
                    "hrs_deliveries_total{endpoint_kind=\"http\",outcome=\"retried\",target=\"platform\"}",
                ) >= 2.0)
                    .then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", sys.gateway.log_text()));
    let m = sys.metrics().await;
    assert_eq!(
        metric(&m, "hrs_deliveries_parked "),
        1.0,
        "the parked count survives the restart: {m}"
    );
    server = Server::start(&receiver, rport).await;

    // Every event of the log but the refused one arrives, in log order per site.
    let expected = |log: &[Value]| -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for e in log.iter().filter(|e| e["event_id"] != rejected.as_str()) {
            out.entry(e["site"].as_str().unwrap().to_string())
                .or_default()
                .push(e["event_id"].as_str().unwrap().to_string());
        }
        out
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        drain(&mut watch, &mut log);
        let want = expected(&log);
        let n: usize = want.values().map(|v| v.len()).sum();
        if n >= 9 && receiver.accepted_per_site() == want {
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "not every event delivered in order per site:\nlog {want:#?}\nplatform {:#?}\n{}",
                receiver.accepted_per_site(),
                sys.gateway.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kinds: Vec<String> = log
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["site"].as_str().unwrap(),
                e["event"].as_str().unwrap()
            )
        })
        .collect();
    for k in [
        "mine-01:raised",
        "mine-01:escalated",
        "mine-01:cleared",
        "chem-01:raised",
        "chem-01:cleared",
        "chem-01:acknowledged",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }

    // Every request: the key is the event id, the signature holds; retries repeat the key.
    let reqs = receiver.requests();
    let platform: Vec<&Req> = reqs.iter().filter(|r| r.path == "/platform").collect();
    let mut attempts: HashMap<String, usize> = HashMap::new();
    for r in &platform {
        let id = r.json["event_id"].as_str().unwrap();
        assert_eq!(
            r.key.as_deref(),
            Some(id),
            "Idempotency-Key is the event id"
        );
        let ts = r.ts.as_deref().expect("X-HRS-Timestamp");
        let mut text = ts.as_bytes().to_vec();
        text.push(b'.');
        text.extend_from_slice(&r.body);
        assert_eq!(
            r.sig.as_deref(),
            Some(format!("sha256={}", hmac_hex(PLATFORM_SECRET, &text)).as_str()),
            "signature of {id}"
        );
        *attempts.entry(id.to_string()).or_default() += 1;
    }
    assert!(
        attempts.values().any(|n| *n >= 3),
        "some event was retried under its key: {attempts:?}"
    );
    assert!(
        platform.iter().any(|r| r.status == 0),
        "some attempt timed out"
    );

    // The parked event, resent by an operator once the platform takes it.
    receiver.with(|s| s.rejected_id = Some("nothing".into()));
    assert!(!receiver.accepted(&rejected));
    let id = parked[0]["id"].as_i64().unwrap();
    let (st, body) = post_json(
        &format!("{}/api/v1/deliveries/parked/{id}/resend", sys.http),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["state"], "resent");
    assert!(
        receiver.accepted(&rejected),
        "the resent event reached the platform"
    );
    let (st, _) = post_json(
        &format!("{}/api/v1/deliveries/parked/{id}/resend", sys.http),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(st, 409, "a resent delivery is not parked any more");
    let (st, _) = post_json(
        &format!("{}/api/v1/deliveries/parked/999999/resend", sys.http),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(st, 404);
    let (_, still) = get_json(&format!("{}/api/v1/deliveries/parked", sys.http))
        .await
        .unwrap();
    assert_eq!(still.as_array().unwrap().len(), 0, "{still}");
    let (_, resent) = get_json(&format!(
        "{}/api/v1/deliveries/parked?state=resent",
        sys.http
    ))
    .await
    .unwrap();
    assert_eq!(resent[0]["message_id"], rejected.as_str());
    let m = sys.metrics().await;
    assert_eq!(metric(&m, "hrs_deliveries_parked "), 0.0, "{m}");
    assert_eq!(
        metric(
            &m,
            "hrs_deliveries_total{endpoint_kind=\"http\",outcome=\"resent\",target=\"platform\"}"
        ),
        1.0,
        "{m}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_escalation_and_flood() {
    let receiver = Receiver::default();
    let rport = free_port();
    let mut server = Server::start(&receiver, rport).await;
    let r = format!("http://127.0.0.1:{rport}");
    let config = format!(
        r#"
[forwarding]
retry_initial_ms = 100
escalation_check_ms = 100

[forwarding.flood]
max_incidents = 3
window_ms = 3000

[[forwarding.subscribers]]
id = "duty-ding"
filter = {{ region = "410500", min_severity = "alarm" }}
channel = {{ kind = "dingtalk", url = "{r}/ding/duty?access_token=tok", secret = "{DING_SECRET}" }}

[[forwarding.subscribers]]
id = "flood-hook"
filter = {{ site = "mine-02" }}
channel = {{ kind = "webhook", url = "{r}/hook/flood" }}

[[forwarding.subscribers]]
id = "leader"
filter = {{ rule = "none.such" }}
channel = {{ kind = "webhook", url = "{r}/hook/leader" }}

[[forwarding.subscribers]]
id = "director"
filter = {{ rule = "none.such" }}
channel = {{ kind = "wecom", url = "{r}/wecom/director?key=k" }}

[[forwarding.escalation]]
name = "methane"
filter = {{ rule = "coal.ch4", site = "mine-01" }}
tiers = [
  {{ name = "shift-leader", after_ms = 1500, subscribers = ["leader"] }},
  {{ name = "mine-director", after_ms = 6000, subscribers = ["director"] }},
]
"#
    );
    let sys = System::start(&config, vec![]).await;
    let http = sys.http.clone();

    // Subscribers API: the file's are listed (secrets redacted); an API one can be added and
    // removed; the file's cannot be removed over the API.
    let (st, list) = get_json(&format!("{http}/api/v1/subscribers"))
        .await
        .unwrap();
    assert_eq!(st, 200);
    let ding = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "duty-ding")
        .unwrap()
        .clone();
    assert_eq!(ding["source"], "config");
    assert_eq!(ding["channel"]["secret"], "***");
    assert!(
        !ding["channel"]["url"].as_str().unwrap().contains("tok"),
        "{ding}"
    );
    let (st, added) = post_json(
        &format!("{http}/api/v1/subscribers"),
        json!({"id": "ops-sse", "filter": {"site": "mine-01"}, "channel": {"kind": "sse"}}),
    )
    .await
    .unwrap();
    assert_eq!(st, 201, "{added}");
    assert_eq!(added["source"], "api");
    let (st, _) = post_json(
        &format!("{http}/api/v1/subscribers"),
        json!({"id": "ops-sse", "channel": {"kind": "sse"}}),
    )
    .await
    .unwrap();
    assert_eq!(st, 409);
    let (st, e) = post_json(
        &format!("{http}/api/v1/subscribers"),
        json!({"id": "x", "channel": {"kind": "webhook", "url": "ftp://x"}}),
    )
    .await
    .unwrap();
    assert_eq!(st, 400, "{e}");
    let (st, e) = post_json(
        &format!("{http}/api/v1/subscribers"),
        json!({"id": "x", "filter": {"colour": "red"}, "channel": {"kind": "sse"}}),
    )
    .await
    .unwrap();
    assert_eq!(st, 400, "unknown filter key: {e}");
    let del = |id: &str| {
        let url = format!("{http}/api/v1/subscribers/{id}");
        async move {
            reqwest::Client::new()
                .delete(url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(del("duty-ding").await, 409);
    assert_eq!(del("nobody").await, 404);
    let (st, _) = post_json(
        &format!("{http}/api/v1/subscribers"),
        json!({"id": "tmp-hook", "channel": {"kind": "webhook", "url": format!("{r}/hook/tmp")}}),
    )
    .await
    .unwrap();
    assert_eq!(st, 201);
    assert_eq!(del("tmp-hook").await, 204);
    let (_, list) = get_json(&format!("{http}/api/v1/subscribers"))
        .await
        .unwrap();
    assert!(!list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == "tmp-hook"));

    // The SSE subscriber's stream, opened before the incidents.
    let sse = reqwest::Client::new()
        .get(format!("{http}/api/v1/subscribers/ops-sse/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status().as_u16(), 200);
    let sse_task = tokio::spawn(async move {
        let mut sse = sse;
        let mut text = String::new();
        while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(20), sse.chunk())
            .await
            .unwrap_or(Ok(None))
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.matches("event: incident").count() >= 3 {
                break;
            }
        }
        text
    });

    // Three methane alarms at mine-01 (no flood: the limit is more than three).
    sys.birth("mine-01", "410522", &["CH4-101", "CH4-102", "CH4-103"])
        .await;
    sys.birth(
        "mine-02",
        "420100",
        &["P1", "P2", "P3", "P4", "P5", "P6", "P7"],
    )
    .await;
    sys.batch(
        "mine-01",
        1,
        json!([
            ch4("CH4-101", 1.1),
            ch4("CH4-102", 1.1),
            ch4("CH4-103", 1.1)
        ]),
    )
    .await;
    let i102 = sys
        .wait_incident("CH4-102 raised", |i| i["point"] == "CH4-102")
        .await;
    // CH4-102 is acknowledged at once: it is never escalated.
    let (st, _) = post_json(
        &format!(
            "{http}/api/v1/incidents/{}/ack",
            i102["id"].as_str().unwrap()
        ),
        json!({"operator": "li"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200);
    let i101 = sys
        .wait_incident("CH4-101 raised", |i| i["point"] == "CH4-101")
        .await;
    let i103 = sys
        .wait_incident("CH4-103 raised", |i| i["point"] == "CH4-103")
        .await;
    let (id101, id102, id103) = (
        i101["id"].as_str().unwrap(),
        i102["id"].as_str().unwrap(),
        i103["id"].as_str().unwrap(),
    );

    // DingTalk: a signed markdown message per alarm.
    let dings = sys
        .wait("three DingTalk messages", Duration::from_secs(20), || {
            let d: Vec<Req> = receiver
                .requests()
                .into_iter()
                .filter(|r| r.path == "/ding/duty")
                .collect();
            (d.len() >= 3).then_some(d)
        })
        .await;
    for d in &dings {
        assert_eq!(
            d.status, 200,
            "the robot's signature check passed: {}",
            d.query
        );
        assert!(
            d.query.starts_with("access_token=tok&timestamp="),
            "{}",
            d.query
        );
        assert_eq!(d.json["msgtype"], "markdown");
        assert!(
            d.json["markdown"]["text"]
                .as_str()
                .unwrap()
                .contains("coal.ch4"),
            "{}",
            d.json
        );
    }

    // The first tier: CH4-101 and CH4-103 (not CH4-102, acknowledged).
    let leader = sys
        .wait(
            "shift-leader notified twice",
            Duration::from_secs(20),
            || {
                let l: Vec<Req> = receiver
                    .requests()
                    .into_iter()
                    .filter(|r| r.path == "/hook/leader")
                    .collect();
                (l.len() >= 2).then_some(l)
            },
        )
        .await;
    for l in &leader {
        assert_eq!(l.json["event"], "notified");
        assert_eq!(l.json["tier"], "shift-leader");
        assert_ne!(l.json["id"], id102);
    }
    // CH4-101 is acknowledged after its first tier: its second tier never comes.
    let (st, _) = post_json(
        &format!("{http}/api/v1/incidents/{id101}/ack"),
        json!({"operator": "zhang"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200);
    // CH4-103 stays unacknowledged: the director is notified (WeCom markdown).
    let director = sys
        .wait("mine-director notified", Duration::from_secs(20), || {
            receiver
                .requests()
                .into_iter()
                .find(|r| r.path == "/wecom/director")
        })
        .await;
    assert_eq!(director.json["msgtype"], "markdown");
    assert!(
        director.json["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("mine-director"),
        "{}",
        director.json
    );
    // By now (6 s after the raise, plus checks) the others would have had their tiers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tiers = |h: &[Value]| {
        h.iter()
            .filter(|e| e["event"] == "notified")
            .map(|e| e["tier"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tiers(&sys.history(id103).await),
        ["shift-leader", "mine-director"]
    );
    assert_eq!(
        tiers(&sys.history(id101).await),
        ["shift-leader"],
        "acknowledgement stopped the escalation"
    );
    assert!(
        tiers(&sys.history(id102).await).is_empty(),
        "acknowledged before its first tier"
    );
    assert_eq!(
        receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/wecom/director")
            .count(),
        1
    );

    // A flood at mine-02: seven raises in one batch (one critical). The first three go out
    // one by one, the critical one too, the other three become one summary.
    sys.batch(
        "mine-02",
        1,
        json!([
            ch4("P1", 1.1),
            ch4("P2", 1.1),
            ch4("P3", 1.1),
            ch4("P4", 1.1),
            ch4("P5", 1.1),
            ch4("P6", 1.6),
            ch4("P7", 1.1)
        ]),
    )
    .await;
    let summary = sys
        .wait("a flood summary", Duration::from_secs(20), || {
            receiver
                .requests()
                .into_iter()
                .find(|r| r.path == "/hook/flood" && r.json["event"] == "flood_summary")
        })
        .await;
    let hooks: Vec<Req> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.path == "/hook/flood")
        .collect();
    let singles: Vec<&Req> = hooks
        .iter()
        .filter(|r| r.json["event"] == "raised")
        .collect();
    assert_eq!(
        singles.len(),
        4,
        "three raises and the critical one: {:?}",
        hooks.iter().map(|r| r.json.clone()).collect::<Vec<_>>()
    );
    assert!(
        singles
            .iter()
            .any(|r| r.json["point"] == "P6" && r.json["severity"] == "critical"),
        "critical is never held"
    );
    assert_eq!(summary.json["site"], "mine-02");
    assert_eq!(summary.json["raised"], 3, "{}", summary.json);
    let held: HashSet<&str> = summary.json["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["point"].as_str().unwrap())
        .collect();
    let sent: HashSet<&str> = singles
        .iter()
        .map(|r| r.json["point"].as_str().unwrap())
        .collect();
    assert!(held.is_disjoint(&sent), "held {held:?} sent {sent:?}");
    assert_eq!(held.len() + sent.len(), 7);
    assert_eq!(summary.key.as_deref(), summary.json["summary_id"].as_str());
    assert_eq!(
        hooks
            .iter()
            .filter(|r| r.json["event"] == "flood_summary")
            .count(),
        1,
        "one summary"
    );
    let m = sys.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hrs_deliveries_total{endpoint_kind=\"webhook\",outcome=\"held\",target=\"subscribers\"}"
        ),
        3.0,
        "{m}"
    );

    // The SSE subscriber (site mine-01) saw mine-01's events, not mine-02's.
    let text = sse_task.await.unwrap();
    assert!(text.matches("event: incident").count() >= 3, "{text}");
    assert!(
        text.contains(id101) && !text.contains("\"site\":\"mine-02\""),
        "{text}"
    );
    server.stop().await;
}

/// The MQTT endpoint (a provincial broker over TLS with a password, its CA from the test PKI)
/// and an MQTT subscriber channel (plain MQTT on the same broker), both behind links that are
/// cut for a while; and the heartbeat, signed. Every event reaches both topics once the links
/// are back, in order; heartbeats follow the event log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_upstream_subscriber_and_heartbeat_through_a_cut_link() {
    let receiver = Receiver::default();
    let rport = free_port();
    let _server = Server::start(&receiver, rport).await;
    let province_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(province_dir.path()).unwrap();
    let province = TlsMosquitto::start(province_dir.path(), &pki, "gateway-01", "pr0vince")
        .await
        .unwrap();
    let tls_link = CutProxy::start(province.tls_port).await.unwrap();
    let plain_link = CutProxy::start(province.port).await.unwrap();
    let mut watch = Watcher::start(province.port, "#").await.unwrap();
    let config = format!(
        r#"
[forwarding]
retry_initial_ms = 100

[forwarding.heartbeat]
url = "http://127.0.0.1:{rport}/heartbeat"
interval_ms = 200
secret = "{PLATFORM_SECRET}"

[[forwarding.endpoints]]
name = "province"
kind = "mqtt"
url = "mqtts://127.0.0.1:{tls_link}"
ca_file = "{ca}"
username = "gateway-01"
password = "pr0vince"
topic_prefix = "prov/v1"
timeout_ms = 1000
max_backoff_ms = 500

[[forwarding.subscribers]]
id = "duty-mqtt"
filter = {{ site = "mine-01", events = ["raised", "escalated", "cleared"] }}
channel = {{ kind = "mqtt", url = "mqtt://127.0.0.1:{plain_link}", topic = "duty/{{subscriber}}/{{site}}" }}
"#,
        tls_link = tls_link.port,
        plain_link = plain_link.port,
        ca = pki.ca.display(),
    );
    let sys = System::start(&config, vec![]).await;
    let upstream = "prov/v1/incidents/mine-01";
    let duty = "duty/duty-mqtt/mine-01";
    let mut got: HashMap<String, Vec<Value>> = HashMap::new();
    // Take what arrived into `got` (first occurrence of each event id per topic).
    let take = |watch: &mut Watcher, got: &mut HashMap<String, Vec<Value>>| {
        while let Ok((topic, payload)) = watch.rx.try_recv() {
            let v: Value = serde_json::from_slice(&payload).unwrap();
            let list = got.entry(topic).or_default();
            if !list.iter().any(|e| e["event_id"] == v["event_id"]) {
                list.push(v);
            }
        }
    };

    // Link up: the raise reaches both (in whichever order the two connections deliver).
    sys.birth("mine-01", "410522", &["CH4-101"]).await;
    sys.batch("mine-01", 1, json!([ch4("CH4-101", 1.2)])).await;
    eventually(Duration::from_secs(20), "raised on both topics", || {
        take(&mut watch, &mut got);
        let done = [upstream, duty].iter().all(|t| {
            got.get(*t)
                .is_some_and(|l| l.iter().any(|e| e["event"] == "raised"))
        });
        async move { done.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{got:?}\n{}", sys.gateway.log_text()));
    got.clear();

    // Links cut: escalated and cleared wait, and the attempts are counted as retried.
    tls_link.down();
    plain_link.down();
    sys.batch("mine-01", 2, json!([ch4("CH4-101", 1.7)])).await;
    sys.batch("mine-01", 3, json!([ch4("CH4-101", 0.3)])).await;
    sys.wait_incident("cleared", |i| i["state"] == "cleared")
        .await;
    let retried =
        "hrs_deliveries_total{endpoint_kind=\"mqtt\",outcome=\"retried\",target=\"province\"}";
    eventually(Duration::from_secs(20), "retried deliveries", || async {
        (metric(&sys.metrics().await, retried) >= 2.0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", sys.gateway.log_text()));
    take(&mut watch, &mut got);
    assert!(
        got.values().flatten().all(|e| e["event"] == "raised"),
        "nothing new crosses a cut link: {got:?}"
    );

    // Links back: both topics get the rest, in order, each event once.
    tls_link.up();
    plain_link.up();
    eventually(
        Duration::from_secs(30),
        "escalated and cleared on both topics",
        || {
            take(&mut watch, &mut got);
            let done = [upstream, duty].iter().all(|t| {
                got.get(*t)
                    .is_some_and(|l| l.iter().any(|e| e["event"] == "cleared"))
            });
            async move { done.then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{got:?}\n{}", sys.gateway.log_text()));
    for topic in [upstream, duty] {
        let events: Vec<&str> = got[topic]
            .iter()
            .filter(|e| e["event"] != "raised")
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["escalated", "cleared"], "{topic}");
        let seqs: Vec<u64> = got[topic]
            .iter()
            .filter(|e| e["event"] != "raised")
            .map(|e| e["event_seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{topic}: {seqs:?}");
    }

    // Heartbeats: signed, naming the gateway, following the event log.
    let beats: Vec<Req> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.path == "/heartbeat")
        .collect();
    assert!(beats.len() >= 2, "{beats:?}");
    for b in &beats {
        assert_eq!(b.json["kind"], "heartbeat");
        assert_eq!(b.json["gateway"], format!("gw-{}", sys.http_port));
        let ts = b.ts.as_deref().expect("signed: timestamp");
        let mut text = ts.as_bytes().to_vec();
        text.push(b'.');
        text.extend_from_slice(&b.body);
        assert_eq!(
            b.sig.as_deref(),
            Some(format!("sha256={}", hmac_hex(PLATFORM_SECRET, &text)).as_str())
        );
    }
    let positions: Vec<u64> = beats
        .iter()
        // null before the first event
        .map(|b| b.json["last_event_pos"].as_u64().unwrap_or(0))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    assert!(*positions.last().unwrap() >= 3, "{positions:?}");
}
