//! What the gateway promised it does not lose (issue 20): a reading is never acknowledged to
//! the broker past a failed time-series journal append, and one data directory is never shared
//! by two running gateways (the `user` and `token` commands still work beside one).

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use system_tests::*;

const SITE: &str = "mine-01";
const AGENT: &str = "mine-01-edge";

fn ts(sec: u32) -> String {
    let now = chrono::Utc::now() - chrono::Duration::seconds(120);
    (now + chrono::Duration::seconds(sec as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn birth(port: u16, prefix: &str) {
    let birth = json!({"agent": AGENT, "epoch": "e1",
    "site": {"name": "Zhaogu No.1 mine", "category": "coal_mine", "region": "410522"},
    "points": [
        {"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face", "range": [0, 4]}
    ]});
    publish(
        port,
        &format!("{prefix}/sites/{SITE}/{AGENT}/birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
}

async fn batch(port: u16, prefix: &str, seq: u64, sec: u32, value: f64) {
    let b = json!({"agent": AGENT, "epoch": "e1", "seq": seq,
        "readings": [{"point": "CH4-101", "ts": ts(sec), "value": value}]});
    publish(
        port,
        &format!("{prefix}/sites/{SITE}/{AGENT}/readings"),
        b.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();
}

/// The journal directory replaced by a file: no journal file can be opened (refused even to
/// root, unlike a read-only mode); `heal` puts it back.
fn break_journal(dir: &Path) {
    let journal = dir.join("gw/spool/timeseries-journal");
    std::fs::rename(&journal, dir.join("journal-aside")).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();
}

fn heal_journal(dir: &Path) {
    let journal = dir.join("gw/spool/timeseries-journal");
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(dir.join("journal-aside"), &journal).unwrap();
}

async fn incidents(http: &str) -> Vec<Value> {
    let (status, v) = get_json(&format!("{http}/api/v1/incidents?limit=50"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// A reading whose points cannot be journaled is neither judged nor acknowledged (counted in
/// `hrs_timeseries_journal_failures_total`): once the fault is gone it is judged and stored;
/// a gateway killed during the fault gets it again from the broker after its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledgement_past_a_failed_journal_append() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let vm = VictoriaMetrics::start(dir, &[]).await;
    let prefix = format!("jr{}/v1", free_port());
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    // One point a batch: every reading opens a journal file of its own.
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[timeseries]\nbatch_points = 1\nmemory_points = 100\nflush_interval_ms = 50\n",
    )
    .unwrap();
    let start = || {
        let mut cmd = gateway_command(&broker.url(), &prefix, http_port, dir);
        cmd.arg("--config")
            .arg(&config)
            .env("HRS_INFLUX_URL", vm.url());
        Proc::spawn("gateway", &mut cmd, dir).unwrap()
    };
    let mut gateway = start();
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    let metrics = format!("{http}/metrics");
    let stored = || async {
        vm.export(r#"reading_value{point="CH4-101"}"#)
            .await
            .into_iter()
            .map(|(_, _, v)| v)
            .collect::<Vec<f64>>()
    };
    birth(broker.port, &prefix).await;
    batch(broker.port, &prefix, 1, 0, 0.42).await;
    eventually(
        Duration::from_secs(30),
        "the first reading stored",
        || async { (stored().await.len() == 1).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));

    // The journal fails: an alarming reading waits, not judged and not acknowledged.
    break_journal(dir);
    batch(broker.port, &prefix, 2, 1, 1.1).await;
    wait_metric(
        &metrics,
        "hrs_timeseries_journal_failures_total",
        Duration::from_secs(30),
        |v| v >= 2.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    assert!(
        incidents(&http).await.is_empty(),
        "judged before its points were journaled"
    );
    // The fault is gone: judged (raised) and stored.
    heal_journal(dir);
    eventually(Duration::from_secs(30), "the incident raised", || async {
        incidents(&http)
            .await
            .into_iter()
            .find(|i| i["rule"] == "coal.ch4.working_face" && i["state"] == "active")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    eventually(
        Duration::from_secs(30),
        "the alarming reading stored",
        || async { stored().await.contains(&1.1).then_some(()) },
    )
    .await
    .unwrap();

    // Again, and the gateway is killed during the fault: the reading was never acknowledged,
    // so the broker gives it to the next run, which judges (clears) and stores it.
    let failures = metric(&metrics, "hrs_timeseries_journal_failures_total")
        .await
        .unwrap();
    break_journal(dir);
    batch(broker.port, &prefix, 3, 2, 0.3).await;
    wait_metric(
        &metrics,
        "hrs_timeseries_journal_failures_total",
        Duration::from_secs(30),
        |v| v > failures,
    )
    .await
    .unwrap();
    gateway.kill();
    heal_journal(dir);
    assert!(!stored().await.contains(&0.3), "stored before the restart");
    gateway = start();
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    eventually(Duration::from_secs(30), "the incident cleared", || async {
        incidents(&http)
            .await
            .into_iter()
            .find(|i| i["rule"] == "coal.ch4.working_face" && i["state"] == "cleared")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    eventually(
        Duration::from_secs(30),
        "the redelivered reading stored",
        || async { stored().await.contains(&0.3).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
}

/// A second gateway on a data directory in use refuses to start, in Chinese and English;
/// `gateway user ...` and `gateway token ...` work beside the running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_never_share_a_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("lk{}/v1", free_port());
    let http_port = free_port();
    let first = Proc::spawn(
        "gateway",
        &mut gateway_command(&broker.url(), &prefix, http_port, dir),
        dir,
    )
    .unwrap();
    wait_ready(&format!("http://127.0.0.1:{http_port}"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", first.log_text()));

    // Another gateway, its own port and client id, the same data_dir.
    let out = gateway_command(&broker.url(), &prefix, free_port(), dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the second gateway ran");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("数据目录") && err.contains("The data directory"),
        "{err}"
    );
    assert!(
        err.contains(&format!("process id {}", first.pid())),
        "{err}"
    );

    // The access commands beside the running gateway.
    gateway_cli(
        dir,
        None,
        &["user", "add", "zhang", "--role", "operator", "--scope", "*"],
        "a-long-enough-password-1\n",
    );
    assert!(gateway_cli(dir, None, &["user", "list"], "").contains("zhang"));
    let token = gateway_cli(
        dir,
        None,
        &[
            "token", "create", "--name", "dcs", "--role", "viewer", "--scope", "*",
        ],
        "",
    );
    assert!(!token.trim().is_empty());
    let http = format!("http://127.0.0.1:{http_port}");
    assert_eq!(get_json(&format!("{http}/readyz")).await.unwrap().0, 200);
}
