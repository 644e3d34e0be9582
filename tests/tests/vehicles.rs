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
    _gateway: Proc,
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
            _broker: broker,
            _gateway: gateway,
            agent,
            http,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            jt808: format!("127.0.0.1:{jt_port}"),
            prefix,
            conf,
        }
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
