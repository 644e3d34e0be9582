//! What people read, and incidents that sit too long (issues 23 and 18, item 8). A real
//! gateway with the default `[presentation]` (zh-CN, Beijing time) over a real Mosquitto raises
//! a critical methane incident: its message is Chinese; the DingTalk robot (a real HTTP
//! receiver) gets it in Chinese with Beijing time and `@`s the duty mobile; the CSV export
//! starts with the byte-order mark. Not acknowledged within its time, the incident becomes
//! overdue (督办): an `overdue` event, a mark on the incident, the overdue list by region; and
//! although then acknowledged, it goes on through the escalation tiers until it is closed.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use system_tests::*;

type Posts = Arc<Mutex<Vec<Value>>>;

async fn receive(State(posts): State<Posts>, body: Bytes) -> axum::Json<Value> {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    posts.lock().unwrap().push(v);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

fn now_minus(s: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(s))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_beijing_time_robots_and_overdue_supervision() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    // The robot: a real HTTP server that answers as DingTalk does.
    let posts: Posts = Default::default();
    let robot_port = free_port();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", robot_port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[supervision]
check_ms = 200
[supervision.times.critical]
ack_within_ms = 1500
close_within_ms = 3600000

[forwarding]
escalation_check_ms = 200

[[forwarding.subscribers]]
id = "duty"
filter = {{ min_severity = "alarm", events = ["raised", "overdue"] }}
channel = {{ kind = "dingtalk", url = "http://127.0.0.1:{robot_port}/robot/send?access_token=t", at_mobiles = ["13800000001"], keyword = "告警" }}

[[forwarding.subscribers]]
id = "director"
filter = {{ site = "nowhere" }}
channel = {{ kind = "webhook", url = "http://127.0.0.1:{robot_port}/director" }}

[[forwarding.escalation]]
name = "methane"
filter = {{ rule = "coal.ch4", min_severity = "alarm" }}
tiers = [{{ name = "mine-director", after_ms = 6000, subscribers = ["director"] }}]
"#
        ),
    )
    .unwrap();
    let http_port = free_port();
    let prefix = format!("p{}/v1", free_port());
    let mut cmd = gateway_command(&broker.url(), &prefix, http_port, dir);
    cmd.arg("--config").arg(&config);
    let gw = Proc::spawn("gateway", &mut cmd, dir).unwrap();
    let http = format!("http://127.0.0.1:{http_port}");
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));

    let base = format!("{prefix}/sites/mine-01/edge");
    let birth = json!({"agent": "edge", "epoch": "e1",
        "site": {"name": "赵固一矿", "category": "coal_mine", "region": "410522"},
        "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face"}]});
    publish(
        broker.port,
        &format!("{base}/birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
    let batch = json!({"agent": "edge", "epoch": "e1", "seq": 1,
        "readings": [{"point": "CH4-101", "ts": now_minus(1), "value": 1.8}]});
    publish(
        broker.port,
        &format!("{base}/readings"),
        batch.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();

    // The incident's message in Chinese.
    let incident = eventually(Duration::from_secs(20), "the critical incident", || async {
        let (_, v) = get_json(&format!("{http}/api/v1/incidents?state=open"))
            .await
            .ok()?;
        v.as_array()?
            .iter()
            .find(|i| i["severity"] == "critical")
            .cloned()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    let id = incident["id"].as_str().unwrap().to_string();
    let message = incident["message"].as_str().unwrap();
    assert!(
        message.starts_with("工作面甲烷 1.8 %，达到") && message.contains("浓度"),
        "{message}"
    );
    assert!(
        incident["raised_at"].as_str().unwrap().ends_with('Z'),
        "API JSON times stay UTC"
    );

    // The robot: Chinese, Beijing time, the keyword, and the duty mobile called out.
    let raised = eventually(Duration::from_secs(20), "the robot's message", || async {
        posts
            .lock()
            .unwrap()
            .iter()
            .find(|p| {
                p["markdown"]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("发生告警"))
            })
            .cloned()
    })
    .await
    .unwrap();
    let text = raised["markdown"]["text"].as_str().unwrap();
    assert!(
        raised["markdown"]["title"]
            .as_str()
            .unwrap()
            .starts_with("【告警】[紧急] 赵固一矿 (mine-01)，河南省安阳市安阳县"),
        "{raised}"
    );
    assert!(
        text.contains("- 状态: 未确认") && text.contains("+08:00"),
        "{text}"
    );
    assert!(text.contains(message), "the incident's message: {text}");
    assert_eq!(raised["at"]["atMobiles"], json!(["13800000001"]));
    assert!(text.ends_with("@13800000001"), "{text}");

    // The CSV export opens in Excel: a byte-order mark, Chinese headers, Beijing time.
    let csv = reqwest::get(format!("{http}/api/v1/incidents.csv"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert!(
        csv.contains("报警时间") && csv.contains(",紧急,未确认,") && csv.contains("+08:00"),
        "{csv}"
    );

    // Overdue (督办): not acknowledged within 1.5 s.
    let overdue = eventually(Duration::from_secs(20), "the incident overdue", || async {
        let (_, v) = get_json(&format!("{http}/api/v1/incidents/{id}"))
            .await
            .ok()?;
        (v["overdue"] == true).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(overdue["overdue_for"], "acknowledge");
    let history = overdue["history"].as_array().unwrap();
    let ev = history
        .iter()
        .find(|e| e["event"] == "overdue")
        .expect("an overdue event");
    assert_eq!(ev["note"], "督办：超时未确认");
    let (_, list) = get_json(&format!("{http}/api/v1/overdue?region=4105"))
        .await
        .unwrap();
    assert_eq!(list["regions"][0]["region"], "410522", "{list}");
    assert_eq!(list["regions"][0]["incidents"][0]["id"], id.as_str());
    let (_, none) = get_json(&format!("{http}/api/v1/overdue?region=32"))
        .await
        .unwrap();
    assert_eq!(none["regions"], json!([]));
    // The robot is told, with the duty mobile called out again.
    eventually(Duration::from_secs(20), "the overdue message", || async {
        posts
            .lock()
            .unwrap()
            .iter()
            .any(|p| {
                p["markdown"]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("超时未处置") || t.contains("督办"))
            })
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", posts.lock().unwrap()));

    // Acknowledged now, but overdue: the escalation tier still falls due (after 6 s) and its
    // member is notified; closing would stop it.
    let (st, acked) = post_json(
        &format!("{http}/api/v1/incidents/{id}/ack"),
        json!({"note": "赶往现场"}),
    )
    .await
    .unwrap();
    assert_eq!(st, 200, "{acked}");
    let notified = eventually(Duration::from_secs(20), "the escalation", || async {
        let (_, v) = get_json(&format!("{http}/api/v1/incidents/{id}"))
            .await
            .ok()?;
        v["history"]
            .as_array()?
            .iter()
            .find(|e| e["event"] == "notified")
            .cloned()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    assert_eq!(notified["tier"], "mine-director");
    let (_, full) = get_json(&format!("{http}/api/v1/incidents/{id}"))
        .await
        .unwrap();
    let kinds: Vec<&str> = full["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let at = |k: &str| kinds.iter().position(|e| *e == k).unwrap();
    assert!(
        at("overdue") < at("acknowledged") && at("acknowledged") < at("notified"),
        "notified after the acknowledgement: {kinds:?}"
    );
    eventually(
        Duration::from_secs(20),
        "the director's webhook",
        || async {
            posts
                .lock()
                .unwrap()
                .iter()
                .any(|p| p["event"] == "notified" && p["tier"] == "mine-director")
                .then_some(())
        },
    )
    .await
    .unwrap();
}
