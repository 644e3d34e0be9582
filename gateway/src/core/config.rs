//! `[ingest]` and `[[sites]]`: what the core takes and keeps (time bounds, dead letters, seq
//! windows, the bounds on what outsiders can make it keep), and the site registry.

use anyhow::bail;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// How far ahead of the gateway clock a reading may lie before it is refused (`future`).
    pub max_future_ms: u64,
    /// A reading older than this behind the clock is judged, marked late.
    pub late_after_ms: u64,
    /// How many dead letters are kept (oldest dropped first).
    pub dead_letter_capacity: usize,
    /// Seqs remembered per agent epoch for duplicate detection.
    pub seq_window: u64,
    /// The most bytes of a refused payload kept in its dead letter (the rest is cut, and the
    /// reason says so).
    pub dead_letter_raw_bytes: usize,
    /// Messages received from the broker but not yet taken by the core. QoS 1 messages are
    /// bounded by the broker's in-flight window; beyond this bound QoS 0 messages are dropped
    /// and counted (`hrs_bounds_hit_total{bound="ingest_buffer"}`), and at twice the bound the
    /// gateway stops reading from the broker until the core catches up.
    pub max_pending_messages: usize,
    /// Sites the gateway keeps; messages of further sites are refused (`too_many_sites`).
    pub max_sites: usize,
    /// Agents per site; messages of further agents are refused (`too_many_agents`).
    pub max_agents_per_site: usize,
    /// Points per site; readings and catalogue points beyond are refused (`too_many_points`).
    pub max_points_per_site: usize,
    /// Agent epochs whose seq windows are kept in memory per agent; the least recently used
    /// leaves memory (its window stays in the store and comes back when the epoch speaks).
    pub max_epochs_per_agent: usize,
    /// An epoch silent this long leaves memory (its window stays in the store).
    pub epoch_idle_days: u32,
    /// The longest free text of a catalogue point (name, location, quantity, unit, gas, tag
    /// key or value) and of a site name, in characters; a point beyond it is refused
    /// (`bad_point_spec`).
    pub max_catalogue_text_chars: usize,
    /// The most tags of one catalogue point; a point with more is refused.
    pub max_tags_per_point: usize,
    /// Admit only the sites of `[[sites]]` (the registry): the births, statuses and readings
    /// of any other site are refused (`unregistered_site`, counted in
    /// `hrs_messages_refused_total` and kept as dead letters). Off by default.
    pub registered_sites_only: bool,
    /// The interval of the site history behind the regulator's online rate and data
    /// completeness (one row per site per interval in the store).
    pub figures_interval_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_future_ms: 300_000,
            late_after_ms: 60_000,
            dead_letter_capacity: 10_000,
            seq_window: 4096,
            dead_letter_raw_bytes: 64 * 1024,
            max_pending_messages: 1000,
            max_sites: 20_000,
            max_agents_per_site: 64,
            max_points_per_site: 50_000,
            max_epochs_per_agent: 8,
            epoch_idle_days: 7,
            max_catalogue_text_chars: 256,
            max_tags_per_point: 32,
            registered_sites_only: false,
            figures_interval_ms: 300_000,
        }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.seq_window < 1024 {
            bail!("ingest.seq_window must be at least 1024 (the contract's minimum)");
        }
        for (key, v, min) in [
            ("ingest.max_pending_messages", self.max_pending_messages, 1),
            ("ingest.max_sites", self.max_sites, 1),
            ("ingest.max_agents_per_site", self.max_agents_per_site, 1),
            ("ingest.max_points_per_site", self.max_points_per_site, 1),
            ("ingest.max_epochs_per_agent", self.max_epochs_per_agent, 1),
            (
                "ingest.max_catalogue_text_chars",
                self.max_catalogue_text_chars,
                16,
            ),
            ("ingest.max_tags_per_point", self.max_tags_per_point, 1),
            (
                "ingest.dead_letter_raw_bytes",
                self.dead_letter_raw_bytes,
                256,
            ),
            (
                "ingest.dead_letter_capacity",
                self.dead_letter_capacity,
                100,
            ),
        ] {
            if v < min {
                bail!("{key} must be at least {min}");
            }
        }
        if self.figures_interval_ms < 1000 {
            bail!("ingest.figures_interval_ms must be at least 1000");
        }
        if self.epoch_idle_days == 0 {
            bail!("ingest.epoch_idle_days must be at least 1");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRegistryEntry {
    pub id: telemetry::SiteId,
    #[serde(flatten)]
    pub info: telemetry::SiteInfo,
}

/// What the core is told at start, besides its parts (engine, store, clock, topics, metrics).
#[derive(Debug, Clone, Default)]
pub struct CoreSettings {
    pub ingest: IngestConfig,
    /// Sites known in advance; an entry wins over what a birth says.
    pub registry: Vec<SiteRegistryEntry>,
    pub weather: weather::WeatherConfig,
    /// The language incident messages are written in.
    pub language: presentation::Language,
    /// Times to acknowledge and to close (督办).
    pub supervision: super::supervision::SupervisionConfig,
}
