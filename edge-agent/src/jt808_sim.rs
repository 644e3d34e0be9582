//! Simulated JT/T 808 terminals: real TCP connections that register, authenticate and report
//! like vehicle terminals, for `gateway demo`'s fleet, the system tests and the `jt808-sim`
//! load simulator (tests/src/bin).
//!
//! [`Terminal`] is one connection driven step by step (a test sends exactly the frames it
//! wants); [`run_fleet`] runs many terminals that report on their own, with plausible moving
//! positions, scripted overspeeds and driving/rest cycles, reconnecting (and authenticating
//! with the code they keep) when the link drops.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use jt808::message::id;
use jt808::{
    Authentication, BcdTime, DriverDetails, DriverIdentity, FrameSplitter, Header, Layout,
    Location, Message, Registration,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on connecting and on waiting for one answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One terminal connection.
pub struct Terminal {
    pub phone: String,
    pub layout: Layout,
    stream: TcpStream,
    splitter: FrameSplitter,
    serial: u16,
}

/// A location report at `time` (speed km/h, heading degrees).
pub fn location(
    lat: f64,
    lon: f64,
    speed_kmh: f64,
    heading: u16,
    time: DateTime<Utc>,
    alarm: u32,
) -> Location {
    let mut status = jt808::location::STATUS_ACC_ON | jt808::location::STATUS_POSITIONED;
    if lat < 0.0 {
        status |= jt808::location::STATUS_SOUTH;
    }
    if lon < 0.0 {
        status |= jt808::location::STATUS_WEST;
    }
    Location {
        alarm,
        status,
        lat_e6: (lat.abs() * 1e6).round() as u32,
        lon_e6: (lon.abs() * 1e6).round() as u32,
        altitude_m: 75,
        speed_dkmh: (speed_kmh * 10.0).round().clamp(0.0, 65535.0) as u16,
        heading: heading % 360,
        time: BcdTime::from_utc(time),
        extras: vec![
            jt808::Extra::Mileage(1234),
            jt808::Extra::SignalStrength(25),
            jt808::Extra::Satellites(12),
        ],
    }
}

impl Terminal {
    pub async fn connect(addr: &str, phone: &str, layout: Layout) -> Result<Terminal> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("connecting to {addr}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Terminal {
            phone: phone.to_string(),
            layout,
            stream,
            splitter: FrameSplitter::new(4096),
            serial: 0,
        })
    }

    fn header(&mut self, msg_id: u16) -> Header {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1);
        match self.layout {
            Layout::V2013 => Header::v2013(msg_id, &self.phone, s),
            Layout::V2019 => Header::v2019(msg_id, &self.phone, s),
        }
    }

    /// Send a message; its serial.
    pub async fn send(&mut self, m: &Message) -> Result<u16> {
        let h = self.header(m.msg_id());
        let frame = m.encode_frame(&h)?;
        self.send_raw(&frame).await?;
        Ok(h.serial)
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        tokio::time::timeout(TIMEOUT, self.stream.write_all(bytes))
            .await
            .context("write timed out")??;
        Ok(())
    }

    /// The next message from the platform, within `within`.
    pub async fn recv(&mut self, within: Duration) -> Result<(Header, Message)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 2048];
        loop {
            if let Some(raw) = self.splitter.next_frame() {
                let f = jt808::decode_frame(&raw?)?;
                let m = Message::decode(&f.header, &f.body)?;
                return Ok((f.header, m));
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .context("no answer in time")??;
            if n == 0 {
                bail!("connection closed by the platform");
            }
            self.splitter.push(&buf[..n]);
        }
    }

    /// Send and wait for the platform's general response to it: its result.
    pub async fn request(&mut self, m: &Message) -> Result<u8> {
        let serial = self.send(m).await?;
        loop {
            match self.recv(TIMEOUT).await? {
                (_, Message::PlatformResponse(g)) if g.serial == serial => return Ok(g.result),
                _ => continue,
            }
        }
    }

    /// Register; the result and the auth code.
    pub async fn register(&mut self, plate: &str) -> Result<(u8, Option<String>)> {
        let m = Message::Registration(Registration {
            province: 41,
            city: 500,
            maker: "HRS".into(),
            model: "SIM-808".into(),
            terminal_id: self.phone.chars().rev().take(7).collect(),
            plate_colour: 2,
            plate: plate.into(),
        });
        let serial = self.send(&m).await?;
        loop {
            if let (_, Message::RegistrationResponse(r)) = self.recv(TIMEOUT).await? {
                if r.serial == serial {
                    return Ok((r.result, r.auth_code));
                }
            }
        }
    }

    /// Authenticate with `code`; the result (0 accepted).
    pub async fn authenticate(&mut self, code: &str) -> Result<u8> {
        let two = self.layout == Layout::V2019;
        self.request(&Message::Authentication(Authentication {
            code: code.into(),
            imei: two.then(|| "860000000000001".into()),
            software_version: two.then(|| "sim-1.0".into()),
        }))
        .await
    }

    /// Register and authenticate; the code.
    pub async fn enrol(&mut self, plate: &str) -> Result<String> {
        let (r, code) = self.register(plate).await?;
        let code = match (r, code) {
            (0, Some(c)) => c,
            (r, _) => bail!("registration refused with result {r}"),
        };
        match self.authenticate(&code).await? {
            0 => Ok(code),
            r => bail!("authentication refused with result {r}"),
        }
    }

    /// Report a location and wait for its answer.
    pub async fn report(&mut self, l: &Location) -> Result<u8> {
        self.request(&Message::Location(l.clone())).await
    }

    /// Report a driver signing in with an IC card.
    pub async fn driver(&mut self, name: &str, licence: &str) -> Result<u8> {
        self.request(&Message::DriverIdentity(DriverIdentity {
            status: 1,
            time: BcdTime::from_utc(Utc::now()),
            ic_result: Some(0),
            driver: Some(DriverDetails {
                name: name.into(),
                licence: licence.into(),
                authority: "道路运输管理局".into(),
                expiry: "20301231".into(),
                id_card: (self.layout == Layout::V2019).then(|| "410500198001011234".into()),
            }),
        }))
        .await
    }
}

