//! `gateway`: the central program of the monitoring system.

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::clock::SystemClock;
use gateway::config::GatewayConfig;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Real-time monitoring gateway for high-risk sites: MQTT ingest, alarm rules, incidents, HTTP API"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "HRS_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (config file optional; HRS_* environment variables override it).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the whole system in one process: embedded broker, store, simulated sites and agents.
    Demo {
        /// The embedded broker's port (default: 1883, or a free one when 1883 is taken).
        #[arg(long, env = "HRS_DEMO_MQTT_PORT")]
        mqtt_port: Option<u16>,
    },
    /// Replay recorded messages (one JSON line each: {"topic","payload"}) through the rules;
    /// print one incident event per line.
    Replay {
        #[arg(long)]
        input: PathBuf,
        /// Rule files that add to or replace the built-in pack.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The language of the incident messages: zh-CN (default) or en.
        #[arg(long, default_value = "zh-CN")]
        language: String,
        /// What-if: a second rule set (a directory, as --rules). Prints, per rule and site,
        /// the incidents each set raises on the same input and the causes that differ,
        /// instead of the events.
        #[arg(long)]
        compare: Option<PathBuf>,
    },
    /// Export a period of real history as replay input: the readings of the time-series
    /// store and the catalogues (births) its sites had then, from the configured store.
    ExportHistory {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start of the period (RFC 3339).
        #[arg(long)]
        since: String,
        /// End of the period (RFC 3339, exclusive).
        #[arg(long)]
        until: String,
        /// Only these sites (comma-separated; default: every site).
        #[arg(long)]
        sites: Option<String>,
        /// Where the readings are: victoria-metrics (its /api/v1/export) or influxdb (its
        /// /api/v2/query); the URL, org, bucket and token are those of `[timeseries]`.
        #[arg(long, default_value = "victoria-metrics")]
        source: String,
        /// The file to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Validate the configuration and the rules it names; print the effective configuration
    /// (secrets masked) with where each value came from, then exit.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also try the broker, the store, the time-series database, every forwarding
        /// endpoint and weather feed, one line each (exit status 1 when one fails).
        #[arg(long)]
        connect: bool,
    },
    /// Back the configured store up into a new file, while the gateway runs or not: SQLite's
    /// online copy (VACUUM INTO), pg_dump's custom format for PostgreSQL.
    Backup {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
    },
    /// Put a backup in place of the configured store (stop the gateway first); a backup of an
    /// older schema is upgraded in place.
    Restore {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The backup file (from `gateway backup`).
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
    },
    /// Console users in the configured store (while a gateway runs on it or not).
    User {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: UserCmd,
    },
    /// API tokens in the configured store (while a gateway runs on it or not).
    Token {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: TokenCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input (one line).
    Add {
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// SCOPE[,SCOPE...]: *, region:CODE (2, 4 or 6 digits), site:ID.
        #[arg(long)]
        scope: String,
    },
    /// Disable a user: its sessions end at once.
    Disable { name: String },
    /// List users: name, role, scopes, on/off.
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token and print it, once, alone on one line.
    Create {
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// SCOPE[,SCOPE...]: *, region:CODE (2, 4 or 6 digits), site:ID.
        #[arg(long)]
        scope: String,
    },
    /// Revoke a token: refused at once, its open streams end.
    Revoke { name: String },
    /// List tokens: name, role, scopes, on/off.
    List,
}

