//! A load simulator of JT/T 808 terminals: N terminals that register, authenticate and report
//! every R ms with moving positions, scripted overspeeds and driving/rest cycles. Prints a JSON
//! line of counters every `--stats-s` seconds and at the end.
//!
//! `jt808-sim --addr 127.0.0.1:7611 --terminals 10000 --interval-ms 10000 --duration-s 120`
//! `  [--first 13800000001] [--edition 2013|2019|mixed] [--ramp-us 500]`
//! `  [--overspeed TERMINAL:KMH:FROM_S:FOR_S]... [--drive-rest DRIVE_S:REST_S] [--stats-s 10]`
//! `  [--keep-code]` (after a refused authentication, retry with the same code instead of registering again)
//!
//! Each terminal is one TCP connection (one file descriptor): the process's open-file limit
//! bounds N (20,000 on the benchmark machine).

use anyhow::{bail, Context, Result};
use jt808::Layout;
use std::sync::atomic::Ordering;
use std::time::Duration;
use system_tests::jt808_sim::{run_fleet, FleetConfig, SpeedScript};

fn parse() -> Result<(FleetConfig, Duration)> {
    let mut c = FleetConfig {
        addr: "127.0.0.1:7611".into(),
        terminals: 10,
        first: 13_800_000_001,
        interval: Duration::from_secs(10),
        layout: None,
        ramp: Duration::from_micros(500),
        speeds: Vec::new(),
        drive_rest: None,
        reregister: true,
        stop_after: Some(Duration::from_secs(60)),
    };
    let mut stats_every = Duration::from_secs(10);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--keep-code" {
            c.reregister = false;
            continue;
        }
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--addr" => c.addr = v,
            "--terminals" => c.terminals = v.parse()?,
            "--first" => c.first = v.parse()?,
            "--interval-ms" => c.interval = Duration::from_millis(v.parse()?),
            "--duration-s" => c.stop_after = Some(Duration::from_secs(v.parse()?)),
            "--ramp-us" => c.ramp = Duration::from_micros(v.parse()?),
            "--stats-s" => stats_every = Duration::from_secs(v.parse()?),
            "--edition" => {
                c.layout = match v.as_str() {
                    "2013" => Some(Layout::V2013),
                    "2019" => Some(Layout::V2019),
                    "mixed" => None,
                    _ => bail!("--edition is 2013, 2019 or mixed"),
                }
            }
            "--overspeed" => {
                let p: Vec<&str> = v.split(':').collect();
                if p.len() != 4 {
                    bail!("--overspeed TERMINAL:KMH:FROM_S:FOR_S");
                }
                c.speeds.push(SpeedScript {
                    terminal: p[0].into(),
                    speed_kmh: p[1].parse()?,
                    from: Duration::from_secs(p[2].parse()?),
                    for_: Duration::from_secs(p[3].parse()?),
                });
            }
            "--drive-rest" => {
                let (d, r) = v.split_once(':').context("--drive-rest DRIVE_S:REST_S")?;
                c.drive_rest = Some((
                    Duration::from_secs(d.parse()?),
                    Duration::from_secs(r.parse()?),
                ));
            }
            _ => bail!("unknown option {k}"),
        }
    }
    Ok((c, stats_every))
}

#[tokio::main]
async fn main() -> Result<()> {
    let (cfg, every) = parse()?;
    let (stats, tasks) = run_fleet(cfg);
    let printer = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let mut j = stats.json();
                j["elapsed_s"] = started.elapsed().as_secs().into();
                println!("{j}");
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    printer.abort();
    let mut j = stats.json();
    j["final"] = true.into();
    println!("{j}");
    if stats.reports_ok.load(Ordering::Relaxed) == 0 {
        bail!("no report was answered");
    }
    Ok(())
}
