//! Vehicles: JT/T 808 terminals (simulated over real TCP) -> the edge agent's JT/T 808
//! listener -> Mosquitto -> the gateway, all real processes.
//!
//! - registered and authenticated terminals' positions are at the gateway
//!   (`GET /api/v1/sites/{site}/points`), and their births name the plate and the class;
//! - a terminal that does not authenticate gets none of its reports to the gateway;
//! - a malformed frame is counted and the connection goes on working;
//! - a driver's IC card puts the driver into the birth;
//! - auth codes survive an agent SIGKILL and restart: the terminal authenticates again with the
//!   code it has, without registering;
//! - and a fleet of simulated terminals (`jt808-sim`, small size) all reach the gateway.

use jt808::{Layout, Message};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use system_tests::jt808_sim::{location, Terminal};
use system_tests::*;

struct Setup {
    _broker: Mosquitto,
    broker_url: String,
    gateway: Proc,
    http_port: u16,
    agent: Proc,
    http: String,
    metrics: String,
    jt808: String,
    prefix: String,
    broker_port: u16,
    conf: std::path::PathBuf,
}

impl Setup {
    async fn start(dir: &Path) -> Setup {
        let broker = Mosquitto::start(dir).await.unwrap();
        let prefix = format!("veh{}/v1", free_port());
        let (jt_port, metrics_port, http_port) = (free_port(), free_port(), free_port());
        let conf = dir.join("agent.toml");
        std::fs::write(
            &conf,
            format!(
                r#"
agent = "trans-01-edge"
site = "trans-01"
data_dir = "{data}"
publish_interval_ms = 200
metrics_addr = "127.0.0.1:{metrics_port}"
[mqtt]
url = "{url}"
topic_prefix = "{prefix}"
[[jt808]]
listen = "127.0.0.1:{jt_port}"
site = "trans-01"
default_class = "freight"
report_interval_ms = 10000
site_info = {{ name = "Anyang hazmat transport fleet", category = "transport", region = "410500" }}
  [[jt808.vehicles]]
  terminal = "13800000001"
  plate = "豫E12345"
  class = "hazmat"
  [[jt808.vehicles]]
  terminal = "13800000003"
  plate = "豫E00003"
  class = "passenger"
"#,
                data = dir.join("agent").display(),
                url = broker.url(),
            ),
        )
        .unwrap();
        let gateway = Proc::spawn(
            "gateway",
            &mut gateway_command(&broker.url(), &prefix, http_port, dir),
            dir,
        )
        .unwrap();
        let agent = Self::spawn_agent(&conf, dir);
        wait_port(jt_port, Duration::from_secs(30)).await.unwrap();
        let http = format!("http://127.0.0.1:{http_port}");
        wait_ready(&http).await.unwrap();
        Setup {
            broker_port: broker.port,
            broker_url: broker.url(),
            _broker: broker,
            gateway,
            http_port,
            agent,
            http,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            jt808: format!("127.0.0.1:{jt_port}"),
            prefix,
            conf,
        }
    }

    /// SIGKILL the gateway and start it again on the same store and ports.
    async fn restart_gateway(&mut self, dir: &Path) {
        self.gateway.kill();
        self.gateway = Proc::spawn(
            "gateway",
            &mut gateway_command(&self.broker_url, &self.prefix, self.http_port, dir),
            dir,
        )
        .unwrap();
        wait_ready(&self.http).await.unwrap();
    }