fn init_logging(json: bool, default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("HRS_LOG").unwrap_or_else(|_| default.into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Replay writes its events to stdout and a summary to stderr: only warnings besides.
    let default_filter = match cli.command {
        Cmd::Replay { .. } | Cmd::ExportHistory { .. } => "warn",
        _ => "info,sqlx=warn,rumqttd=warn,rumqttd::server::broker=off",
    };
    init_logging(cli.log_json, default_filter);
    match cli.command {
        Cmd::Run { config } => {
            let config = GatewayConfig::load(config.as_deref())?;
            let gw = gateway::app::start::start(config, Arc::new(SystemClock)).await?;
            run_until_signal(gw).await
        }
        Cmd::Check { config, connect } => {
            let (config, text, env) = GatewayConfig::load_with_sources(config.as_deref())?;
            let rules = gateway::app::rules::load_rules(&config)?;
            for line in gateway::app::check::describe(&config, text.as_deref(), &env)? {
                println!("{line}");
            }
            println!("config ok; {} rules", rules.len());
            if connect {
                let probes = gateway::app::check::connect(&config).await;
                for p in &probes {
                    println!("{p}");
                }
                let failed = probes.iter().filter(|p| !p.ok).count();
                if failed > 0 {
                    eprintln!("{failed} of {} did not answer as they should", probes.len());
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        Cmd::Backup {
            config,
            to,
            timeout_s,
        } => {
            let config = GatewayConfig::load(config.as_deref())?;
            let s = gateway::store::backup::backup(
                &config.store_url(),
                &to,
                std::time::Duration::from_secs(timeout_s),
            )
            .await?;
            println!("backup written to {}: {s}", to.display());
            Ok(())
        }
        Cmd::Restore {
            config,
            from,
            timeout_s,
        } => {
            let config = GatewayConfig::load(config.as_deref())?;
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
            let s = gateway::store::backup::restore(
                &config.store_url(),
                &from,
                std::time::Duration::from_secs(timeout_s),
            )
            .await?;
            println!("restored from {}: {s}", from.display());
            Ok(())
        }
        Cmd::User { config, command } => {
            use gateway::app::access_cli::AccessCommand as A;
            let cmd = match command {
                UserCmd::Add { name, role, scope } => A::UserAdd { name, role, scope },
                UserCmd::Disable { name } => A::UserDisable { name },
                UserCmd::List => A::UserList,
            };
            access_command(config, cmd).await
        }
        Cmd::Token { config, command } => {
            use gateway::app::access_cli::AccessCommand as A;
            let cmd = match command {
                TokenCmd::Create { name, role, scope } => A::TokenCreate { name, role, scope },
                TokenCmd::Revoke { name } => A::TokenRevoke { name },
                TokenCmd::List => A::TokenList,
            };
            access_command(config, cmd).await
        }
        #[cfg(feature = "demo")]
        Cmd::Demo { mqtt_port } => gateway::app::demo::run(mqtt_port).await,
        #[cfg(not(feature = "demo"))]
        Cmd::Demo { .. } => {
            anyhow::bail!("this gateway was built without the demo (cargo feature `demo`)")
        }
        Cmd::ExportHistory {
            config,
            since,
            until,
            sites,
            source,
            output,
        } => {
            let config = GatewayConfig::load(config.as_deref())?;
            let request = gateway::app::export::ExportRequest::new(&since, &until, sites, &source)?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let n = gateway::app::export::export(&config, &request, &mut out).await?;
            out.flush()?;
            eprintln!(
                "export: {} lines ({} catalogues, {} batches)",
                n.lines(),
                n.catalogues,
                n.batches
            );
            Ok(())
        }
        Cmd::Replay {
            input,
            rules,
            language,
            compare,
        } => {
            let language = match language.as_str() {
                "zh-CN" => presentation::Language::ZhCn,
                "en" => presentation::Language::En,
                other => anyhow::bail!("--language {other:?} is not zh-CN or en"),
            };
            let text =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            if let Some(b) = compare {
                let w = gateway::app::replay::what_if(&text, rules.as_deref(), Some(&b), language)
                    .await?;
                print!("{w}");
                return Ok(());
            }
            let stdout = std::io::stdout();
            let summary =
                gateway::app::replay::replay(&text, rules.as_deref(), language, &mut stdout.lock())
                    .await?;
            eprintln!("{summary}");
            Ok(())
        }
    }
}

async fn access_command(
    config: Option<PathBuf>,
    cmd: gateway::app::access_cli::AccessCommand,
) -> anyhow::Result<()> {
    let config = GatewayConfig::load(config.as_deref())?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    gateway::app::access_cli::run(
        &config,
        Arc::new(SystemClock),
        cmd,
        &mut stdin.lock(),
        &mut stdout.lock(),
    )
    .await
}

/// Run until SIGINT/SIGTERM (graceful: in-flight messages finish); SIGHUP reloads the rules and
/// the API's TLS certificate.
async fn run_until_signal(mut gw: gateway::app::start::Gateway) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            why = gw.failed_task() => {
                // A task that must run has ended or panicked: stop with a clear line and a
                // non-zero status, so the service manager restarts the gateway.
                tracing::error!(reason = %why, "stopping the gateway: a task that must run has stopped");
                gw.shutdown.cancel();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while gw.tasks.join_next().await.is_some() {}
                })
                .await;
                anyhow::bail!("{why}");
            }
            _ = hup.recv() => {
                // The rules and the API's certificate, each on its own (see `Gateway::reload`).
                if let Err(gateway::core::handle::AskError::Stopping) = gw.reload().await {
                    break;
                }
            }
        }
    }
    tracing::info!("stopping");
    gw.shutdown.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while gw.tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}
