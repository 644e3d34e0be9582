//! `[[jt808]]`: a JT/T 808 listener and its vehicles.

use crate::config::{out_of_bounds, serde_defaults};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use telemetry::{AgentId, SiteId, SiteInfo};

/// The class of a vehicle (the tag `vehicle_class` in the catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    Passenger,
    Freight,
    /// The older value `hazmat` means this too.
    #[serde(alias = "hazmat")]
    DangerousGoods,
    SchoolBus,
}

impl VehicleClass {
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleClass::Passenger => "passenger",
            VehicleClass::Freight => "freight",
            VehicleClass::DangerousGoods => "dangerous_goods",
            VehicleClass::SchoolBus => "school_bus",
        }
    }
}

/// One listener. See `edge-agent/README.md` ("JT/T 808 terminals") for every key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jt808Config {
    /// `HOST:PORT` to listen on (`0.0.0.0:7611`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The site (transport company) its vehicles belong to.
    pub site: SiteId,
    /// The agent id its vehicles are published under (`{agent}-jt808` by default); with
    /// `shards` > 1, `{agent}-1` .. `{agent}-{shards}`.
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// The site's description in the vehicles' births.
    #[serde(default)]
    pub site_info: Option<SiteInfo>,
    /// The class of terminals not listed in `vehicles`.
    #[serde(default = "default_class")]
    pub default_class: VehicleClass,
    #[serde(default)]
    pub vehicles: Vec<VehicleConfig>,
    /// Whether terminals not listed may register (true) or are answered 0x8100 result 4
    /// ("no such terminal") (false).
    #[serde(default = "yes")]
    pub accept_unlisted: bool,
    /// Whether a terminal's reports count only after it authenticated (0x0102) with the code
    /// the agent gave it at registration. Off only for terminals that cannot authenticate.
    #[serde(default = "yes")]
    pub auth_required: bool,
    /// A connection that sends no frame for this long is closed (ms).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections open at once; one more is closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The longest frame taken, in bytes between the flags (escaped); longer ones are refused.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// How often a vehicle is expected to report: the `interval_ms` of its points (ms).
    #[serde(default = "default_report_interval_ms")]
    pub report_interval_ms: u64,
    /// How many births (agents) the vehicles are spread over, by a hash of the terminal number.
    #[serde(default = "default_shards")]
    pub shards: u16,
    /// The most vehicles one birth names (4 points each); vehicles beyond are still taken,
    /// without a birth (counted in `hrs_jt808_vehicles_uncatalogued`).
    #[serde(default = "default_max_vehicles_per_shard")]
    pub max_vehicles_per_shard: usize,
    /// A sub-packaged message whose packages have not all arrived within this is dropped (ms).
    #[serde(default = "default_reassembly_timeout_ms")]
    pub reassembly_timeout_ms: u64,
    /// Bytes of sub-packages held per connection.
    #[serde(default = "default_max_reassembly_bytes")]
    pub max_reassembly_bytes: usize,
    /// Answers waiting per connection (for reports: until they are stored); when full, the
    /// connection is not read until the oldest is sent.
    #[serde(default = "default_answer_queue")]
    pub answer_queue: usize,
    /// Wrong authentication codes on one connection before it is closed.
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures: u32,
    /// Messages of readings queued from connections to each birth's batcher; when full, the
    /// connections wait (and so do their terminals' TCP streams).
    #[serde(default = "default_ingest_queue")]
    pub ingest_queue: usize,
    /// The SQLite file of auth codes (and plates, drivers); default
    /// `<data_dir>/jt808-auth.sqlite`.
    #[serde(default)]
    pub auth_path: Option<PathBuf>,
}

/// A vehicle the site lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleConfig {
    /// The header's terminal phone number, leading zeros dropped.
    pub terminal: String,
    #[serde(default)]
    pub plate: Option<String>,
    /// Default: the listener's `default_class`.
    #[serde(default)]
    pub class: Option<VehicleClass>,
}