    /// The incident of `rule` about `point`, once it is raised.
    async fn incident(&self, rule: &str, point: &str) -> Value {
        let url = format!("{}/api/v1/incidents?site=trans-01", self.http);
        eventually(Duration::from_secs(30), rule, || {
            let url = url.clone();
            async move {
                let (_, v) = get_json(&url).await.ok()?;
                v.as_array()?
                    .iter()
                    .find(|i| i["rule"] == rule && i["point"] == point)
                    .cloned()
            }
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n--- gateway\n{}\n--- agent\n{}",
                self.gateway.log_text(),
                self.agent.log_text()
            )
        })
    }

    fn spawn_agent(conf: &Path, dir: &Path) -> Proc {
        Proc::spawn(
            "agent",
            Command::new(bin_path("edge-agent"))
                .arg("run")
                .arg("--config")
                .arg(conf),
            dir,
        )
        .unwrap()
    }

    /// The latest value of a point at the gateway, once `pred` holds for it.
    async fn point(&self, point: &str, pred: impl Fn(&Value) -> bool + Clone) -> Value {
        let url = format!("{}/api/v1/sites/trans-01/points", self.http);
        eventually(Duration::from_secs(30), point, || {
            let (url, pred) = (url.clone(), pred.clone());
            async move {
                let (_, pts) = get_json(&url).await.ok()?;
                pts.as_array()?
                    .iter()
                    .find(|p| p["point"] == point && pred(p))
                    .cloned()
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- agent\n{}", self.agent.log_text()))
    }

    async fn points(&self) -> Vec<Value> {
        let (_, pts) = get_json(&format!("{}/api/v1/sites/trans-01/points", self.http))
            .await
            .unwrap();
        pts.as_array().cloned().unwrap_or_default()
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_through_agent_and_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Setup::start(dir).await;
    let mut births = Watcher::start(
        s.broker_port,
        &format!("{}/sites/trans-01/+/birth", s.prefix),
    )
    .await
    .unwrap();

    // A listed terminal (2013 edition) and an unlisted one (2019 edition).
    let mut a = Terminal::connect(&s.jt808, "13800000001", Layout::V2013)
        .await
        .unwrap();
    let code_a = a.enrol("豫E12345").await.unwrap();
    let mut b = Terminal::connect(&s.jt808, "13800000002", Layout::V2019)
        .await
        .unwrap();
    b.enrol("豫E67890").await.unwrap();
    assert_eq!(
        a.report(&location(36.0975, 114.3928, 82.5, 90, now(), 0))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        b.report(&location(36.2, 114.5, 40.0, 180, now(), 0b10))
            .await
            .unwrap(),
        0
    );

    let pa = s
        .point("V13800000001", |p| p["value"]["lat"] == 36.0975)
        .await;
    assert_eq!(pa["value"]["lon"], 114.3928);
    assert_eq!(pa["value"]["speed_kmh"], 82.5);
    assert_eq!(pa["value"]["heading"], 90.0);
    assert_eq!(pa["value"]["alt_m"], 75.0);
    assert_eq!(pa["quantity"], "position");
    assert_eq!(pa["name"], "豫E12345");
    let pb = s.point("V13800000002", |p| p["value"]["lat"] == 36.2).await;
    assert_eq!(pb["name"], "豫E67890", "the plate of its registration");
    s.point("V13800000002.alarm", |p| p["value"] == 2.0).await;
    s.point("V13800000002.status", |p| p["value"] == 3.0).await;

    // The birth names plate and class (the listed one's `hazmat` is dangerous_goods).
    let birth = births
        .next_json(Duration::from_secs(20), |_, v| {
            v["points"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["point"] == "V13800000002"))
        })
        .await
        .unwrap();
    let spec = |id: &str| {
        birth["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["point"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(birth["agent"], "trans-01-edge-jt808");
    assert_eq!(birth["site"]["category"], "transport");
    assert_eq!(
        spec("V13800000001")["tags"]["vehicle_class"],
        "dangerous_goods"
    );
    assert_eq!(spec("V13800000001")["name"], "豫E12345");
    assert_eq!(spec("V13800000002")["tags"]["vehicle_class"], "freight");
    assert_eq!(spec("V13800000002.alarm")["quantity"], "vehicle_alarm");
    assert_eq!(spec("V13800000002.status")["unit"], "bits");

    // A terminal that registers but authenticates with a wrong code, and one that never
    // registers: their reports are refused and never reach the gateway.
    let mut c = Terminal::connect(&s.jt808, "13800000003", Layout::V2013)
        .await
        .unwrap();
    let (r, _code) = c.register("豫E00003").await.unwrap();
    assert_eq!(r, 0);
    assert_eq!(c.authenticate("not-the-code").await.unwrap(), 1);
    assert_eq!(
        c.report(&location(30.0, 110.0, 10.0, 0, now(), 0))
            .await
            .unwrap(),
        1
    );
    let mut d = Terminal::connect(&s.jt808, "13800000004", Layout::V2019)
        .await
        .unwrap();
    assert_eq!(
        d.report(&location(30.0, 110.0, 10.0, 0, now(), 0))
            .await
            .unwrap(),
        1
    );
    wait_metric(
        &s.metrics,
        "hrs_jt808_messages_refused_total",
        Duration::from_secs(10),
        |v| v >= 2.0,
    )
    .await
    .unwrap();

    // A malformed frame on a's connection: refused, counted, and the connection goes on.
    let mut bad = Message::Heartbeat
        .encode_frame(&jt808::Header::v2013(2, "13800000001", 999))
        .unwrap();
    let n = bad.len();
    bad[n - 2] ^= 0xFF;
    a.send_raw(b"\x00garbage").await.unwrap();
    a.send_raw(&bad).await.unwrap();
    assert_eq!(
        a.report(&location(36.1, 114.4, 60.0, 91, now(), 0))
            .await
            .unwrap(),
        0
    );
    s.point("V13800000001", |p| p["value"]["lat"] == 36.1).await;
    let page = reqwest::get(&s.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.lines()
            .any(|l| l.starts_with("hrs_jt808_frames_refused_total{reason=\"check_code\"} ")),
        "{page}"
    );
    // Every position at the gateway now is of a terminal that authenticated.
    for p in s.points().await {
        let id = p["point"].as_str().unwrap();
        if id.starts_with("V13800000003") || id.starts_with("V13800000004") {
            assert!(
                p["value"].is_null(),
                "a report of an unauthenticated terminal got in: {p}"
            );
        }
    }

    // The driver signs in: the birth names them.
    assert_eq!(a.driver("张三", "410500198001011234").await.unwrap(), 0);
    let birth = births
        .next_json(Duration::from_secs(20), |_, v| {
            v["points"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["point"] == "V13800000001" && p["tags"]["driver"] == "张三")
            })
        })
        .await
        .unwrap();
    let pos = birth["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == "V13800000001")
        .unwrap()
        .clone();
    assert_eq!(pos["tags"]["driver_license"], "410500198001011234");

    // SIGKILL and restart: the terminal authenticates with the code it kept.
    drop((a, b, c, d));
    s.agent.kill();
    s.agent = Setup::spawn_agent(&s.conf, dir);
    let mut a = eventually(Duration::from_secs(30), "agent listening again", || {
        let addr = s.jt808.clone();
        async move {
            Terminal::connect(&addr, "13800000001", Layout::V2013)
                .await
                .ok()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        a.authenticate(&code_a).await.unwrap(),
        0,
        "the code survived the SIGKILL"
    );
    assert_eq!(
        a.report(&location(36.3, 114.6, 30.0, 0, now(), 0))
            .await
            .unwrap(),
        0
    );
    s.point("V13800000001", |p| p["value"]["lat"] == 36.3).await;
    // The driver survived too.
    births
        .next_json(Duration::from_secs(20), |_, v| {
            v["points"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["point"] == "V13800000001" && p["tags"]["driver"] == "张三")
            })
        })
        .await
        .unwrap();
}

/// The load simulator at a small size: every terminal registers, authenticates and reports,
/// every report is answered, and every vehicle's position is at the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_simulated_terminals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Setup::start(dir).await;
    let n = 200;
    let out = tokio::process::Command::new(bin_path("jt808-sim"))
        .args([
            "--addr",
            &s.jt808,
            "--terminals",
            &n.to_string(),
            "--first",
            "13900000001",
        ])
        .args([
            "--interval-ms",
            "1000",
            "--duration-s",
            "8",
            "--stats-s",
            "60",
            "--ramp-us",
            "2000",
        ])
        .args(["--overspeed", "13900000007:110:0:60"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["registrations"], n);
    assert_eq!(last["auth_refused"], 0);
    assert_eq!(last["reports_refused"], 0);
    assert_eq!(last["reports_ok"], last["reports_sent"], "{last}");
    assert!(
        last["reports_ok"].as_u64().unwrap() >= 5 * n as u64,
        "{last}"
    );
    s.point("V13900000007", |p| p["value"]["speed_kmh"] == 110.0)
        .await;
    eventually(
        Duration::from_secs(30),
        "every vehicle at the gateway",
        || async {
            let with_position = s
                .points()
                .await
                .iter()
                .filter(|p| p["quantity"] == "position" && p["value"]["lat"].is_number())
                .count();
            (with_position == n).then_some(())
        },
    )
    .await
    .unwrap();
}

/// `hh:mm:ss` Beijing time of yesterday (so every time-of-day window can be reached, whatever
/// the hour the test runs), in UTC.
fn yesterday_bj(h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    let bj = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let day = (now().with_timezone(&bj) - chrono::Duration::days(1)).date_naive();
    day.and_hms_opt(h, m, s)
        .unwrap()
        .and_local_timezone(bj)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Report `reports` (time, speed) of one terminal in batches (0x0704), each answered.
async fn drive(t: &mut Terminal, reports: &[(chrono::DateTime<chrono::Utc>, f64)]) {
    for chunk in reports.chunks(10) {
        let items = chunk
            .iter()
            .map(|&(at, kmh)| location(36.1, 114.4, kmh, 90, at, 0))
            .collect();
        let r = t
            .request(&Message::LocationBatch(jt808::LocationBatch {
                kind: 1,
                items,
            }))
            .await
            .unwrap();
        assert_eq!(r, 0, "batch answered");
    }
}

/// Every `step_s` seconds from `from` up to `to` inclusive, at `kmh`.
fn every(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    step_s: i64,
    kmh: f64,
) -> Vec<(chrono::DateTime<chrono::Utc>, f64)> {
    let mut v = Vec::new();
    let mut at = from;
    while at <= to {
        v.push((at, kmh));
        at += chrono::Duration::seconds(step_s);
    }
    v
}

fn raised_at(i: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(i["raised_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Overspeed, fatigue and night driving raised as the vehicle pack says, in the terminals'
/// event time: yesterday's drives, uploaded as blind-area batches, take seconds. The gateway
/// is SIGKILLed two hours into the fatigue drive: the driving time it had accumulated comes
/// back from its store, so the 4-hour limit is still reached at 12:00, not 4 h after the
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overspeed_fatigue_and_night_driving_raise_incidents() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Setup::start(dir).await;

    // A dangerous-goods truck (listed as hazmat) at 85 km/h for a minute: past 60 and past
    // 80 km/h for more than 10 s.
    let mut truck = Terminal::connect(&s.jt808, "13800000001", Layout::V2013)
        .await
        .unwrap();
    truck.enrol("豫E12345").await.unwrap();
    drive(
        &mut truck,
        &every(yesterday_bj(9, 0, 0), yesterday_bj(9, 1, 0), 5, 85.0),
    )
    .await;
    let over = s
        .incident("vehicle.overspeed.dangerous_goods", "V13800000001")
        .await;
    assert_eq!(over["severity"], "alarm", "{over}");
    assert_eq!(over["threshold"], 80.0, "{over}");
    assert_eq!(raised_at(&over), yesterday_bj(9, 0, 10), "held 10 s");

    // A passenger bus driving from 02:00 to 02:03: night driving once held a minute.
    let mut bus = Terminal::connect(&s.jt808, "13800000003", Layout::V2019)
        .await
        .unwrap();
    bus.enrol("豫E00003").await.unwrap();
    drive(
        &mut bus,
        &every(yesterday_bj(2, 0, 0), yesterday_bj(2, 3, 0), 10, 40.0),
    )
    .await;
    let night = s.incident("vehicle.night_driving", "V13800000003").await;
    assert_eq!(night["severity"], "alarm", "{night}");
    assert_eq!(raised_at(&night), yesterday_bj(2, 1, 0));

    // A freight truck driving from 08:00 without a rest, reported every minute.
    let mut lorry = Terminal::connect(&s.jt808, "13800000002", Layout::V2019)
        .await
        .unwrap();
    lorry.enrol("豫E67890").await.unwrap();
    drive(
        &mut lorry,
        &every(yesterday_bj(8, 0, 0), yesterday_bj(10, 0, 0), 60, 60.0),
    )
    .await;
    let ten = yesterday_bj(10, 0, 0);
    s.point("V13800000002", |p| {
        p["ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            == Some(ten.into())
    })
    .await;
    // The gateway dies with two hours of driving accumulated, and comes back.
    s.restart_gateway(dir).await;
    drive(
        &mut lorry,
        &every(yesterday_bj(10, 1, 0), yesterday_bj(12, 5, 0), 60, 60.0),
    )
    .await;
    let tired = s.incident("vehicle.fatigue.day", "V13800000002").await;
    assert_eq!(tired["severity"], "alarm", "{tired}");
    assert_eq!(tired["threshold"], 14_400_000.0, "{tired}");
    assert_eq!(raised_at(&tired), yesterday_bj(12, 0, 0), "4 h from 08:00");
    // Nothing else about the truck that kept to its limits.
    let (_, all) = get_json(&format!("{}/api/v1/incidents?site=trans-01", s.http))
        .await
        .unwrap();
    let about_lorry: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["point"] == "V13800000002" && i["rule"] != "vehicle.silent")
        .map(|i| i["rule"].as_str().unwrap())
        .collect();
    assert_eq!(about_lorry, vec!["vehicle.fatigue.day"]);
}