/// A speed a terminal reports from `from` for `for_` after the fleet started.
#[derive(Debug, Clone)]
pub struct SpeedScript {
    pub terminal: String,
    pub speed_kmh: f64,
    pub from: Duration,
    pub for_: Duration,
}

/// What a fleet does.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub addr: String,
    pub terminals: usize,
    /// The first terminal number; the others follow it.
    pub first: u64,
    pub interval: Duration,
    /// `V2013`, `V2019`, or every other one (`None`).
    pub layout: Option<Layout>,
    /// Delay between two terminals' first connection (a ramp).
    pub ramp: Duration,
    pub speeds: Vec<SpeedScript>,
    /// Driving then resting (speed 0), repeated; none: always driving.
    pub drive_rest: Option<(Duration, Duration)>,
    /// After an authentication is refused: register again (true, what terminals do), or
    /// count it and retry with the same code (false: a test of persisted codes).
    pub reregister: bool,
    pub stop_after: Option<Duration>,
}

/// Counters of a fleet, shared by its terminals.
#[derive(Debug, Default)]
pub struct FleetStats {
    pub connected: AtomicU64,
    pub authenticated: AtomicU64,
    pub registrations: AtomicU64,
    pub auth_refused: AtomicU64,
    pub reports_sent: AtomicU64,
    pub reports_ok: AtomicU64,
    pub reports_refused: AtomicU64,
    pub reconnects: AtomicU64,
    /// Answer latency, counts per bucket: < 10, 50, 100, 250, 500, 1000, 2500, 5000 ms, more.
    pub latency_buckets: [AtomicU64; 9],
}

const BUCKETS_MS: [u64; 8] = [10, 50, 100, 250, 500, 1000, 2500, 5000];

impl FleetStats {
    fn latency(&self, d: Duration) {
        let ms = d.as_millis() as u64;
        let i = BUCKETS_MS.iter().position(|b| ms < *b).unwrap_or(8);
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
    }
    /// The upper bound (ms) of the bucket holding quantile `q` of the answer latencies.
    pub fn latency_quantile_ms(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self
            .latency_buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let want = (total as f64 * q).ceil() as u64;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= want && total > 0 {
                return BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        0
    }
    pub fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connected": g(&self.connected), "authenticated": g(&self.authenticated),
            "registrations": g(&self.registrations), "auth_refused": g(&self.auth_refused),
            "reports_sent": g(&self.reports_sent), "reports_ok": g(&self.reports_ok),
            "reports_refused": g(&self.reports_refused), "reconnects": g(&self.reconnects),
            "answer_p50_ms_below": self.latency_quantile_ms(0.5),
            "answer_p99_ms_below": self.latency_quantile_ms(0.99),
        })
    }
}

/// Where terminal `i` is `t` after the start: it drives from a point near Anyang on a
/// heading of its own, turning slowly; the speed as scripted, else 40-79 km/h by terminal.
fn motion(
    cfg: &FleetConfig,
    i: usize,
    phone: &str,
    t: Duration,
    odometer_km: &mut f64,
    pos: &mut (f64, f64),
    dt: Duration,
) -> (f64, u16) {
    let mut speed = 40.0 + (i % 40) as f64;
    if let Some((drive, rest)) = cfg.drive_rest {
        let cycle = (drive + rest).as_secs_f64().max(1.0);
        if t.as_secs_f64() % cycle >= drive.as_secs_f64() {
            speed = 0.0;
        }
    }
    for s in &cfg.speeds {
        if s.terminal == phone && t >= s.from && t < s.from + s.for_ {
            speed = s.speed_kmh;
        }
    }
    let heading = ((i * 37) as f64 + t.as_secs_f64() / 10.0) % 360.0;
    let km = speed * dt.as_secs_f64() / 3600.0;
    *odometer_km += km;
    let rad = heading.to_radians();
    pos.0 += km * rad.cos() / 111.0;
    pos.1 += km * rad.sin() / (111.0 * pos.0.to_radians().cos().max(0.1));
    (speed, heading as u16)
}

