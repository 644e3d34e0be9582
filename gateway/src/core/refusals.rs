//! What the core refuses: counted by its code and dead-lettered with its reason and bytes,
//! one record per message.

use super::Core;
use crate::metrics::Metrics;
use telemetry::{BatchError, SiteId};

/// One refused item of a message (a reading, a catalogue point), kept in the message's one
/// dead letter.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct RefusedItem {
    pub(super) index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) point: Option<String>,
    pub(super) code: &'static str,
    pub(super) reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) raw: String,
}

impl RefusedItem {
    /// A point beyond `ingest.max_points_per_site` (a reading's or a birth's), counted.
    pub(super) fn too_many_points(
        metrics: &Metrics,
        index: usize,
        point: &telemetry::PointId,
        site: &SiteId,
        max: usize,
    ) -> RefusedItem {
        metrics
            .bounds_hit
            .with_label_values(&["points_per_site"])
            .inc();
        RefusedItem {
            index,
            point: Some(point.to_string()),
            code: "too_many_points",
            reason: format!("site {site} has {max} points already (ingest.max_points_per_site)"),
            raw: String::new(),
        }
    }
}

impl Core {
    /// A message the core could not process (a defect): dead-lettered with the error.
    pub async fn refuse_unprocessed(&mut self, topic: &str, payload: &[u8], error: &str) {
        self.refuse_message(topic, "not_processed", error, payload)
            .await
    }

    /// Refuse a message whose payload did not decode: under the decoder's code and reason.
    pub(super) async fn refuse_undecodable(&mut self, topic: &str, e: &BatchError, payload: &[u8]) {
        self.refuse_message(topic, e.code(), &e.to_string(), payload)
            .await
    }

    /// Refuse a whole message: counted by its code, dead-lettered with its reason and its bytes
    /// (at most `ingest.dead_letter_raw_bytes` of them).
    pub(super) async fn refuse_message(
        &mut self,
        topic: &str,
        code: &str,
        reason: &str,
        payload: &[u8],
    ) {
        self.metrics
            .messages_refused
            .with_label_values(&[code])
            .inc();
        tracing::warn!(topic, code, reason, "message refused");
        let cap = self.ingest.dead_letter_raw_bytes;
        if payload.len() > cap {
            let reason = format!(
                "{reason} (payload of {} bytes; the first {cap} kept)",
                payload.len()
            );
            self.dead_letter(topic, code, &reason, &payload[..cap])
                .await
        } else {
            self.dead_letter(topic, code, reason, payload).await
        }
    }

    /// The readings (or catalogue points) of one message that were refused: each counted by
    /// its code, all in one dead letter that keeps every item's reason, so a batch of 20,000
    /// bad readings is one write, not 20,000.
    pub(super) async fn refuse_items(&mut self, topic: &str, items: &[RefusedItem]) {
        let Some(first) = items.first() else {
            return;
        };
        for it in items {
            self.metrics
                .readings_refused
                .with_label_values(&[it.code])
                .inc();
        }
        let code = if items.iter().all(|i| i.code == first.code) {
            first.code
        } else {
            "readings_refused"
        };
        let reason = if items.len() == 1 {
            match &first.point {
                Some(p) => format!("item {} ({p}): {}", first.index, first.reason),
                None => format!("item {}: {}", first.index, first.reason),
            }
        } else {
            format!(
                "{} items refused; the first, item {}: {}",
                items.len(),
                first.index,
                first.reason
            )
        };
        let raw = serde_json::to_vec(&items).unwrap_or_default();
        self.dead_letter(topic, code, &reason, &raw).await
    }

    /// Write a dead letter. A transient store error is ridden out; a permanent one (which
    /// [`crate::store::storable`] text and raw bytes should never meet) is counted and logged,
    /// and the core goes on.
    pub(super) async fn dead_letter(&mut self, topic: &str, code: &str, reason: &str, raw: &[u8]) {
        self.metrics.dead_letters.inc();
        let now = self.now();
        let capacity = self.ingest.dead_letter_capacity;
        let _ = durably!(
            self,
            "dead_letter",
            self.store
                .add_dead_letter(now, topic, code, reason, raw, capacity)
        );
    }
}
