//! Harness for system tests: real programs (the built `gateway` and `edge-agent` binaries) and
//! real services (Mosquitto) on ports of their own, driven from outside.

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The directory where cargo put the binaries (`scripts/test` builds them before the tests).
pub fn bin_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug").join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
        p.display()
    );
    p
}

/// Wait until a TCP port accepts connections.
pub async fn wait_port(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("port {port} did not open within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process that is killed (SIGKILL) when dropped; its output goes to a log file.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        })
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Mosquitto broker of our own on a free port.
pub struct Mosquitto {
    pub port: u16,
    pub proc: Proc,
    conf: PathBuf,
    dir: PathBuf,
}

impl Mosquitto {
    /// Start with persistence on (sessions and queued QoS 1 messages survive a restart).
    pub async fn start(dir: &Path) -> Result<Mosquitto> {
        let port = free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data)?;
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
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest file {}/mosquitto.log\nmax_queued_messages 100000\n",
                data.display(),
                data.display()
            ),
        )?;
        let proc = Self::spawn(&conf, dir)?;
        wait_port(port, Duration::from_secs(10)).await?;
        Ok(Mosquitto {
            port,
            proc,
            conf,
            dir: dir.to_path_buf(),
        })
    }

    fn spawn(conf: &Path, dir: &Path) -> Result<Proc> {
        Proc::spawn(
            "mosquitto",
            Command::new("mosquitto").arg("-c").arg(conf),
            dir,
        )
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stop cleanly (it saves its persistence file).
    pub fn stop(&mut self) {
        self.proc.terminate();
    }

    pub async fn restart(&mut self) -> Result<()> {
        self.proc = Self::spawn(&self.conf, &self.dir)?;
        wait_port(self.port, Duration::from_secs(10)).await
    }
}

/// An MQTT subscriber collecting (topic, payload) pairs.
pub struct Watcher {
    pub rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    _client: AsyncClient,
}

impl Watcher {
    pub async fn start(port: u16, filter: &str) -> Result<Watcher> {
        let mut opts = MqttOptions::new(format!("watch-{}", free_port()), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut ev) = AsyncClient::new(opts, 100);
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(t) = subscribed_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .context("no SUBACK")??;
        Ok(Watcher {
            rx,
            _client: client,
        })
    }

    /// The next message whose JSON payload satisfies `pred`, within `within`.
    pub async fn next_json(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&str, &serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (topic, payload) = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .context("no matching MQTT message in time")?
                .context("watcher stopped")?;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&payload) {
                if pred(&topic, &v) {
                    return Ok(v);
                }
            }
        }
    }
}

/// Poll `f` until it returns `Some`, or fail after `within`: for state that is only
/// observable by asking (an HTTP resource), not for ordering.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET a JSON resource.
pub async fn get_json(url: &str) -> Result<(u16, serde_json::Value)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

/// POST a JSON body.
pub async fn post_json(url: &str, body: serde_json::Value) -> Result<(u16, serde_json::Value)> {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

/// Publish one message at QoS 1 and wait for its PUBACK.
pub async fn publish(port: u16, topic: &str, payload: Vec<u8>, retain: bool) -> Result<()> {
    let mut opts = MqttOptions::new(format!("pub-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut ev) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload)
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ev.poll())
            .await
            .context("no PUBACK")?
        {
            Ok(Event::Incoming(Packet::PubAck(_))) => break,
            Ok(_) => {}
            Err(e) => bail!("publish: {e}"),
        }
    }
    let _ = client.disconnect().await;
    Ok(())
}
