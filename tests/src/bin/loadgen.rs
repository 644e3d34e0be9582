//! End-to-end load harness: publishes reading batches through a real broker to a running
//! gateway as fast as the broker takes them (QoS 1), and measures how long the gateway takes
//! to have judged them all (from its own `hrs_readings_taken_total`).
//!
//! `loadgen --mqtt-port P --http http://127.0.0.1:8080 --prefix hrs/v1 --sites 100 --points 100 --batches 50`

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::time::{Duration, Instant};

struct Args {
    mqtt_port: u16,
    http: String,
    prefix: String,
    sites: usize,
    points: usize,
    batches: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        mqtt_port: 1883,
        http: "http://127.0.0.1:8080".into(),
        prefix: "hrs/v1".into(),
        sites: 50,
        points: 100,
        batches: 40,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--mqtt-port" => a.mqtt_port = v.parse()?,
            "--http" => a.http = v,
            "--prefix" => a.prefix = v,
            "--sites" => a.sites = v.parse()?,
            "--points" => a.points = v.parse()?,
            "--batches" => a.batches = v.parse()?,
            _ => bail!("unknown option {k}"),
        }
    }
    Ok(a)
}

async fn taken(http: &str) -> Result<u64> {
    let text = reqwest::Client::new()
        .get(format!("{http}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("hrs_readings_taken_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64)
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = parse_args()?;
    let mut opts = MqttOptions::new(
        format!("loadgen-{}", std::process::id()),
        "127.0.0.1",
        a.mqtt_port,
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(200)
        .set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut ev) = AsyncClient::new(opts, 1000);
    let total_msgs = a.sites * (a.batches + 1);
    let acks = tokio::spawn(async move {
        let mut n = 0usize;
        while n < total_msgs {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => n += 1,
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("mqtt: {e}")),
            }
        }
        // Keep the connection served until the end.
        loop {
            if ev.poll().await.is_err() {
                return Ok(());
            }
        }
    });
    let before = taken(&a.http).await?;
    let epoch = format!("load{}", std::process::id());
    let base = chrono::Utc::now() - chrono::Duration::seconds(a.batches as i64 + 5);
    for s in 0..a.sites {
        let site = format!("load-{s:04}");
        let points: Vec<_> = (0..a.points)
            .map(|p| json!({"point": format!("CH4-{p:04}"), "quantity": "ch4", "unit": "%", "location": "working_face", "interval_ms": 60000}))
            .collect();
        let birth = json!({"agent": "edge", "epoch": epoch, "site": {"category": "coal_mine", "region": "410522"}, "points": points});
        client
            .publish(
                format!("{}/sites/{site}/edge/birth", a.prefix),
                QoS::AtLeastOnce,
                true,
                birth.to_string(),
            )
            .await?;
    }
    let started = Instant::now();
    for b in 0..a.batches {
        let ts = (base + chrono::Duration::seconds(b as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for s in 0..a.sites {
            let readings: Vec<_> = (0..a.points)
                .map(|p| json!({"point": format!("CH4-{p:04}"), "ts": ts, "value": 0.3 + ((b * 7 + p + s) % 5) as f64 * 0.1}))
                .collect();
            let batch =
                json!({"agent": "edge", "epoch": epoch, "seq": b + 1, "readings": readings});
            client
                .publish(
                    format!("{}/sites/load-{s:04}/edge/readings", a.prefix),
                    QoS::AtLeastOnce,
                    false,
                    batch.to_string(),
                )
                .await?;
        }
    }
    let expected = (a.sites * a.points * a.batches) as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = taken(&a.http).await? - before;
        if n >= expected {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {expected} readings taken after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} sites x {} points x {} batches = {} readings in {:.2} s: {:.0} readings/s ({:.0} batches/s)",
        a.sites, a.points, a.batches, expected, secs, expected as f64 / secs, (a.sites * a.batches) as f64 / secs
    );
    acks.abort();
    Ok(())
}
