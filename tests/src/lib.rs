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
        Self::start_as(port, filter, None).await
    }

    /// A watcher that logs in with `(username, password)` (a broker with accounts).
    pub async fn start_as(port: u16, filter: &str, login: Option<(&str, &str)>) -> Result<Watcher> {
        let mut opts = MqttOptions::new(format!("watch-{}", free_port()), "127.0.0.1", port);
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
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

/// A throwaway PKI made with the `openssl` command: a CA, a broker certificate for
/// `127.0.0.1` and `localhost`, a client certificate, and an unrelated CA that signed nothing
/// of ours (to prove verification fails against it). Keys are P-256.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

impl TestPki {
    pub fn generate(dir: &Path) -> Result<TestPki> {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir)?;
        let openssl = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .context("running openssl (apt-get install openssl)")?;
            if !out.status.success() {
                bail!(
                    "openssl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        for (name, cn) in [("ca", "HRS Test CA"), ("other-ca", "Somebody Else's CA")] {
            let (key, pem, subj) = (
                format!("{name}.key"),
                format!("{name}.pem"),
                format!("/CN={cn}"),
            );
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend([
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &subj,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&args)?;
        }
        for (name, cn, ext) in [
            (
                "server",
                "127.0.0.1",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "mine-01-edge", "extendedKeyUsage=clientAuth\n"),
        ] {
            let mut args = vec!["req"];
            args.extend(ec);
            let (key, csr, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("/CN={cn}"),
            );
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(&args)?;
            std::fs::write(dir.join(format!("{name}.ext")), ext)?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ])?;
        }
        // Mosquitto drops to its own user when started as root: it must be able to read these.
        readable_by_all(&dir)?;
        Ok(TestPki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        })
    }
}

/// chmod a+rX on a test directory's own files and on the directory and its parents up to
/// the temp root (test material only).
fn readable_by_all(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let add = |p: &Path, bits: u32| -> Result<()> {
        let mode = std::fs::metadata(p)?.permissions().mode();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | bits))?;
        Ok(())
    };
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        add(&p, if p.is_dir() { 0o555 } else { 0o444 })?;
    }
    let mut d = Some(dir);
    while let Some(p) = d {
        if p == std::env::temp_dir() || p.parent().is_none() {
            break;
        }
        add(p, 0o555)?;
        d = p.parent();
    }
    Ok(())
}

/// A Mosquitto of our own with three listeners, each on a free port:
/// - `port`: plain MQTT, anonymous (the test's own watcher and publisher);
/// - `tls_port`: TLS with the test PKI's broker certificate, username and password required;
/// - `mtls_port`: TLS that requires a client certificate signed by the test CA (its CN is
///   the username).
pub struct TlsMosquitto {
    pub port: u16,
    pub tls_port: u16,
    pub mtls_port: u16,
    pub proc: Proc,
    dir: PathBuf,
    passwd: PathBuf,
    log: PathBuf,
}

