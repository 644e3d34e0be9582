//! The writer against a real VictoriaMetrics (Debian package `victoria-metrics`), on a port of
//! its own: batches, an outage with the spool, the drain after it, the memory and spool bounds.

use super::*;
use chrono::TimeZone;
use prometheus::Registry;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::{AgentId, Category, PointId, PointSpec, Quantity, Reading, SiteId, Unit, Value};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A VictoriaMetrics of our own; SIGKILLed when dropped.
struct Vm {
    port: u16,
    storage: PathBuf,
    child: Option<Child>,
}

impl Vm {
    async fn start(dir: &Path) -> Vm {
        let mut vm = Vm {
            port: free_port(),
            storage: dir.join("vm"),
            child: None,
        };
        vm.spawn().await;
        vm
    }
    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.storage.with_extension("log"))
            .unwrap();
        let child = Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.storage.display()))
            .arg("-dedup.minScrapeInterval=1ms")
            .arg("-search.latencyOffset=1s")
            .arg("-loggerLevel=ERROR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("victoria-metrics is not installed: apt-get install victoria-metrics");
        self.child = Some(child);
        let url = format!("{}/health", self.url());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// SIGTERM (a clean stop: it flushes its data) and wait for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
    /// Samples of `series` as (labels, timestamp ms, value), polled until `pred` holds (deadline 20 s).
    async fn export_until(
        &self,
        series: &str,
        pred: impl Fn(&[(serde_json::Value, i64, f64)]) -> bool,
    ) -> Vec<(serde_json::Value, i64, f64)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = Vec::new();
        while Instant::now() < deadline {
            let url = format!("{}/api/v1/export?match[]={series}", self.url());
            if let Ok(r) = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                let text = r.text().await.unwrap_or_default();
                last = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .flat_map(|v| {
                        let metric = v["metric"].clone();
                        let ts = numbers(&v, "timestamps", serde_json::Value::as_i64);
                        let vals = numbers(&v, "values", serde_json::Value::as_f64);
                        ts.into_iter()
                            .zip(vals)
                            .map(move |(t, x)| (metric.clone(), t, x))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if pred(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        last
    }
}

/// The numbers of the array `key` of an exported series, each read by `read`.
fn numbers<T>(
    v: &serde_json::Value,
    key: &str,
    read: impl Fn(&serde_json::Value) -> Option<T>,
) -> Vec<T> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| read(x).unwrap())
        .collect()
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config(url: String) -> TimeSeriesConfig {
    TimeSeriesConfig {
        url: Some(url),
        batch_points: 100,
        flush_interval_ms: 50,
        memory_points: 1_000,
        request_timeout_ms: 2_000,
        retry_max_ms: 300,
        ..Default::default()
    }
}

/// A writer's configuration whose database is not there (nothing listens on its port).
fn config_without_database() -> TimeSeriesConfig {
    config(format!("http://127.0.0.1:{}", free_port()))
}

fn base_ms() -> i64 {
    // A fixed, recent time: VictoriaMetrics keeps a month by default and refuses far-future samples.
    let day = 86_400_000;
    (chrono::Utc::now().timestamp_millis() / day - 1) * day
}

fn record_range(h: &TimeSeriesHandle, range: std::ops::Range<i64>) {
    let site = SiteId::new("mine-01").unwrap();
    let agent = AgentId::new("mine-01-edge").unwrap();
    let mut spec = PointSpec::new(
        PointId::new("CH4-101").unwrap(),
        Quantity::Ch4,
        Unit::PercentVol,
    );
    spec.location = Some("working_face".into());
    let base = base_ms();
    for i in range {
        let ts = chrono::Utc.timestamp_millis_opt(base + i * 10).unwrap();
        let r = Reading::good(spec.point.clone(), ts, Value::Number(i as f64 / 1000.0));
        h.record(&site, &agent, &r, Some(&spec), Some(&Category::CoalMine));
    }
}

/// A writer running on a task of its own.
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn spawn(w: TimeSeriesWriter) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(w.run(stop.clone()));
        Running { stop, task }
    }

    /// Stop the writer, drop its handle `h` and wait for the writer to end.
    async fn stop(self, h: TimeSeriesHandle) {
        self.stop.cancel();
        drop(h);
        self.task.await.unwrap();
    }
}

