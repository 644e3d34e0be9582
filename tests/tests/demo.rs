//! `gateway demo` with nothing else: incidents within a minute, made by readings that crossed
//! the embedded broker; among them the overspeed of the fleet's dangerous-goods truck, whose
//! simulated JT/T 808 terminal reports over TCP to the fleet's agent.

use std::process::Command;
use std::time::Duration;
use system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_incidents_within_a_minute() {
    let tmp = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let demo = Proc::spawn(
        "demo",
        Command::new(bin_path("gateway"))
            .arg("demo")
            .arg("--mqtt-port")
            .arg(free_port().to_string())
            .env("HRS_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("HRS_DATA_DIR", tmp.path().join("data")),
        tmp.path(),
    )
    .unwrap();
    let incidents = eventually(Duration::from_secs(60), "an incident from the demo", || {
        let http = http.clone();
        async move {
            let (_, v) = get_json(&format!("{http}/api/v1/incidents")).await.ok()?;
            let list = v.as_array()?.clone();
            (!list.is_empty()).then_some(list)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", demo.log_text()));
    assert!(incidents
        .iter()
        .all(|i| i["site"] == "mine-01" || i["site"] == "chem-01" || i["site"] == "trans-01"));
    let overspeed = eventually(
        Duration::from_secs(60),
        "the truck's overspeed from its JT/T 808 terminal",
        || {
            let http = http.clone();
            async move {
                let (_, v) = get_json(&format!("{http}/api/v1/incidents?site=trans-01"))
                    .await
                    .ok()?;
                v.as_array()?
                    .iter()
                    .find(|i| i["rule"] == "vehicle.overspeed.dangerous_goods")
                    .cloned()
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", demo.log_text()));
    assert_eq!(overspeed["point"], "V13800000001", "{overspeed}");
    let metrics = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let batches: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hrs_messages_received_total{kind=\"readings\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        batches > 0.0,
        "reading batches crossed the broker:\n{metrics}"
    );
    assert!(
        demo.log_text().contains("HRS demo is running"),
        "it prints where to look"
    );
    let (_, sites) = get_json(&format!("{http}/api/v1/sites")).await.unwrap();
    let ids: Vec<&str> = sites
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for site in ["mine-01", "chem-01", "trans-01"] {
        assert!(ids.contains(&site), "{sites}");
    }
}
