//! The control-room console (issue 18) in a real headless Chromium, driven over WebDriver
//! (Debian's chromium and chromium-driver; raw WebDriver HTTP with reqwest). A gateway in
//! `tokens` mode over a real Mosquitto has a coal mine in county 410522 and a chemical plant
//! in another province (320506); the operator `wang`, scoped to the county, logs in on the
//! page and sees only the mine; a methane incident raised over MQTT appears on the open page
//! without a reload; acknowledging and closing it on the page changes it in the API under
//! wang's name. An admin makes a token on the admin page (shown once) and revokes it there.
//! The position plot shows the county's vehicle and not the other's. The mine's page shows
//! each point's alarm levels (the coal pack's, in Chinese); the trend
//! and the levels of a site out of wang's scope are 404. The run saves screenshots of
//! the overview, the mine's page and the incident in `HRS_SCREENSHOT_DIR` (default: under the test's
//! temporary directory, kept and printed). The page and its assets weigh under 300 KB.

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use system_tests::*;

/// How long the page may take to show what the test waits for.
const DEADLINE: Duration = Duration::from_secs(15);

/// A chromedriver of our own on a free port and one headless Chromium session in it; both
/// end when dropped (the session deleted, chromedriver killed).
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Proc,
}

/// The key WebDriver names a found element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(dir: &Path) -> Result<Browser> {
        let port = free_port();
        let driver = Proc::spawn(
            "chromedriver",
            Command::new("/usr/bin/chromedriver").arg(format!("--port={port}")),
            dir,
        )?;
        wait_port(port, Duration::from_secs(20)).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let profile = dir.join("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--window-size=1400,1000", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.display())],
            },
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let session = resp["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {resp}"))?
            .to_string();
        Ok(Browser {
            http,
            base,
            session,
            driver,
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req.send().await?.json().await?;
        if resp["value"].get("error").is_some() {
            bail!("WebDriver {path}: {}", resp["value"]);
        }
        Ok(resp["value"].clone())
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// A script's value in the page (`arguments` empty).
    async fn run(&self, script: &str) -> Result<Value> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Poll a script until it returns something other than null or false, within the deadline.
    async fn wait_for(&self, what: &str, script: &str) -> Result<Value> {
        let end = Instant::now() + DEADLINE;
        loop {
            let v = self.run(script).await?;
            if !v.is_null() && v != Value::Bool(false) {
                return Ok(v);
            }
            if Instant::now() > end {
                let page = self
                    .run("return document.body.innerText")
                    .await
                    .unwrap_or_default();
                bail!("the page did not show {what} within {DEADLINE:?}; it shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> Result<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v[ELEMENT]
            .as_str()
            .with_context(|| format!("no element {css}"))?
            .to_string())
    }

    async fn click(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(v.as_str().context("screenshot")?)?;
        std::fs::write(path, png)?;
        println!("screenshot: {}", path.display());
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (Chromium with it), then chromedriver itself.
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = delete_blocking(&url);
        self.driver.kill();
    }
}

/// `DELETE` without an async runtime (the drop of [`Browser`]): raw HTTP/1.1 over TCP.
fn delete_blocking(url: &str) -> std::io::Result<()> {
    use std::io::Read;
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(())
}

struct Gw {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    broker: Mosquitto,
    proc: Proc,
    http: String,
    prefix: String,
}

impl Gw {
    async fn start() -> Gw {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let broker = Mosquitto::start(&dir).await.unwrap();
        let http_port = free_port();
        let prefix = format!("h{}/v1", free_port());
        let mut cmd = gateway_command(&broker.url(), &prefix, http_port, &dir);
        cmd.env("HRS_AUTH_MODE", "tokens");
        // Methane incidents must be acknowledged within 2.5 s: the page shows them overdue.
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            "[supervision]\ncheck_ms = 200\n\
             [supervision.times.critical]\nack_within_ms = 2500\nclose_within_ms = 3600000\n\
             [supervision.times.alarm]\nack_within_ms = 2500\nclose_within_ms = 3600000\n",
        )
        .unwrap();
        cmd.arg("--config").arg(&config);
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
        }
    }

    /// `gateway ARGS` on the running gateway's store, `stdin` fed to it: its output.
    fn cli(&self, args: &[&str], stdin: &str) -> String {
        gateway_cli(&self.dir, None, args, stdin)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.http))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A site's birth (one methane point at a working face, and where the site is) and its
    /// agent online.
    async fn birth(&self, site: &str, name: &str, region: &str, lat: f64, lon: f64) {
        let birth = json!({"agent": "edge", "epoch": "e1",
            "site": {"name": name, "category": "coal_mine", "region": region, "lat": lat, "lon": lon},
            "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face"},
                       {"point": "TRK-1", "quantity": "position", "unit": "wgs84", "name": "豫G12345",
                        "tags": {"vehicle_class": "dangerous_goods"}}]});
        let topic = format!("{}/sites/{site}/edge/birth", self.prefix);
        publish(
            self.broker.port,
            &topic,
            birth.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let status = json!({"agent": "edge", "state": "online", "ts": ts});
        let topic = format!("{}/sites/{site}/edge/status", self.prefix);
        publish(
            self.broker.port,
            &topic,
            status.to_string().into_bytes(),
            true,
        )
        .await
        .unwrap();
    }

    async fn methane(&self, site: &str, seq: u64, percent: f64) {
        self.reading(site, seq, "CH4-101", json!(percent)).await;
    }

    /// The last position of the site's vehicle `TRK-1`.
    async fn vehicle_at(&self, site: &str, seq: u64, lat: f64, lon: f64) {
        self.reading(
            site,
            seq,
            "TRK-1",
            json!({"lat": lat, "lon": lon, "speed_kmh": 42.0}),
        )
        .await;
    }

    async fn reading(&self, site: &str, seq: u64, point: &str, value: Value) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let batch = json!({"agent": "edge", "epoch": "e1", "seq": seq,
            "readings": [{"point": point, "ts": ts, "value": value}]});
        let topic = format!("{}/sites/{site}/edge/readings", self.prefix);
        publish(
            self.broker.port,
            &topic,
            batch.to_string().into_bytes(),
            false,
        )
        .await
        .unwrap();
    }
}