impl TlsMosquitto {
    pub async fn start(dir: &Path, pki: &TestPki, user: &str, password: &str) -> Result<Self> {
        // Its own directory, handed to its user (it drops to `mosquitto` when run as root).
        let own = dir.join("mosquitto-tls");
        std::fs::create_dir_all(&own)?;
        readable_by_all(dir)?;
        let passwd = own.join("passwd");
        let out = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg("-c")
            .arg(&passwd)
            .arg(user)
            .arg(password)
            .output()
            .context("mosquitto_passwd (apt-get install mosquitto)")?;
        if !out.status.success() {
            bail!("mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = Command::new("chown")
            .arg("-R")
            .arg("mosquitto:")
            .arg(&own)
            .status();
        let (port, tls_port, mtls_port) = (free_port(), free_port(), free_port());
        let mut m = TlsMosquitto {
            port,
            tls_port,
            mtls_port,
            proc: Proc {
                name: String::new(),
                child: None,
                log: PathBuf::new(),
            },
            dir: dir.to_path_buf(),
            passwd,
            log: own.join("mosquitto.log"),
        };
        m.restart_with(pki).await?;
        Ok(m)
    }

    /// Stop (if running) and start again on the same ports with `pki`'s broker certificate and
    /// CA: a certificate renewal on the broker's side.
    pub async fn restart_with(&mut self, pki: &TestPki) -> Result<()> {
        self.proc.kill();
        let conf = self.dir.join("mosquitto-tls.conf");
        let tls = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        );
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings true\npersistence false\nlog_dest file {log}\nlog_type all\n\
                 listener {port} 127.0.0.1\nallow_anonymous true\n\
                 listener {tls_port} 127.0.0.1\n{tls}allow_anonymous false\npassword_file {pw}\n\
                 listener {mtls_port} 127.0.0.1\n{tls}require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n",
                log = self.log.display(),
                pw = self.passwd.display(),
                port = self.port,
                tls_port = self.tls_port,
                mtls_port = self.mtls_port,
            ),
        )?;
        self.proc = Proc::spawn(
            "mosquitto-tls",
            Command::new("mosquitto").arg("-c").arg(&conf),
            &self.dir,
        )?;
        for p in [self.port, self.tls_port, self.mtls_port] {
            wait_port(p, Duration::from_secs(10))
                .await
                .with_context(|| {
                    format!(
                        "mosquitto with TLS listeners: {}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    )
                })?;
        }
        Ok(())
    }
}

/// A metric's value from a Prometheus text page: the first sample named exactly `name`
/// (with or without labels).
pub fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Fetch a Prometheus page and read one metric from it.
pub async fn metric(url: &str, name: &str) -> Option<f64> {
    let page = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    sample(&page, name)
}

/// Wait until the metric `name` at `url` satisfies `cond`; its value then.
pub async fn wait_metric(
    url: &str,
    name: &str,
    within: Duration,
    cond: impl Fn(f64) -> bool + Clone,
) -> Result<f64> {
    eventually(within, name, || {
        let cond = cond.clone();
        async move { metric(url, name).await.filter(|v| cond(*v)) }
    })
    .await
}

