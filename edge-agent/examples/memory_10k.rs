//! The agent's memory with 10,000 points: 10 simulated devices x 1,000 holding registers,
//! polled at 1 Hz and published at 1 Hz through a Mosquitto of our own (started on a free
//! port; `mosquitto` must be on PATH). Simulator and agent run in this process; the resident
//! set (VmRSS) and its peak (VmHWM) are read from /proc/self/status before the agent starts
//! (runtime + simulator) and while it runs.
//!
//! ```text
//! cargo run --release -p edge-agent --example memory_10k [-- SECONDS]   # default 20
//! ```

use edge_agent::{Agent, AgentConfig, Simulator, SimulatorConfig};
use std::fmt::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEVICES: usize = 10;
const REGISTERS: u16 = 1_000;

/// VmRSS and VmHWM of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Broker(Child);
impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn simulator_toml() -> String {
    let mut s = String::new();
    for d in 0..DEVICES {
        writeln!(s, "[[devices]]\nname = \"plc{d}\"\ntick_ms = 1000").unwrap();
        for a in 0..REGISTERS {
            writeln!(
                s,
                "[[devices.values]]\nfunction = \"holding\"\naddress = {a}\ntype = \"u16\"\nscale = 0.01\nsignal = {{ kind = \"random_walk\", min = 0.1, max = 0.9, step = 0.02, seed = {a} }}"
            )
            .unwrap();
        }
    }
    s
}

fn agent_toml(ports: &[u16], mqtt_port: u16, data_dir: &std::path::Path) -> String {
    let mut s = format!(
        "agent = \"mem-edge\"\nsite = \"mem-site\"\ndata_dir = \"{}\"\npublish_interval_ms = 1000\n[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\ntopic_prefix = \"mem{mqtt_port}/v1\"\nmax_packet_bytes = 8388608\n",
        data_dir.display()
    );
    for (d, port) in ports.iter().enumerate() {
        writeln!(
            s,
            "[[devices]]\nname = \"plc{d}\"\nhost = \"127.0.0.1\"\nport = {port}\npoll_interval_ms = 1000"
        )
        .unwrap();
        for a in 0..REGISTERS {
            writeln!(
                s,
                "[[devices.points]]\npoint = \"D{d}-CH4-{a}\"\nfunction = \"holding\"\naddress = {a}\ntype = \"u16\"\nscale = 0.01\nquantity = \"ch4\"\nunit = \"%\"\nlocation = \"working_face\""
            )
            .unwrap();
        }
    }
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let dir = tempfile::tempdir()?;
    let mqtt_port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"),
    )?;
    let _broker = Broker(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let up = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", mqtt_port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < up, "mosquitto did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sim = Simulator::start(SimulatorConfig::from_toml_str(&simulator_toml())?).await?;
    let ports: Vec<u16> = sim.devices().iter().map(|d| d.addr.port()).collect();
    let (rss0, hwm0) = memory_kib();
    println!("before the agent (runtime + simulator of {DEVICES} x {REGISTERS} registers): VmRSS {rss0} kB, VmHWM {hwm0} kB");

    let config = AgentConfig::from_toml_str(&agent_toml(&ports, mqtt_port, dir.path()))?;
    config.validate()?;
    let points: usize = config.devices.iter().map(|d| d.points.len()).sum();
    let agent = Agent::build(config).await?;
    let metrics = agent.metrics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async move {
        let _ = stop_rx.await;
    }));
    let started = tokio::time::Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut next = started;
    while next < end {
        next = (next + Duration::from_secs(5)).min(end);
        tokio::time::sleep_until(next).await;
        let (rss, hwm) = memory_kib();
        println!(
            "t={:>3.0}s VmRSS {rss} kB VmHWM {hwm} kB readings {} batches published {} buffered {}",
            started.elapsed().as_secs_f64(),
            metrics.readings_total.get(),
            metrics.batches_published_total.get(),
            metrics.buffer_batches.get(),
        );
    }
    let (rss, hwm) = memory_kib();
    let readings = metrics.readings_total.get();
    let published = metrics.batches_published_total.get();
    let _ = stop_tx.send(());
    run.await??;
    sim.shutdown().await;
    println!(
        "{points} points, {seconds} s: VmRSS {rss} kB, VmHWM {hwm} kB (agent share over the baseline: RSS +{} kB, peak +{} kB); {readings} readings, {published} batches published",
        rss.saturating_sub(rss0),
        hwm.saturating_sub(hwm0)
    );
    anyhow::ensure!(
        readings >= points as u64 * (seconds - 2),
        "the agent did not poll every point every second: {readings} readings"
    );
    anyhow::ensure!(published > 0, "nothing was published");
    Ok(())
}