/// The writer of `config` over the data directory `data`, started: its handle and metrics.
fn start(
    config: &TimeSeriesConfig,
    data: &Path,
    registry: &Registry,
) -> (TimeSeriesHandle, TimeSeriesMetrics, Running) {
    let (h, w) = TimeSeriesWriter::from_config(config, data, registry)
        .unwrap()
        .unwrap();
    let m = w.metrics();
    (h, m, Running::spawn(w))
}

async fn wait_for(what: &str, within: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every reading exactly once, in value: n samples at n distinct timestamps, value i/1000 at base + 10 i.
fn assert_exactly_once(samples: &[(serde_json::Value, i64, f64)], n: i64) {
    let base = base_ms();
    let mut seen: Vec<(i64, f64)> = samples.iter().map(|(_, t, v)| (*t, *v)).collect();
    seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(seen.len() as i64, n, "samples: {} (want {n})", seen.len());
    for (i, (t, v)) in seen.iter().enumerate() {
        assert_eq!(*t, base + i as i64 * 10);
        assert_eq!(*v, i as f64 / 1000.0);
    }
}

/// Wait (15 s at most) until the writer has written `n` points; then the database holds every
/// reading exactly once.
async fn assert_all_written(vm: &Vm, m: &TimeSeriesMetrics, n: u64) {
    wait_for(&format!("all {n} written"), Duration::from_secs(15), || {
        m.points_written.get() == n
    })
    .await;
    let all = vm
        .export_until("reading_value", |s| s.len() as u64 >= n)
        .await;
    assert_exactly_once(&all, n as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_lands_once_across_a_database_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(dir.path()).await;
    let registry = Registry::new();
    let (h, m, run) = start(&config(vm.url()), &dir.path().join("gw"), &registry);

    // A lone point is written by time, without more traffic.
    record_range(&h, 0..1);
    wait_for("a lone point written", Duration::from_secs(10), || {
        m.points_written.get() == 1
    })
    .await;
    record_range(&h, 1..550);
    wait_for("550 points written", Duration::from_secs(15), || {
        m.points_written.get() == 550
    })
    .await;
    let first = vm.export_until("reading_value", |s| s.len() == 550).await;
    assert_exactly_once(&first, 550);
    let labels = &first[0].0;
    assert_eq!(labels["site"], "mine-01");
    assert_eq!(labels["agent"], "mine-01-edge");
    assert_eq!(labels["point"], "CH4-101");
    assert_eq!(labels["quantity"], "ch4");
    assert_eq!(labels["location"], "working_face");
    assert_eq!(labels["category"], "coal_mine");

    // The database stops cleanly; readings keep coming, more than memory holds.
    vm.stop();
    record_range(&h, 550..3_000);
    wait_for("the spool holding points", Duration::from_secs(15), || {
        m.points_spooled.get() > 0 && m.up.get() == 0
    })
    .await;
    assert!(
        m.memory_points.get() <= 1_000,
        "memory bound: {}",
        m.memory_points.get()
    );
    let spool_dir = dir.path().join("gw/spool/timeseries");
    assert!(std::fs::read_dir(&spool_dir).unwrap().count() > 0);
    assert!(m.spool_bytes.get() > 0);

    // Back: the spool drains in order, then memory; nothing twice, nothing lost.
    vm.spawn().await;
    h.flush();
    wait_for("every point written", Duration::from_secs(30), || {
        m.points_written.get() == 3_000 && h.backlog_points() == 0
    })
    .await;
    let all = vm.export_until("reading_value", |s| s.len() >= 3_000).await;
    assert_exactly_once(&all, 3_000);
    assert_eq!(m.points_dropped.with_label_values(&["spool_full"]).get(), 0);
    assert_eq!(m.spool_bytes.get(), 0);
    assert_eq!(
        std::fs::read_dir(&spool_dir).unwrap().count(),
        0,
        "drained files are removed"
    );
    assert!(m.write_failures.with_label_values(&["unreachable"]).get() > 0);
    run.stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_left_at_shutdown_is_spooled_and_written_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    // First run: the database is not there at all.
    let (h, m, run) = start(&config_without_database(), &data, &Registry::new());
    record_range(&h, 0..250); // two full batches and a partial one
    wait_for("a failed attempt", Duration::from_secs(15), || {
        m.write_failures.with_label_values(&["unreachable"]).get() > 0
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), run.stop(h))
        .await
        .expect("the writer stops");
    assert_eq!(m.points_written.get(), 0);
    let spool = Spool::open(&data.join("spool/timeseries"), u64::MAX).unwrap();
    assert_eq!(
        spool.points(),
        250,
        "everything, the partial batch too, is on disk"
    );
    drop(spool);

    // Second run: the database is up; the spool from the first run drains.
    let vm = Vm::start(dir.path()).await;
    let (h, m, run) = start(&config(vm.url()), &data, &Registry::new());
    record_range(&h, 250..300); // new readings after the restart come after the spooled ones
    h.flush();
    assert_all_written(&vm, &m, 300).await;
    run.stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_synced_before_a_crash_are_written_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gw");
    // First run: the writer never gets to send (the database is not there) and the process
    // dies without a clean stop: nothing is spilled to the spool on the way out.
    let slow = TimeSeriesConfig {
        flush_interval_ms: 600_000,
        ..config_without_database()
    };
    let (h, w) = TimeSeriesWriter::from_config(&slow, &data, &Registry::new())
        .unwrap()
        .unwrap();
    record_range(&h, 0..250); // two sealed batches and 50 points being filled
    h.sync().unwrap(); // what the core does before acknowledging the message
    record_range(&h, 250..260); // recorded, never synced: its message was not acknowledged
    drop((h, w)); // the crash: memory is gone, nothing ran on the way out
    let journal = data.join("spool/timeseries-journal");
    assert_eq!(
        std::fs::read_dir(&journal).unwrap().count(),
        3,
        "one journal file per batch in memory"
    );

    // Second run: the journal goes into the spool and drains, before new readings.
    let vm = Vm::start(dir.path()).await;
    let (h, w) = TimeSeriesWriter::from_config(&config(vm.url()), &data, &Registry::new())
        .unwrap()
        .unwrap();
    let m = w.metrics();
    assert_eq!(
        m.points_spooled.get(),
        250,
        "every synced point recovered, none of the unsynced ones"
    );
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    let run = Running::spawn(w);
    // The unacknowledged readings come again (the broker resends them), then new ones.
    record_range(&h, 250..300);
    h.sync().unwrap();
    assert_all_written(&vm, &m, 300).await;
    wait_for("the journal emptied", Duration::from_secs(5), || {
        std::fs::read_dir(&journal).unwrap().count() == 0
    })
    .await;
    run.stop(h).await;
}

/// A journal append that fails (here the journal directory is replaced by a file, which
/// refuses even root) fails `sync` and is counted, and no batch is sealed past it; once the
/// fault is gone the next `sync` journals every point, and a crash then loses none of them.
#[test]
fn a_failed_journal_append_fails_the_sync_until_the_fault_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let slow = TimeSeriesConfig {
        flush_interval_ms: 600_000,
        ..config_without_database()
    };
    let (h, w) = TimeSeriesWriter::from_config(&slow, &data, &Registry::new())
        .unwrap()
        .unwrap();
    let m = w.metrics();
    // A whole batch (100 points): sealed, its journal file closed.
    record_range(&h, 0..100);
    h.sync().unwrap();
    assert_eq!(m.journal_failures.get(), 0);
    // The fault: no journal file can be opened.
    let journal = data.join("spool/timeseries-journal");
    let aside = data.join("journal-aside");
    std::fs::rename(&journal, &aside).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();
    record_range(&h, 100..150);
    assert!(
        h.sync().is_err(),
        "the append failed: the message is not acknowledged"
    );
    assert_eq!(m.journal_failures.get(), 1, "counted");
    // The batch fills up; it is not sealed while its lines are not journaled.
    record_range(&h, 150..200);
    assert!(h.sync().is_err());
    assert!(m.journal_failures.get() >= 2);
    // The fault is gone: the next sync journals everything recorded since the last success.
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(&aside, &journal).unwrap();
    h.sync().unwrap();
    drop((h, w)); // a crash: memory is gone

    let (_h, w) = TimeSeriesWriter::from_config(&slow, &data, &Registry::new())
        .unwrap()
        .unwrap();
    assert_eq!(
        w.metrics().points_spooled.get(),
        200,
        "every point recovered from the journal"
    );
}

#[test]
fn memory_bound_spills_and_only_a_full_spool_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("http://127.0.0.1:9".into());
    c.memory_points = 200;
    // One batch of 100 lines is about 15 kB: room for three on disk.
    c.spool_max_bytes = 50_000;
    let (h, w) = TimeSeriesWriter::from_config(&c, dir.path(), &Registry::new())
        .unwrap()
        .unwrap();
    let m = w.metrics();
    // No writer task runs: nothing leaves memory except by the bound.
    record_range(&h, 0..199);
    assert_eq!((m.memory_points.get(), m.points_spooled.get()), (199, 0));
    record_range(&h, 199..200);
    assert_eq!(
        m.memory_points.get(),
        100,
        "the oldest batch went to disk: room for the next batch"
    );
    assert_eq!(m.points_spooled.get(), 100);
    record_range(&h, 200..400);
    assert_eq!(m.points_spooled.get(), 300);
    assert_eq!(
        m.points_dropped.with_label_values(&["spool_full"]).get(),
        0,
        "nothing dropped while the spool has room"
    );
    record_range(&h, 400..600);
    assert_eq!(m.memory_points.get(), 100);
    assert_eq!(m.points_spooled.get(), 300);
    assert_eq!(
        m.points_dropped.with_label_values(&["spool_full"]).get(),
        200,
        "the batches that did not fit are counted"
    );
    assert!(m.spool_bytes.get() as u64 <= c.spool_max_bytes);
    assert_eq!(h.backlog_points(), 400);
}