/// `gateway run` for a test: its broker, topic prefix, HTTP port, data under `dir/gw`, and a
/// client id of its own (so tests on one broker never share a session). It runs in open mode
/// (`HRS_AUTH_MODE=open`, on 127.0.0.1): the tests of other behaviour act as the admin
/// `anonymous`; the access tests set `HRS_AUTH_MODE=tokens`. Add what the test needs
/// (`--config`, more `HRS_*`) before spawning it with [`Proc::spawn`].
pub fn gateway_command(mqtt_url: &str, prefix: &str, http_port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new(bin_path("gateway"));
    cmd.arg("run")
        .env("HRS_MQTT_URL", mqtt_url)
        .env("HRS_TOPIC_PREFIX", prefix)
        .env("HRS_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("HRS_DATA_DIR", dir.join("gw"))
        .env("HRS_MQTT_CLIENT_ID", format!("gw-{http_port}"))
        .env("HRS_AUTH_MODE", "open");
    cmd
}

/// A VictoriaMetrics of our own on a free port, started as the setup notes say for rewrites.
pub struct VictoriaMetrics {
    pub port: u16,
    pub proc: Proc,
    storage: PathBuf,
    dir: PathBuf,
    extra: Vec<String>,
}

impl VictoriaMetrics {
    pub async fn start(dir: &Path, extra: &[String]) -> VictoriaMetrics {
        let port = free_port();
        let storage = dir.join("vm-data");
        let proc = Self::spawn(port, &storage, dir, extra);
        let vm = VictoriaMetrics {
            port,
            proc,
            storage,
            dir: dir.to_path_buf(),
            extra: extra.to_vec(),
        };
        vm.wait_healthy().await;
        vm
    }
    fn spawn(port: u16, storage: &Path, dir: &Path, extra: &[String]) -> Proc {
        let mut cmd = Command::new("victoria-metrics");
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", storage.display()))
            .arg("-dedup.minScrapeInterval=1ms")
            .arg("-search.latencyOffset=1s")
            .args(extra);
        Proc::spawn("victoria-metrics", &mut cmd, dir)
            .expect("victoria-metrics is not installed (Debian package victoria-metrics)")
    }
    async fn wait_healthy(&self) {
        let url = format!("{}/health", self.url());
        eventually(Duration::from_secs(20), "victoria-metrics healthy", || {
            let url = url.clone();
            async move {
                let r = reqwest::Client::new()
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.log_text()));
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// SIGTERM: a clean stop that flushes its data.
    pub fn stop(&mut self) {
        self.proc.terminate();
    }
    pub async fn restart(&mut self) {
        self.proc = Self::spawn(self.port, &self.storage, &self.dir, &self.extra);
        self.wait_healthy().await;
    }
    /// Every sample of the series matching `selector`: (labels, timestamp ms, value).
    pub async fn export(&self, selector: &str) -> Vec<(serde_json::Value, i64, f64)> {
        let Ok(r) = reqwest::Client::new()
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[("match[]", selector)])
            .timeout(Duration::from_secs(10))
            .send()
            .await
        else {
            return Vec::new();
        };
        let text = r.text().await.unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(ts), Some(vals)) = (v["timestamps"].as_array(), v["values"].as_array())
            else {
                continue;
            };
            for (t, x) in ts.iter().zip(vals) {
                out.push((
                    v["metric"].clone(),
                    t.as_i64().unwrap_or_default(),
                    x.as_f64().unwrap_or(f64::NAN),
                ));
            }
        }
        out
    }
}

/// A TCP proxy the test can cut: `down` closes every proxied connection and refuses new ones
/// (the client sees its peer as unreachable) while the peer itself, and clients connected to
/// it directly, stay up.
pub struct CutProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(target_port: u16) -> Result<CutProxy> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, c) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().expect("conns lock").push(task);
            }
        });
        Ok(CutProxy {
            port,
            up,
            conns,
            accept,
        })
    }

    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in self.conns.lock().expect("conns lock").drain(..) {
            t.abort();
        }
    }

    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}

/// Who an edge agent of a test is: its agent id, its site, its file name under the test's
/// directory and its data directory.
pub struct TestAgent<'a> {
    pub name: &'a str,
    pub agent: &'a str,
    pub site: &'a str,
    pub data_dir: &'a Path,
}

/// The configuration of an edge agent that reads the methane simulator at `plc_port`
/// (`CH4-101` at the working face, every 200 ms), publishing under `prefix` with the `[mqtt]`
/// lines `mqtt` (its URL, TLS files, credentials): written to `dir/{name}.toml`; its path and
/// the agent's metrics port.
pub fn methane_agent_config(
    dir: &Path,
    who: &TestAgent<'_>,
    prefix: &str,
    plc_port: u16,
    mqtt: &str,
) -> (String, u16) {
    let metrics_port = free_port();
    let path = dir.join(format!("{}.toml", who.name));
    std::fs::write(
        &path,
        format!(
            r#"
agent = "{agent}"
site = "{site}"
data_dir = "{data}"
publish_interval_ms = 200
metrics_addr = "127.0.0.1:{metrics_port}"
[site_info]
category = "coal_mine"
[mqtt]
topic_prefix = "{prefix}"
timeout_ms = 3000
{mqtt}
[[devices]]
name = "gas-plc"
host = "127.0.0.1"
port = {plc_port}
timeout_ms = 1000
poll_interval_ms = 200
  [[devices.points]]
  point = "CH4-101"
  function = "holding"
  address = 0
  type = "u16"
  scale = 0.01
  quantity = "ch4"
  unit = "%"
  location = "working_face"
"#,
            agent = who.agent,
            site = who.site,
            data = who.data_dir.display(),
        ),
    )
    .expect("writing the agent's configuration");
    (path.display().to_string(), metrics_port)
}