/// Run one terminal of the fleet until `stop` (or forever).
async fn run_terminal(cfg: Arc<FleetConfig>, stats: Arc<FleetStats>, i: usize, started: Instant) {
    let phone = (cfg.first + i as u64).to_string();
    let layout = cfg.layout.unwrap_or(if i & 1 == 0 {
        Layout::V2013
    } else {
        Layout::V2019
    });
    let plate = format!("豫E{:05}", (cfg.first + i as u64) % 100_000);
    let mut code: Option<String> = None;
    let mut pos = (
        36.10 + (i % 100) as f64 * 0.01,
        114.39 + (i / 100 % 100) as f64 * 0.01,
    );
    let mut odo = 0.0;
    let mut first = true;
    loop {
        if cfg.stop_after.is_some_and(|s| started.elapsed() >= s) {
            return;
        }
        if !first {
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        first = false;
        let Ok(mut t) = Terminal::connect(&cfg.addr, &phone, layout).await else {
            continue;
        };
        stats.connected.fetch_add(1, Ordering::Relaxed);
        let r = session(
            &cfg, &stats, &mut t, i, &plate, &mut code, &mut pos, &mut odo, started,
        )
        .await;
        stats.connected.fetch_sub(1, Ordering::Relaxed);
        if r.is_ok() {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    cfg: &FleetConfig,
    stats: &FleetStats,
    t: &mut Terminal,
    i: usize,
    plate: &str,
    code: &mut Option<String>,
    pos: &mut (f64, f64),
    odo: &mut f64,
    started: Instant,
) -> Result<()> {
    loop {
        if code.is_none() {
            let (r, c) = t.register(plate).await?;
            stats.registrations.fetch_add(1, Ordering::Relaxed);
            if r != 0 {
                bail!("registration refused: {r}");
            }
            *code = c;
        }
        match t.authenticate(code.as_deref().unwrap_or_default()).await? {
            0 => break,
            _ => {
                stats.auth_refused.fetch_add(1, Ordering::Relaxed);
                if cfg.reregister {
                    *code = None;
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    stats.authenticated.fetch_add(1, Ordering::Relaxed);
    let _guard = scopeguard(|| {
        stats.authenticated.fetch_sub(1, Ordering::Relaxed);
    });
    // Spread the terminals' reports over the interval.
    let offset = cfg.interval.mul_f64((i % 1000) as f64 / 1000.0);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent: HashMap<u16, Instant> = HashMap::new();
    let mut last = Instant::now();
    loop {
        if cfg.stop_after.is_some_and(|s| started.elapsed() >= s) {
            // Wait for the answers still due, then stop.
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            while !sent.is_empty() && tokio::time::Instant::now() < deadline {
                let (_, m) = t.recv(TIMEOUT).await?;
                answer(stats, &mut sent, &m);
            }
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                let (speed, heading) = motion(cfg, i, &t.phone.clone(), started.elapsed(), odo, pos, now - last);
                last = now;
                let mut l = location(pos.0, pos.1, speed, heading, Utc::now(), 0);
                l.extras[0] = jt808::Extra::Mileage((*odo * 10.0) as u32);
                let serial = t.send(&Message::Location(l)).await?;
                sent.insert(serial, now);
                stats.reports_sent.fetch_add(1, Ordering::Relaxed);
                if sent.len() > 1000 {
                    bail!("1000 reports without an answer");
                }
            }
            m = t.recv(Duration::from_secs(3600)) => {
                let (_, m) = m?;
                answer(stats, &mut sent, &m);
            }
        }
    }
}

fn answer(stats: &FleetStats, sent: &mut HashMap<u16, Instant>, m: &Message) {
    if let Message::PlatformResponse(g) = m {
        if g.msg_id == id::LOCATION {
            if let Some(at) = sent.remove(&g.serial) {
                stats.latency(at.elapsed());
                if g.result == 0 {
                    stats.reports_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.reports_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

struct Guard<F: FnMut()>(F);
impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
fn scopeguard<F: FnMut()>(f: F) -> Guard<F> {
    Guard(f)
}

/// Start a fleet; its terminals run as tasks until `stop_after` (or the runtime ends).
pub fn run_fleet(cfg: FleetConfig) -> (Arc<FleetStats>, Vec<tokio::task::JoinHandle<()>>) {
    let stats = Arc::new(FleetStats::default());
    let cfg = Arc::new(cfg);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..cfg.terminals {
        let (cfg, stats) = (cfg.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(cfg.ramp * i as u32).await;
            run_terminal(cfg, stats, i, started).await
        }));
    }
    (stats, tasks)
}