/// Where the screenshots go: `HRS_SCREENSHOT_DIR`, else a directory kept under the system's
/// temporary directory.
fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("HRS_SCREENSHOT_DIR") {
        Some(d) => PathBuf::from(d),
        None => tempfile::Builder::new()
            .prefix("hrs-console-screenshots-")
            .tempdir()
            .unwrap()
            .keep(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    println!("screenshots in {}", dir.display());
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_operator_logs_in_sees_their_county_and_handles_a_live_incident() {
    let gw = Gw::start().await;
    let shots = screenshot_dir();
    let admin_out = gw.cli(
        &[
            "token", "create", "--name", "auditor", "--role", "admin", "--scope", "*",
        ],
        "",
    );
    let admin = admin_out.trim().to_string();
    let county = gw
        .cli(
            &[
                "token",
                "create",
                "--name",
                "county-api",
                "--role",
                "viewer",
                "--scope",
                "region:410522",
            ],
            "",
        )
        .trim()
        .to_string();
    gw.cli(
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
    gw.cli(
        &["user", "add", "chief", "--role", "admin", "--scope", "*"],
        "Monitoring-Centre-2026\n",
    );
    gw.birth("mine-01", "赵固一矿", "410522", 36.10, 114.30)
        .await;
    gw.birth("plant-02", "苏州化工园", "320506", 31.30, 120.60)
        .await;
    gw.methane("mine-01", 1, 0.3).await;
    gw.methane("plant-02", 1, 0.3).await;
    gw.vehicle_at("mine-01", 2, 36.12, 114.35).await;
    gw.vehicle_at("plant-02", 2, 31.32, 120.62).await;
    eventually(
        Duration::from_secs(20),
        "both sites with a reading",
        || async {
            let (_, v) = gw.get("/api/v1/sites", &admin).await;
            let n = v
                .as_array()?
                .iter()
                .filter(|s| s["last_seen"].is_string())
                .count();
            (n == 2).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));

    // The trend endpoint: the mine's point has its sample; the plant is out of scope, 404.
    let (st, trend) = gw
        .get("/api/v1/sites/mine-01/points/CH4-101/trend", &county)
        .await;
    assert_eq!(st, 200, "{trend}");
    assert_eq!(trend["samples"].as_array().unwrap().len(), 1, "{trend}");
    assert_eq!(trend["capacity"], 360);
    let (st, _) = gw
        .get("/api/v1/sites/plant-02/points/CH4-101/trend", &county)
        .await;
    assert_eq!(st, 404, "a point of a site out of scope is 404");
    // The vehicles' last positions: the county's one only.
    let positions = eventually(
        Duration::from_secs(20),
        "the vehicles' positions",
        || async {
            let (_, v) = gw.get("/api/v1/positions", &admin).await;
            (v["positions"].as_array()?.len() == 2).then_some(())
        },
    )
    .await;
    positions.unwrap_or_else(|e| panic!("{e}\n{}", gw.proc.log_text()));
    let (st, mine) = gw.get("/api/v1/positions", &county).await;
    assert_eq!(st, 200, "{mine}");
    assert_eq!(
        (
            mine["positions"].as_array().map(Vec::len),
            &mine["positions"][0]["site"],
            &mine["positions"][0]["name"],
            &mine["positions"][0]["lat"]
        ),
        (
            Some(1),
            &json!("mine-01"),
            &json!("豫G12345"),
            &json!(36.12)
        ),
        "{mine}"
    );
    // The levels endpoint answers the same way: the mine's, and 404 for the plant.
    let (st, levels) = gw.get("/api/v1/sites/mine-01/levels", &county).await;
    assert_eq!(st, 200, "{levels}");
    assert_eq!(levels[0]["point"], "CH4-101", "{levels}");
    assert_eq!(levels[0]["levels"][1]["raise"], 1.5, "{levels}");
    assert_eq!(levels[0]["levels"][1]["label_text"], "断电浓度", "{levels}");
    let (st, _) = gw.get("/api/v1/sites/plant-02/levels", &county).await;
    assert_eq!(st, 404, "the levels of a site out of scope are 404");

    let browser = Browser::start(&gw.dir).await.unwrap();
    let run = async {
        browser.goto(&format!("{}/", gw.http)).await?;
        browser
            .wait_for(
                "the login form",
                "return !document.getElementById('login').hidden",
            )
            .await?;
        browser.type_into("#login-user", "wang").await?;
        browser
            .type_into("#login-password", "Duty-Officer-2026")
            .await?;
        browser.click("#login-submit").await?;
        // Only the county's sites, in Chinese, in Beijing time.
        let seen = browser
            .wait_for(
                "the overview's sites",
                "const c = [...document.querySelectorAll('#site-cards .card')].map(e => e.dataset.site);
                 return c.length ? c : null",
            )
            .await?;
        assert_eq!(seen, json!(["mine-01"]), "wang sees only the county's mine");
        let text = browser.run("return document.body.innerText").await?;
        let text = text.as_str().unwrap_or_default();
        assert!(
            text.contains("赵固一矿") && !text.contains("苏州化工园"),
            "{text}"
        );
        assert!(text.contains("北京时间") && text.contains("在线"), "{text}");
        browser
            .wait_for(
                "the position plot",
                "return document.querySelector('svg.plot circle[data-site=\"mine-01\"]') !== null",
            )
            .await?;
        let vehicles = browser
            .wait_for(
                "the county's vehicle on the plot",
                "const v = [...document.querySelectorAll('svg.plot polygon[data-vehicle]')].map(e => e.dataset.site);
                 return v.length ? v : null",
            )
            .await?;
        assert_eq!(vehicles, json!(["mine-01"]), "only the county's vehicle");
        browser
            .wait_for(
                "the live stream",
                "return document.getElementById('stream').dataset.state === 'ok'",
            )
            .await?;
        browser.screenshot(&shots.join("overview.png")).await?;

        // The mine's page: each point with the levels the rules judge it against, in Chinese.
        browser
            .run("location.hash = '#/site/mine-01'; return true")
            .await?;
        let levels = browser
            .wait_for(
                "the methane point's alarm levels",
                "const l = [...document.querySelectorAll('tr[data-point=\"CH4-101\"] td.levels [data-level]')];
                 return l.length ? l.map(e => [e.dataset.level, e.dataset.raise, e.dataset.open, e.textContent]) : null",
            )
            .await?;
        assert_eq!(
            levels,
            json!([
                ["alarm level", "1", "false", "报警 报警浓度 ≥1 %"],
                ["power-off level", "1.5", "false", "紧急 断电浓度 ≥1.5 %"]
            ]),
            "the working face's levels of the coal pack"
        );
        browser.screenshot(&shots.join("site.png")).await?;

        // The incident list open; a mark on the window shows the page is never reloaded.
        browser
            .run("window.__notReloaded = true; location.hash = '#/incidents'; return true")
            .await?;
        browser
            .wait_for(
                "the incident list",
                "return document.getElementById('incident-list') !== null",
            )
            .await?;
        gw.methane("mine-01", 3, 1.8).await;
        let id = browser
            .wait_for(
                "the new incident, live",
                "const r = document.querySelector('#incident-list tr[data-incident]');
                 return r && window.__notReloaded === true ? r.dataset.incident : null",
            )
            .await?;
        let id = id.as_str().unwrap().to_string();
        let (_, inc) = gw.get(&format!("/api/v1/incidents/{id}"), &admin).await;
        assert_eq!(inc["site"], "mine-01", "{inc}");
        if inc["severity"] == "critical" {
            browser
                .wait_for(
                    "the cue of a new critical incident",
                    &format!("return !document.getElementById('alerts').hidden && document.querySelector('#alerts [data-incident=\"{id}\"]') !== null"),
                )
                .await?;
        }

        // Not acknowledged within its time: marked overdue (督办) on the open page, live.
        browser
            .wait_for(
                "the incident marked overdue",
                &format!("return document.querySelector('#incident-list tr[data-incident=\"{id}\"] [data-overdue=\"true\"]') !== null"),
            )
            .await?;
        let (_, inc) = gw.get(&format!("/api/v1/incidents/{id}"), &admin).await;
        assert_eq!(inc["overdue_for"], "acknowledge", "{inc}");
        // The gateway's severity word (one table with messages and exports).
        let word = browser
            .run(&format!("return document.querySelector('#incident-list tr[data-incident=\"{id}\"] [data-severity]').textContent"))
            .await?;
        assert_eq!(
            word,
            json!(if inc["severity"] == "critical" {
                "紧急"
            } else {
                "报警"
            })
        );

        // Acknowledge on the page.
        browser
            .click(&format!("#incident-list tr[data-incident=\"{id}\"]"))
            .await?;
        browser
            .wait_for(
                "the acknowledge button",
                "return document.getElementById('do-ack') !== null",
            )
            .await?;
        browser.type_into("#ack-note", "通风处理中").await?;
        browser.click("#do-ack").await?;
        browser
            .wait_for(
                "the incident acknowledged",
                "const t = document.getElementById('incident-title'); return t && t.dataset.state === 'acknowledged'",
            )
            .await?;
        let (_, inc) = gw.get(&format!("/api/v1/incidents/{id}"), &admin).await;
        assert_eq!(inc["state"], "acknowledged", "{inc}");
        assert_eq!(inc["acked_by"], "wang", "{inc}");
        browser
            .wait_for(
                "the cue gone once acknowledged",
                &format!(
                    "return document.querySelector('#alerts [data-incident=\"{id}\"]') === null"
                ),
            )
            .await?;

        // The methane falls back: the page shows the incident cleared, live; close it there.
        gw.methane("mine-01", 4, 0.2).await;
        browser
            .wait_for(
                "the close form of the cleared incident",
                "return document.getElementById('do-close') !== null",
            )
            .await?;
        browser
            .type_into("#close-note", "已加强通风，甲烷浓度恢复正常")
            .await?;
        browser.click("#do-close").await?;
        browser
            .wait_for(
                "the incident closed",
                "const t = document.getElementById('incident-title'); return t && t.dataset.state === 'closed'",
            )
            .await?;
        let (_, inc) = gw.get(&format!("/api/v1/incidents/{id}"), &admin).await;
        assert_eq!(inc["state"], "closed", "{inc}");
        assert_eq!(inc["closed_by"], "wang", "{inc}");
        assert_eq!(inc["note"], "已加强通风，甲烷浓度恢复正常", "{inc}");
        let history = browser
            .run("return [...document.querySelectorAll('#history tr[data-event]')].map(r => r.dataset.event)")
            .await?;
        for ev in ["raised", "acknowledged", "cleared", "closed"] {
            assert!(
                history.as_array().unwrap().contains(&json!(ev)),
                "{history}"
            );
        }
        assert_eq!(
            browser.run("return window.__notReloaded === true").await?,
            json!(true),
            "never reloaded"
        );
        browser.screenshot(&shots.join("incident.png")).await?;

        // An admin's page of its own: a token made there is shown once, then revoked there.
        browser.click("#logout").await?;
        browser
            .wait_for(
                "the login form again",
                "return !document.getElementById('login').hidden",
            )
            .await?;
        browser.type_into("#login-user", "chief").await?;
        browser
            .type_into("#login-password", "Monitoring-Centre-2026")
            .await?;
        browser.click("#login-submit").await?;
        browser
            .wait_for(
                "the admin's menu",
                "return !document.getElementById('nav-admin').hidden",
            )
            .await?;
        browser
            .run("location.hash = '#/admin'; return true")
            .await?;
        browser
            .wait_for(
                "the users of the admin page",
                "return document.querySelector('#users-table tr[data-name=\"wang\"]') !== null",
            )
            .await?;
        browser.type_into("#k-name", "county-screen").await?;
        browser.type_into("#k-scopes", "region:410522").await?;
        browser.click("#form-token button[type=submit]").await?;
        let shown = browser
            .wait_for(
                "the new token, once",
                "const t = document.getElementById('new-token'); return t && t.textContent",
            )
            .await?;
        let shown = shown.as_str().unwrap_or_default().to_string();
        assert!(shown.starts_with("hrs_"), "{shown}");
        let (st, me) = gw.get("/api/v1/me", &shown).await;
        assert_eq!((st, me["user"].clone()), (200, json!("county-screen")));
        browser
            .click("#tokens-table tr[data-name=\"county-screen\"] button")
            .await?;
        browser
            .wait_for(
                "the token revoked",
                "const r = document.querySelector('#tokens-table tr[data-name=\"county-screen\"]'); return r && !r.querySelector('button')",
            )
            .await?;
        let (st, _) = gw.get("/api/v1/me", &shown).await;
        assert_eq!(st, 401, "a token revoked on the page is refused");
        let page = browser.run("return document.body.innerText").await?;
        assert!(
            !page.as_str().unwrap_or_default().contains(&shown),
            "the token is shown only once"
        );
        anyhow::Ok(())
    };
    if let Err(e) = run.await {
        let _ = browser.screenshot(&shots.join("failure.png")).await;
        panic!("{e:#}\n{}", gw.proc.log_text());
    }
    drop(browser);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_weigh_under_300_kb() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(tmp.path()).await.unwrap();
    let port = free_port();
    let mut cmd = gateway_command(&broker.url(), "w/v1", port, tmp.path());
    let proc = Proc::spawn("gateway", &mut cmd, tmp.path()).unwrap();
    let http = format!("http://127.0.0.1:{port}");
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", proc.log_text()));
    let client = reqwest::Client::new();
    let page = client.get(format!("{http}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let page = page.text().await.unwrap();
    let mut total = page.len();
    // Every file the page names under /console/, as the browser loads them.
    let assets: Vec<&str> = page
        .split("\"/console/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for a in &assets {
        let r = client
            .get(format!("{http}/console/{a}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
        assert!(r.headers().contains_key("etag"), "{a}");
        total += r.bytes().await.unwrap().len();
    }
    println!(
        "the console weighs {total} bytes ({} files)",
        assets.len() + 1
    );
    assert!(total < 300_000, "the console weighs {total} bytes");
    let (st, _) = get_json(&format!("{http}/console/nothing.js"))
        .await
        .unwrap();
    assert_eq!(st, 404);
}