// The defaults of the keys above.
serde_defaults! {
    default_class: VehicleClass = VehicleClass::Freight;
    yes: bool = true;
    default_idle_timeout_ms: u64 = 180_000;
    default_max_connections: usize = 12_000;
    default_max_frame_bytes: usize = 4096;
    default_report_interval_ms: u64 = 30_000;
    default_shards: u16 = 1;
    default_max_vehicles_per_shard: usize = 4000;
    default_reassembly_timeout_ms: u64 = 30_000;
    default_max_reassembly_bytes: usize = 256 * 1024;
    default_answer_queue: usize = 64;
    default_max_auth_failures: u32 = 5;
    default_ingest_queue: usize = 1024;
}

/// The terminal number as the header carries it: digits with leading zeros dropped.
pub fn normalise_terminal(t: &str) -> String {
    let t = t.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

impl Jt808Config {
    /// The agent id of shard `k` (0-based), given the agent's own id.
    pub fn shard_agent(&self, main: &AgentId, k: u16) -> String {
        let base = self
            .agent
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("{main}-jt808"));
        if self.shards <= 1 {
            base
        } else {
            format!("{base}-{}", k + 1)
        }
    }

    /// Every problem of this listener, each naming its key; `at` says which listener.
    pub fn problems(&self, at: &str, main: &AgentId) -> Vec<String> {
        let mut errs = Vec::new();
        // max_connections: each connection is a file descriptor; the process limit here is 20,000.
        let at_key = format!("{at}: ");
        errs.extend(out_of_bounds(
            &at_key,
            &[
                ("idle_timeout_ms", self.idle_timeout_ms, 1_000..=86_400_000),
                ("max_connections", self.max_connections as u64, 1..=100_000),
                (
                    "max_frame_bytes",
                    self.max_frame_bytes as u64,
                    64..=1_048_576,
                ),
                (
                    "report_interval_ms",
                    self.report_interval_ms,
                    1_000..=86_400_000,
                ),
                ("shards", u64::from(self.shards), 1..=64),
            ],
        ));
        // 4 points per vehicle; a birth holds at most 20,000 points (the gateway's limit).
        if !(1..=4_500).contains(&self.max_vehicles_per_shard) {
            errs.push(format!(
                "{at}: max_vehicles_per_shard = {} must be 1..4500 (4 points each; a birth holds at most 20000 points)",
                self.max_vehicles_per_shard
            ));
        }
        errs.extend(out_of_bounds(
            &at_key,
            &[
                (
                    "reassembly_timeout_ms",
                    self.reassembly_timeout_ms,
                    100..=600_000,
                ),
                (
                    "max_reassembly_bytes",
                    self.max_reassembly_bytes as u64,
                    1024..=16 << 20,
                ),
                ("answer_queue", self.answer_queue as u64, 1..=10_000),
                (
                    "max_auth_failures",
                    u64::from(self.max_auth_failures),
                    1..=1000,
                ),
                ("ingest_queue", self.ingest_queue as u64, 1..=1_000_000),
            ],
        ));
        for k in 0..self.shards.clamp(1, 64) {
            if let Err(e) = AgentId::new(self.shard_agent(main, k)) {
                errs.push(format!("{at}: agent: {e}"));
                break;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.vehicles.iter().enumerate() {
            let vw = format!("{at} vehicles[{i}] ({})", v.terminal);
            if v.terminal.is_empty()
                || v.terminal.len() > 20
                || !v.terminal.bytes().all(|b| b.is_ascii_digit())
            {
                errs.push(format!(
                    "{vw}: terminal must be 1 to 20 digits (the header's terminal phone)"
                ));
            } else if !seen.insert(normalise_terminal(&v.terminal)) {
                errs.push(format!("{vw}: terminal is listed twice"));
            }
            if v.plate
                .as_deref()
                .is_some_and(|p| p.is_empty() || p.chars().count() > 32)
            {
                errs.push(format!("{vw}: plate must be 1 to 32 characters"));
            }
        }
        errs
    }
}