#[test]
fn config_validates_and_keeps_a_path_prefix() {
    let mut c = TimeSeriesConfig::default();
    assert!(c.write_url().unwrap().is_none());
    c.apply_env(|k| match k {
        "HRS_INFLUX_URL" => Some("https://tsdb.example:8443/influx/".into()),
        "HRS_INFLUX_ORG" => Some("henan safety".into()),
        "HRS_INFLUX_BUCKET" => Some("readings".into()),
        "HRS_INFLUX_TOKEN" => Some("s3cret".into()),
        _ => None,
    });
    c.validate().unwrap();
    assert_eq!(
        c.write_url().unwrap().unwrap().as_str(),
        "https://tsdb.example:8443/influx/api/v2/write?org=henan+safety&bucket=readings&precision=ms"
    );
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "the token is not logged"
    );
    c.url = Some("ftp://x".into());
    assert!(c.validate().is_err());
    c.url = None;
    c.memory_points = c.batch_points;
    assert!(c.validate().is_err());
    let e = toml::from_str::<TimeSeriesConfig>("batch_size = 5").unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
}

#[test]
fn metrics_registered_once() {
    let r = Registry::new();
    TimeSeriesMetrics::register(&r).unwrap();
    assert!(
        TimeSeriesMetrics::register(&r).is_err(),
        "a second registration is refused, not doubled"
    );
    let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
    for n in [
        "hrs_timeseries_points_written_total",
        "hrs_timeseries_points_spooled_total",
        "hrs_timeseries_points_dropped_total",
        "hrs_timeseries_spool_bytes",
        "hrs_timeseries_write_seconds",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
}

/// Points written per second into a real VictoriaMetrics on this machine, through the handle
/// (encoding) and the writer (batches of `batch_points`, one request at a time). A figure for
/// BENCHMARKS.md, not a check:
/// `cargo test -p gateway --release --lib timeseries::tests::throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_into_victoriametrics() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vm::start(dir.path()).await;
    let n: i64 = std::env::var("HRS_TS_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let c = TimeSeriesConfig {
        url: Some(vm.url()),
        ..Default::default()
    };
    let (h, m, run) = start(&c, &dir.path().join("gw"), &Registry::new());
    let site = SiteId::new("mine-01").unwrap();
    let agent = AgentId::new("mine-01-edge").unwrap();
    let specs: Vec<PointSpec> = (0..1000)
        .map(|i| {
            let mut s = PointSpec::new(
                PointId::new(format!("CH4-{i}")).unwrap(),
                Quantity::Ch4,
                Unit::PercentVol,
            );
            s.location = Some("working_face".into());
            s
        })
        .collect();
    let base = base_ms();
    let started = Instant::now();
    let mut record_time = Duration::ZERO;
    for i in 0..n {
        let spec = &specs[(i % 1000) as usize];
        let ts = chrono::Utc
            .timestamp_millis_opt(base + (i / 1000) * 10)
            .unwrap();
        let r = Reading::good(
            spec.point.clone(),
            ts,
            Value::Number((i % 100) as f64 / 100.0),
        );
        let t = Instant::now();
        h.record(&site, &agent, &r, Some(spec), Some(&Category::CoalMine));
        // The core syncs the journal once per message: here, messages of 100 readings.
        if i % 100 == 99 {
            h.sync().unwrap();
        }
        record_time += t.elapsed();
        // Keep the producer at the writer's pace (as the core would be, under load), not ahead of it.
        if i % 50_000 == 0 {
            while h.backlog_points() > 150_000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    h.flush();
    wait_for("all points written", Duration::from_secs(600), || {
        m.points_written.get() == n as u64
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "timeseries throughput: {n} points in {secs:.2} s = {:.0} points/s written; record() with the journal sync {:.0} ns/point; spooled {}; batches of {} points",
        n as f64 / secs,
        record_time.as_nanos() as f64 / n as f64,
        m.points_spooled.get(),
        c.batch_points
    );
    assert_eq!(m.points_dropped.with_label_values(&["spool_full"]).get(), 0);
    run.stop(h).await;
}

/// InfluxDB answers a malformed batch with 400 and an outage of its own with 503: the first is
/// dropped and counted (retrying cannot help), the second is kept and retried. VictoriaMetrics
/// answers 204 to anything, so a small HTTP server answers as InfluxDB 2 does here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_counted_and_unavailable_is_retried() {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
    let status = Arc::new(AtomicU16::new(400));
    let requests = Arc::new(AtomicUsize::new(0));
    let (st, rq) = (status.clone(), requests.clone());
    let app = axum::Router::new().route(
        "/prefix/api/v2/write",
        axum::routing::post(move |q: axum::extract::RawQuery, body: String| {
            let (st, rq) = (st.clone(), rq.clone());
            async move {
                assert_eq!(q.0.as_deref(), Some("org=hrs&bucket=hrs&precision=ms"));
                assert!(body.starts_with("reading,"), "{body}");
                rq.fetch_add(1, Ordering::SeqCst);
                let code = axum::http::StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap();
                (code, r#"{"code":"invalid","message":"unable to parse"}"#)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let (h, m, run) = start(
        &config(format!("http://{addr}/prefix")),
        dir.path(),
        &Registry::new(),
    );

    record_range(&h, 0..200);
    wait_for("two batches refused", Duration::from_secs(10), || {
        m.points_dropped.with_label_values(&["refused"]).get() == 200
    })
    .await;
    assert_eq!(m.write_failures.with_label_values(&["refused"]).get(), 2);
    assert_eq!(m.points_spooled.get(), 0, "a refused batch is not kept");

    status.store(503, Ordering::SeqCst);
    record_range(&h, 200..300);
    wait_for(
        "an unavailable database retried",
        Duration::from_secs(10),
        || m.write_failures.with_label_values(&["server_error"]).get() >= 2,
    )
    .await;
    assert_eq!(
        m.points_spooled.get(),
        100,
        "kept on disk while the database says 503"
    );
    assert_eq!(m.points_dropped.with_label_values(&["refused"]).get(), 200);

    status.store(204, Ordering::SeqCst);
    wait_for("written after the 503s", Duration::from_secs(10), || {
        m.points_written.get() == 100
    })
    .await;
    assert_eq!(m.spool_bytes.get(), 0);
    run.stop(h).await;
    server.abort();
}