/// `edge-agent run --config CONFIG` as a test's process.
pub fn start_agent(dir: &Path, name: &str, config: &str) -> Proc {
    Proc::spawn(
        name,
        Command::new(bin_path("edge-agent"))
            .arg("run")
            .arg("--config")
            .arg(config),
        dir,
    )
    .expect("starting edge-agent")
}

/// `edge-agent simulate` with one device, `gas-plc`, on a free port: methane `CH4-101` in
/// holding register 0 (u16, hundredths of a percent), `percent` until written over Modbus.
/// Returns the process and the device's port once it listens.
pub async fn methane_simulator(dir: &Path, percent: f64) -> Result<(Proc, u16)> {
    let plc_port = free_port();
    let conf = dir.join("sim.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[[devices]]
name = "gas-plc"
listen = "127.0.0.1:{plc_port}"
tick_ms = 200
hold_ms = 600000
  [[devices.values]]
  point = "CH4-101"
  function = "holding"
  address = 0
  type = "u16"
  scale = 0.01
  signal = {{ kind = "static", value = {percent} }}
"#
        ),
    )?;
    let sim = Proc::spawn(
        "simulator",
        Command::new(bin_path("edge-agent"))
            .arg("simulate")
            .arg("--config")
            .arg(&conf),
        dir,
    )?;
    wait_port(plc_port, Duration::from_secs(20)).await?;
    Ok((sim, plc_port))
}

/// A database of the test's own on the machine's PostgreSQL (trust auth on 127.0.0.1:5432,
/// which `scripts/test` starts); dropped with the value.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    const ADMIN: &'static str = "postgres://postgres@127.0.0.1:5432/postgres";

    pub fn create() -> Result<PgDatabase> {
        let name = format!("hrs_test_{}", free_port());
        let ok = Command::new("psql")
            .arg(Self::ADMIN)
            .arg("-qc")
            .arg(format!("CREATE DATABASE {name}"))
            .status()
            .context("psql (apt-get install postgresql-client)")?;
        if !ok.success() {
            bail!("PostgreSQL must be reachable at 127.0.0.1:5432 (scripts/test starts it)");
        }
        Ok(PgDatabase { name })
    }

    /// The store URL for `HRS_STORE_URL`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(Self::ADMIN)
            .arg("-qc")
            .arg(format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .status();
    }
}

/// Wait until the gateway at `http` (`http://host:port`) answers `/readyz` with 200.
pub async fn wait_ready(http: &str) -> Result<()> {
    eventually(Duration::from_secs(30), "gateway ready", || async move {
        matches!(get_json(&format!("{http}/readyz")).await, Ok((200, _))).then_some(())
    })
    .await
}

/// Simulated JT/T 808 terminals over real TCP (also the `jt808-sim` load simulator): they
/// live beside the agent, since `gateway demo` drives them too.
pub use edge_agent::jt808_sim;

/// `gateway ARGS` (the `user` and `token` commands, say) on the store of a test gateway whose
/// data lie under `dir/gw` (or at `store_url`), `stdin` fed to it: its standard output. Panics
/// with its standard error when it fails.
pub fn gateway_cli(dir: &Path, store_url: Option<&str>, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut cmd = Command::new(bin_path("gateway"));
    if let Some(url) = store_url {
        cmd.env("HRS_STORE_URL", url);
    }
    let mut child = cmd
        .args(args)
        .env("HRS_DATA_DIR", dir.join("gw"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning gateway");
    child
        .stdin
        .take()
        .expect("its stdin")
        .write_all(stdin.as_bytes())
        .expect("writing its stdin");
    let out = child.wait_with_output().expect("gateway's output");
    assert!(
        out.status.success(),
        "gateway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
