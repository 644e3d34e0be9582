//! The publisher against a real Mosquitto with persistence (a directory and port of the
//! test's own), stopped, frozen and killed under it.

use super::*;
use crate::core::lifecycle::IncidentRecord;
use crate::outbox::filter::tests::event;
use rumqttc::MqttOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use telemetry::{EventKind, Severity};
use tokio::sync::mpsc;

const WITHIN: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Mosquitto with persistence in a directory of its own.
struct Broker {
    port: u16,
    conf: PathBuf,
    data: PathBuf,
    child: Option<Child>,
}

impl Broker {
    async fn start(dir: &Path) -> Broker {
        let port = free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).unwrap();
        // As root, mosquitto drops to its own user: give it the directory.
        let _ = Command::new("chown")
            .arg("-R")
            .arg("mosquitto:")
            .arg(&data)
            .status();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 3600\nlog_dest file {}/mosquitto.log\n",
                data.display(),
                data.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            port,
            conf,
            data,
            child: None,
        };
        b.spawn().await;
        b
    }

    async fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WITHIN;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not listen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    /// Save the persistence file now (SIGUSR1) and wait until it is there.
    async fn save(&self) {
        let db = self.data.join("mosquitto.db");
        let _ = std::fs::remove_file(&db);
        self.signal("USR1");
        let deadline = tokio::time::Instant::now() + WITHIN;
        while !db.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no persistence file"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (it saves its persistence file) or SIGKILL, and wait for the exit.
    fn stop(&mut self, sig: &str) {
        self.signal(sig);
        self.child.take().unwrap().wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A subscriber on a persistent session of its own: (site, event id) as they arrive.
fn watch(port: u16) -> mpsc::UnboundedReceiver<(String, String)> {
    let mut opts = MqttOptions::new("watch-incidents", "127.0.0.1", port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(opts, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client
                        .subscribe("hrs/v1/incidents/+", QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                    let site = v["site"].as_str().unwrap().to_string();
                    let id = v["event_id"].as_str().unwrap().to_string();
                    if tx.send((site, id)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Reconnect pace while the broker is away.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    rx
}

struct Log {
    store: Store,
    wake: Arc<tokio::sync::Notify>,
    /// Per site, the event ids in the order written.
    written: HashMap<String, Vec<String>>,
    last_pos: i64,
    n: u64,
}

impl Log {
    async fn write(&mut self, count: usize) {
        for _ in 0..count {
            self.n += 1;
            let site = ["mine-a", "mine-b", "mine-c"][(self.n % 3) as usize];
            let mut ev = event(site, "ch4", Severity::Alarm, EventKind::Raised);
            ev.event_id = format!("{site}-{}", self.n);
            ev.event_seq = self.n;
            let rec = IncidentRecord {
                incident: ev.incident.clone(),
                last_event_seq: self.n,
            };
            self.last_pos = self.store.write_change("k", &rec, &ev).await.unwrap();
            self.written
                .entry(site.to_string())
                .or_default()
                .push(ev.event_id.clone());
        }
        self.wake.notify_one();
    }
}

/// Receive until every written event has come at least once; all that came, in order.
async fn receive_all(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    got: &mut Vec<(String, String)>,
    log: &Log,
) {
    let want: usize = log.written.values().map(Vec::len).sum();
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let distinct: std::collections::HashSet<&String> = got.iter().map(|(_, id)| id).collect();
        if distinct.len() >= want {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => panic!("only {} of {want} events arrived", distinct.len()),
        }
    }
}

async fn wait_cursor(log: &EventLog, want: i64) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let c = log.cursor(CURSOR).await.unwrap();
        if c == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cursor {c}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event arrives at least once, in order per site, across a clean broker restart (events
/// written while it is down) and a broker frozen with events in flight and then killed with
/// SIGKILL; the cursor never passes an event the broker did not acknowledge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_in_order_across_broker_restarts_and_kills() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path()).await;
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("gateway.db").display()
    ))
    .await
    .unwrap();
    let mut rx = watch(broker.port);
    let mut opts = MqttOptions::new("gw-pub", "127.0.0.1", broker.port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, eventloop) = AsyncClient::new(opts, WINDOW * 2);
    let mqtt = MqttConfig {
        url: format!("mqtt://127.0.0.1:{}", broker.port),
        ..Default::default()
    };
    let metrics = Metrics::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let shutdown = CancellationToken::new();
    let publisher = tokio::spawn(run_event_publisher(
        store.clone(),
        PublisherConnection {
            client,
            eventloop,
            mqtt,
        },
        TopicScheme::new("hrs/v1"),
        wake.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let mut log = Log {
        store: store.clone(),
        wake,
        written: HashMap::new(),
        last_pos: 0,
        n: 0,
    };
    let events = EventLog::new(&store);
    let mut got = Vec::new();

    // Up and running; the sessions (the subscriber's subscription too) saved.
    log.write(20).await;
    receive_all(&mut rx, &mut got, &log).await;
    wait_cursor(&events, log.last_pos).await;
    broker.save().await;

    // A clean restart, with events written while the broker is away.
    broker.stop("TERM");
    log.write(10).await;
    broker.spawn().await;
    receive_all(&mut rx, &mut got, &log).await;
    wait_cursor(&events, log.last_pos).await;
    broker.save().await;

    // Frozen: the publisher hands 30 events to a broker that never answers...
    let acknowledged = log.last_pos;
    broker.signal("STOP");
    let handed_before = metrics
        .mqtt_published
        .with_label_values(&["incident_event"])
        .get();
    log.write(30).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while metrics
        .mqtt_published
        .with_label_values(&["incident_event"])
        .get()
        < handed_before + 30
    {
        assert!(tokio::time::Instant::now() < deadline, "not handed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and confirms none of them: no PUBACK came.
    assert_eq!(events.cursor(CURSOR).await.unwrap(), acknowledged);
    // ...then it is killed and started again: every one of them arrives.
    broker.stop("KILL");
    broker.spawn().await;
    receive_all(&mut rx, &mut got, &log).await;
    wait_cursor(&events, log.last_pos).await;

    // In order per site: the first arrival of each event follows the order written.
    for (site, ids) in &log.written {
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&String> = got
            .iter()
            .filter(|(s, id)| s == site && seen.insert(id.clone()))
            .map(|(_, id)| id)
            .collect();
        assert_eq!(firsts, ids.iter().collect::<Vec<_>>(), "site {site}");
    }
    shutdown.cancel();
    publisher.await.unwrap();
}
