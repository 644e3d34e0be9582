//! Time series end to end: the gateway (a real process) takes reading batches over a real
//! Mosquitto and writes them to a real VictoriaMetrics through its InfluxDB v2 write API. The
//! database is stopped cleanly (SIGTERM) in the middle of the stream and started again later:
//! every reading lands exactly once, with the contract's tags and fields.

use serde_json::{json, Value};
use std::time::Duration;
use system_tests::*;

const SITE: &str = "mine-01";
const AGENT: &str = "mine-01-edge";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_lands_once_across_a_database_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let mut vm = VictoriaMetrics::start(dir, &[]).await;
    let prefix = format!("ts{}/v1", free_port());
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let gateway = Proc::spawn(
        "gateway",
        gateway_command(&broker.url(), &prefix, http_port, dir)
            .env("HRS_INFLUX_URL", vm.url())
            .env("HRS_INFLUX_ORG", "hrs")
            .env("HRS_INFLUX_BUCKET", "hrs")
            .env("HRS_INFLUX_TOKEN", "test-token"),
        dir,
    )
    .unwrap();
    let logs = |vm: &VictoriaMetrics| {
        format!(
            "--- gateway\n{}\n--- victoria-metrics\n{}",
            gateway.log_text(),
            vm.proc.log_text()
        )
    };
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm)));

    let topic = |kind: &str| format!("{prefix}/sites/{SITE}/{AGENT}/{kind}");
    let birth = json!({"agent": AGENT, "epoch": "e1",
    "site": {"name": "Zhaogu No.1 mine", "category": "coal_mine", "region": "410522"},
    "points": [
        {"point": "CH4-101", "quantity": "ch4", "unit": "%", "location": "working_face", "tags": {"zone": "1201"}},
        {"point": "FEED-1201", "quantity": "power_cut", "unit": "bool", "tags": {"zone": "1201"}},
        {"point": "TRK-YA12345", "quantity": "position", "unit": "wgs84"}
    ]});
    publish(
        broker.port,
        &topic("birth"),
        birth.to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();

    // Readings 10 ms apart, ten minutes ago onwards; methane stays below every level.
    let base =
        (chrono::Utc::now() - chrono::Duration::minutes(10)).timestamp_millis() / 1000 * 1000;
    let ts = |i: i64| {
        chrono::DateTime::from_timestamp_millis(base + i * 10)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let value = |i: i64| (i % 90) as f64 / 100.0;
    const PER_BATCH: i64 = 20;
    let send = |seq: u64| {
        let readings: Vec<Value> = (0..PER_BATCH)
            .map(|k| {
                let i = (seq as i64 - 1) * PER_BATCH + k;
                json!({"point": "CH4-101", "ts": ts(i), "value": value(i)})
            })
            .collect();
        let b = json!({"agent": AGENT, "epoch": "e1", "seq": seq, "readings": readings});
        let port = broker.port;
        let topic = topic("readings");
        async move {
            publish(port, &topic, b.to_string().into_bytes(), false)
                .await
                .unwrap()
        }
    };
    // A bool, a bad reading and a position, for the field names.
    let extra = json!({"agent": AGENT, "epoch": "extra", "seq": 1, "readings": [
        {"point": "FEED-1201", "ts": ts(0), "value": true},
        {"point": "CH4-101", "ts": ts(-1), "value": null, "quality": "bad", "reason": "modbus timeout"},
        {"point": "TRK-YA12345", "ts": ts(0), "value": {"lat": 36.0975, "lon": 114.3928, "speed_kmh": 82.5, "heading": 90}}]});

    // Phase 1: the database is up.
    for seq in 1..=10 {
        send(seq).await;
    }
    publish(
        broker.port,
        &topic("readings"),
        extra.to_string().into_bytes(),
        false,
    )
    .await
    .unwrap();
    let phase1 = 10 * PER_BATCH as usize;
    eventually(
        Duration::from_secs(30),
        "phase 1 in VictoriaMetrics",
        || async {
            (vm.export(r#"reading_value{point="CH4-101"}"#).await.len() >= phase1).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm)));

    // Phase 2: the database stops cleanly; the gateway keeps taking readings and spools them.
    vm.stop();
    for seq in 11..=40 {
        send(seq).await;
    }
    let m = eventually(
        Duration::from_secs(30),
        "points spooled while the database is down",
        || {
            let http = http.clone();
            async move {
                let text = reqwest::get(format!("{http}/metrics"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                let spooled = sample(&text, "hrs_timeseries_points_spooled_total")?;
                let taken = sample(&text, "hrs_readings_taken_total")?;
                (spooled > 0.0
                    && taken >= (40 * PER_BATCH + 3) as f64
                    && sample(&text, "hrs_timeseries_up") == Some(0.0))
                .then_some(text)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm)));
    assert!(
        sample(&m, "hrs_timeseries_spool_bytes").unwrap() > 0.0,
        "{m}"
    );
    assert!(
        std::fs::read_dir(dir.join("gw/spool/timeseries"))
            .unwrap()
            .count()
            > 0,
        "spool files on disk"
    );

    // Phase 3: the database is back: everything lands, exactly once.
    vm.restart().await;
    for seq in 41..=50 {
        send(seq).await;
    }
    let total = 50 * PER_BATCH as usize;
    let samples = eventually(
        Duration::from_secs(45),
        "every reading in VictoriaMetrics",
        || async {
            let s = vm.export(r#"reading_value{point="CH4-101"}"#).await;
            (s.len() >= total).then_some(s)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm)));
    let mut seen: Vec<(i64, f64)> = samples.iter().map(|(_, t, v)| (*t, *v)).collect();
    seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(seen.len(), total, "exactly once: no reading twice");
    for (i, (t, v)) in seen.iter().enumerate() {
        assert_eq!(
            (*t, *v),
            (base + i as i64 * 10, value(i as i64)),
            "reading {i}"
        );
    }
    let labels = &samples[0].0;
    assert_eq!(
        labels,
        &json!({"__name__": "reading_value", "agent": AGENT, "category": "coal_mine", "location": "working_face",
                "point": "CH4-101", "quantity": "ch4", "site": SITE}),
        "tags of the contract"
    );

    // The other fields: quality as an integer code, a bool as 1, a position's lat/lon/speed/heading.
    let quality = vm.export(r#"reading_quality{point="CH4-101"}"#).await;
    assert_eq!(
        quality.iter().filter(|(_, _, q)| *q == 2.0).count(),
        1,
        "one bad reading, quality 2"
    );
    assert_eq!(quality.iter().filter(|(_, _, q)| *q == 0.0).count(), total);
    let feed = vm.export(r#"reading_value{point="FEED-1201"}"#).await;
    assert_eq!(feed.iter().map(|s| s.2).collect::<Vec<_>>(), vec![1.0]);
    assert_eq!(feed[0].0["quantity"], "power_cut");
    for (field, want) in [
        ("lat", 36.0975),
        ("lon", 114.3928),
        ("speed_kmh", 82.5),
        ("heading", 90.0),
    ] {
        let s = vm
            .export(&format!(r#"reading_{field}{{point="TRK-YA12345"}}"#))
            .await;
        assert_eq!(
            s.iter().map(|s| s.2).collect::<Vec<_>>(),
            vec![want],
            "{field}"
        );
    }

    // The gateway's own account agrees: all written, nothing dropped, the spool empty.
    let text = eventually(Duration::from_secs(20), "spool drained", || {
        let http = http.clone();
        async move {
            let text = reqwest::get(format!("{http}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (sample(&text, "hrs_timeseries_spool_bytes") == Some(0.0)
                && sample(&text, "hrs_timeseries_up") == Some(1.0))
            .then_some(text)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&vm)));
    assert_eq!(
        sample(&text, "hrs_timeseries_points_written_total"),
        Some((total + 3) as f64),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("hrs_timeseries_points_dropped_total{") && !l.ends_with(" 0")),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("gw/spool/timeseries"))
            .unwrap()
            .count(),
        0
    );
}

/// The gateway is SIGKILLed while the points of acknowledged messages are still in memory (a
/// flush interval of ten minutes): the journal keeps them and the next run writes them, each
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_no_acknowledged_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = Mosquitto::start(dir).await.unwrap();
    let vm = VictoriaMetrics::start(dir, &[]).await;
    let prefix = format!("tsk{}/v1", free_port());
    let http_port = free_port();
    let http = format!("http://127.0.0.1:{http_port}");
    let slow = dir.join("slow.toml");
    std::fs::write(
        &slow,
        "[timeseries]\nflush_interval_ms = 600000\nbatch_points = 100000\nmemory_points = 200000\n",
    )
    .unwrap();
    let start = |config: Option<&std::path::Path>| {
        let mut cmd = gateway_command(&broker.url(), &prefix, http_port, dir);
        cmd.env("HRS_INFLUX_URL", vm.url());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        Proc::spawn("gateway", &mut cmd, dir).unwrap()
    };
    let mut gateway = start(Some(&slow));
    wait_ready(&http)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));

    let base =
        (chrono::Utc::now() - chrono::Duration::minutes(10)).timestamp_millis() / 1000 * 1000;
    const BATCHES: i64 = 10;
    const PER_BATCH: i64 = 30;
    let topic = format!("{prefix}/sites/{SITE}/{AGENT}/readings");
    for seq in 1..=BATCHES {
        let readings: Vec<Value> = (0..PER_BATCH)
            .map(|k| {
                let i = (seq - 1) * PER_BATCH + k;
                let ts = chrono::DateTime::from_timestamp_millis(base + i * 10)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                json!({"point": "CH4-101", "ts": ts, "value": i as f64 / 1000.0})
            })
            .collect();
        let b = json!({"agent": AGENT, "epoch": "k1", "seq": seq, "readings": readings});
        publish(broker.port, &topic, b.to_string().into_bytes(), false)
            .await
            .unwrap();
    }
    let total = (BATCHES * PER_BATCH) as usize;
    // Every message taken and journaled; nothing written yet (the batch is still filling).
    let journal = dir.join("gw/spool/timeseries-journal");
    let journaled_lines = || {
        std::fs::read_dir(&journal)
            .map(|d| {
                d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .map(|t| t.lines().count())
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    eventually(Duration::from_secs(30), "every point journaled", || async {
        (journaled_lines() == total).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    assert_eq!(
        metric(
            &format!("{http}/metrics"),
            "hrs_timeseries_points_written_total"
        )
        .await,
        Some(0.0)
    );
    gateway.kill();

    // The next run (normal settings) recovers the journal and writes every point once.
    let gateway = start(None);
    let samples = eventually(
        Duration::from_secs(45),
        "every point in VictoriaMetrics",
        || async {
            let s = vm.export(r#"reading_value{point="CH4-101"}"#).await;
            (s.len() >= total).then_some(s)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_text()));
    let mut seen: Vec<(i64, f64)> = samples.iter().map(|(_, t, v)| (*t, *v)).collect();
    seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(seen.len(), total, "exactly once");
    for (i, (t, v)) in seen.iter().enumerate() {
        assert_eq!(
            (*t, *v),
            (base + i as i64 * 10, i as f64 / 1000.0),
            "point {i}"
        );
    }
    assert!(
        gateway.log_text().contains("recovered into the spool"),
        "{}",
        gateway.log_text()
    );
}
