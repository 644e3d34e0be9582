//! `edge-agent`: run the agent, check a configuration, or run the device simulator.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use edge_agent::plan::plan_requests;
use edge_agent::{Agent, AgentConfig, Simulator, SimulatorConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "edge-agent",
    version,
    about = "The site-side agent of the high-risk site monitoring system: polls Modbus devices, \
takes MQTT device messages, keeps a durable buffer and publishes to the gateway over MQTT."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent. HRS_MQTT_URL, HRS_TOPIC_PREFIX, HRS_MQTT_USERNAME and HRS_MQTT_PASSWORD
    /// (or HRS_MQTT_PASSWORD_FILE) override the config file.
    Run {
        /// The agent configuration (TOML; see examples/agent.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration and print what it would do: devices, points, planned requests.
    Check {
        /// The agent configuration (TOML; see examples/agent.toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Also try the broker and every Modbus device, one line each (exit status 1 when
        /// one does not answer as it should).
        #[arg(long)]
        connect: bool,
    },
    /// Poll each device once and print, for every point, the raw registers (hex), the decoded
    /// value, its unit and quality: byte order and scale checked before going live.
    Probe {
        /// The agent configuration (TOML; see examples/agent.toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
    },
    /// Run simulated Modbus devices (see examples/simulator.toml); stops on Ctrl-C or SIGTERM.
    Simulate {
        /// The simulator configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<AgentConfig> {
    let mut cfg = AgentConfig::from_file(path)?;
    cfg.apply_env(|k| std::env::var(k).ok())?;
    Ok(cfg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, connect } => {
            let cfg = load(&config)?;
            println!("config {} is valid", config.display());
            println!("agent {} at site {}", cfg.agent, cfg.site);
            // `load` has read and checked the TLS files already.
            let tls = cfg.mqtt.tls || edge_agent::broker::parse_mqtt_url(&cfg.mqtt.url)?.tls;
            println!(
                "mqtt {} ({}) prefix {} client id {}",
                cfg.mqtt.url,
                if tls {
                    "TLS, certificate files read"
                } else {
                    "plain"
                },
                cfg.mqtt.topic_prefix,
                cfg.client_id()
            );
            if let Some(u) = &cfg.mqtt.username {
                // The password is never printed.
                let pw = if cfg.mqtt.password.is_some() {
                    "********"
                } else {
                    "none"
                };
                println!("mqtt user {u}, password {pw}");
            }
            println!(
                "buffer {} (max {} bytes)",
                cfg.buffer_path().display(),
                cfg.buffer.max_bytes
            );
            let mut total_points = 0;
            let mut total_requests = 0;
            for d in &cfg.devices {
                let plan = plan_requests(&d.points);
                total_points += d.points.len();
                total_requests += plan.len();
                println!(
                    "device {} {} unit {} {:?}: {} points, {} requests every {} ms",
                    d.name,
                    d.endpoint(),
                    d.unit_id,
                    d.transport,
                    d.points.len(),
                    plan.len(),
                    d.poll_interval_ms
                );
                for r in &plan {
                    let names: Vec<String> = r
                        .points
                        .iter()
                        .map(|&i| d.points[i].point.to_string())
                        .collect();
                    println!(
                        "  read {} {}..{} ({}): {}",
                        r.function.as_str(),
                        r.address,
                        r.address as u32 + r.count as u32 - 1,
                        r.count,
                        names.join(", ")
                    );
                }
            }
            for i in &cfg.mqtt_inputs {
                total_points += i.points.len();
                println!(
                    "mqtt input {} on {}: {} points",
                    i.name,
                    i.topic,
                    i.points.len()
                );
            }
            println!(
                "total: {} devices, {} mqtt inputs, {} points, {} requests per round",
                cfg.devices.len(),
                cfg.mqtt_inputs.len(),
                total_points,
                total_requests
            );
            if connect {
                let probes = edge_agent::check::connect(&cfg).await;
                for (_, l) in &probes {
                    println!("{l}");
                }
                if probes.iter().any(|(ok, _)| !ok) {
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        Command::Run { config } => {
            init_tracing();
            let cfg = load(&config)?;
            let agent = Agent::build(cfg).await.context("starting the agent")?;
            if let Some(a) = agent.metrics_addr() {
                tracing::info!(addr = %a, "metrics at http://{a}/metrics");
            }
            agent.run(shutdown_signal()).await?;
            Ok(())
        }
        Command::Probe { config, device } => {
            let cfg = load(&config)?;
            let clock: edge_agent::SharedClock = std::sync::Arc::new(edge_agent::SystemClock);
            let report = edge_agent::probe::probe_config(&cfg, device.as_deref(), clock)
                .await
                .map_err(anyhow::Error::msg)?;
            print!("{}", report.text);
            if report.not_good > 0 {
                anyhow::bail!(
                    "{} of {} points are not good",
                    report.not_good,
                    report.points
                );
            }
            Ok(())
        }
        Command::Simulate { config } => {
            init_tracing();
            let cfg = SimulatorConfig::from_file(&config)?;
            let handle = Simulator::start(cfg).await?;
            for d in handle.devices() {
                println!(
                    "device {} listening on {} ({:?})",
                    d.name, d.addr, d.transport
                );
            }
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            shutdown_signal().await;
            handle.shutdown().await;
            Ok(())
        }
    }
}
